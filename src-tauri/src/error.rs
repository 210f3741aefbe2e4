//! The one error type of the window's commands.
//!
//! It serialises exactly as the window expects (ui/app.js): a field error as `{field, message}` (shown under
//! that settings field), every other error as its message string.

use coordinator::config::ConfigError;
use serde::{Serialize, Serializer};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// An inline error for one settings field; `field` is "" for the form as a whole.
    #[error("{message}")]
    Field { field: String, message: String },
    #[error("the engine is not running")]
    EngineNotRunning,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] coordinator::secrets::SecretError),
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    #[error("{0}")]
    Message(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        AppError::Field {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// A settings error as the Settings page shows it: under the field it names.
    pub fn from_settings(e: ConfigError) -> Self {
        match &e {
            ConfigError::Invalid { field, value, hint, .. } => {
                AppError::field(field, format!("{value} is not valid: {hint}"))
            }
            other => AppError::field("", other.to_string()),
        }
    }

    /// The field this error belongs to, if it is a field error.
    #[cfg(test)]
    pub fn field_name(&self) -> Option<&str> {
        match self {
            AppError::Field { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<String> for AppError {
    fn from(s: String) -> Self {
        AppError::Message(s)
    }
}

impl From<&str> for AppError {
    fn from(s: &str) -> Self {
        AppError::Message(s.to_string())
    }
}

impl Serialize for AppError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AppError::Field { field, message } => {
                use serde::ser::SerializeStruct;
                let mut st = s.serialize_struct("FieldError", 2)?;
                st.serialize_field("field", field)?;
                st.serialize_field("message", message)?;
                st.end()
            }
            other => s.serialize_str(&other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_errors_are_objects_and_the_rest_are_strings() {
        assert_eq!(
            serde_json::to_value(AppError::field("log_dir", "bad")).unwrap(),
            json!({"field": "log_dir", "message": "bad"})
        );
        assert_eq!(
            serde_json::to_value(AppError::EngineNotRunning).unwrap(),
            json!("the engine is not running")
        );
        assert_eq!(
            serde_json::to_value(AppError::from("unknown agent x")).unwrap(),
            json!("unknown agent x")
        );
        let invalid = || ConfigError::invalid(std::path::Path::new("/s.json"), "max_concurrent", "0", "at least 1");
        assert_eq!(
            serde_json::to_value(AppError::from(invalid())).unwrap(),
            json!(invalid().to_string())
        );
        assert_eq!(
            serde_json::to_value(AppError::from_settings(invalid())).unwrap(),
            json!({"field": "max_concurrent", "message": "0 is not valid: at least 1"})
        );
    }
}
