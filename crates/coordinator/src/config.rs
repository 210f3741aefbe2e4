//! Our own settings file (`settings.json`): schema, defaults, validation and atomic save.
//!
//! Secrets never live here (they are in the secret store); the file is still written with mode 0600.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SCHEMA_VERSION: u32 = 1;

/// Upper bound for the error-protection cooldowns (one week).
pub const MAX_COOLDOWN_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub version: u32,
    /// Unix socket path, or an `http(s)://…/mcp` URL. `None` = the platform default socket.
    pub server: Option<String>,
    /// Forwarded to `list_active_projects_with_agents` (multi-device setups).
    pub root_agent_id: Option<String>,
    pub polling_interval_secs: u64,
    pub max_concurrent: usize,
    /// Where per-agent run logs go. `None` = `<data root>/agent_logs`.
    pub log_dir: Option<PathBuf>,
    /// Adds the providers' debug flags (`--debug-file` for claude, `--debug` otherwise).
    pub debug: bool,
    pub agents: BTreeMap<String, AgentSettings>,
    /// Provider presets and custom providers, by name. Built-ins are added when missing.
    pub providers: BTreeMap<String, ProviderSettings>,
    pub error_protection: ErrorProtection,
    pub log_retention: LogRetention,
    pub log_upload: LogUpload,
    /// Run against the embedded simulator with fake agents (the app's demo mode).
    pub demo: bool,
    /// Launch the app at login (the app applies it; the engine ignores it).
    pub launch_at_login: bool,
    /// Accept plain `http://` to a host other than this machine: the coordinator token then crosses the network
    /// in clear. Off by default; the app shows it as a warning.
    pub allow_insecure_http: bool,
    /// Fields the user set explicitly; they win over the server's dynamic configuration.
    pub pinned: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    pub enabled: bool,
    /// Display name (optional).
    pub name: Option<String>,
    /// Provider override; `None` = what the server says (`claude` when it says nothing).
    pub provider: Option<String>,
    /// Model override; `None` = what the server says.
    pub model: Option<String>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            name: None,
            provider: None,
            model: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Executable name (resolved on PATH) or absolute path.
    pub command: String,
    pub args: Vec<String>,
    /// Default model for this provider when the server names none.
    pub model: Option<String>,
    /// Which argv conventions to use: "claude", "gemini", "codex" or "custom". Defaults to the provider name
    /// when that is a built-in, else "custom".
    pub kind: Option<String>,
}

/// Which argv conventions a provider follows (settings spell it as a string: `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Claude,
    Gemini,
    Codex,
    Custom,
}

impl ProviderKind {
    /// The settings spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "claude" => Some(ProviderKind::Claude),
            "gemini" => Some(ProviderKind::Gemini),
            "codex" => Some(ProviderKind::Codex),
            "custom" => Some(ProviderKind::Custom),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Claude => "claude",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Codex => "codex",
            ProviderKind::Custom => "custom",
        }
    }
}

/// Settings are validated, so an unknown spelling only reaches here from code: it means custom.
impl From<&str> for ProviderKind {
    fn from(s: &str) -> ProviderKind {
        ProviderKind::parse(s).unwrap_or(ProviderKind::Custom)
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ProviderKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ErrorProtection {
    pub enabled: bool,
    pub default_cooldown_secs: u64,
    pub max_cooldown_secs: u64,
    pub quota_detection: bool,
    pub quota_margin_percent: u32,
}

impl Default for ErrorProtection {
    fn default() -> Self {
        Self {
            enabled: true,
            default_cooldown_secs: 60,
            max_cooldown_secs: 3600,
            quota_detection: true,
            quota_margin_percent: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogRetention {
    /// Keep at most this many run logs per agent (0 = unlimited).
    pub max_files_per_agent: usize,
    /// Keep at most this many megabytes of run logs per agent (0 = unlimited).
    pub max_mb_per_agent: u64,
}

impl Default for LogRetention {
    fn default() -> Self {
        Self {
            max_files_per_agent: 200,
            max_mb_per_agent: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogUpload {
    pub enabled: bool,
    /// REST base URL, e.g. `http://server:8080`. `None` = derived from an HTTP `server` setting.
    pub server_url: Option<String>,
    pub max_file_size_mb: u64,
    pub retry_count: u32,
    pub retry_delay_secs: f64,
}

impl Default for LogUpload {
    fn default() -> Self {
        Self {
            enabled: false,
            server_url: None,
            max_file_size_mb: 10,
            retry_count: 3,
            retry_delay_secs: 1.0,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let mut s = Self {
            version: SCHEMA_VERSION,
            server: None,
            root_agent_id: None,
            polling_interval_secs: 10,
            max_concurrent: 3,
            log_dir: None,
            debug: false,
            agents: BTreeMap::new(),
            providers: BTreeMap::new(),
            error_protection: ErrorProtection::default(),
            log_retention: LogRetention::default(),
            log_upload: LogUpload::default(),
            demo: false,
            launch_at_login: false,
            allow_insecure_http: false,
            pinned: Vec::new(),
        };
        s.add_builtin_providers();
        s
    }
}

/// The built-in provider presets (same defaults as the Python coordinator's YAML).
pub fn builtin_providers() -> BTreeMap<String, ProviderSettings> {
    let p = |cmd: &str, args: &[&str]| ProviderSettings {
        command: cmd.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        model: None,
        kind: Some(cmd.to_string()),
    };
    BTreeMap::from([
        (
            "claude".to_string(),
            p(
                "claude",
                &["--dangerously-skip-permissions", "--max-turns", "300", "--verbose"],
            ),
        ),
        ("gemini".to_string(), p("gemini", &["-y"])),
        // Codex 0.171 removed `--full-auto` ("unexpected argument"); `--sandbox workspace-write` is what it set.
        (
            "codex".to_string(),
            p("codex", &["exec", "--sandbox", "workspace-write"]),
        ),
    ])
}

/// A settings error that names the file, the field and the value, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: field `{field}` has invalid value {value}: {hint}")]
    Invalid {
        file: String,
        field: String,
        value: String,
        hint: String,
    },
    #[error("{file}: cannot be parsed: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: {message}")]
    Io { file: String, message: String },
}

impl ConfigError {
    pub fn invalid(file: &Path, field: &str, value: impl std::fmt::Display, hint: &str) -> Self {
        ConfigError::Invalid {
            file: file.display().to_string(),
            field: field.to_string(),
            value: value.to_string(),
            hint: hint.to_string(),
        }
    }
}

impl Settings {
    pub fn add_builtin_providers(&mut self) {
        for (name, p) in builtin_providers() {
            self.providers.entry(name).or_insert(p);
        }
    }

    /// Which argv conventions a provider uses.
    pub fn provider_kind(&self, name: &str) -> ProviderKind {
        match self.providers.get(name).and_then(|p| p.kind.as_deref()) {
            Some(k) => ProviderKind::from(k),
            None => ProviderKind::from(name),
        }
    }

    /// Check every field; `file` is only used in messages.
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        if self.version != SCHEMA_VERSION {
            return Err(ConfigError::invalid(
                file,
                "version",
                self.version,
                "this build reads version 1",
            ));
        }
        if self.polling_interval_secs == 0 || self.polling_interval_secs > 3600 {
            return Err(ConfigError::invalid(
                file,
                "polling_interval_secs",
                self.polling_interval_secs,
                "use a number of seconds between 1 and 3600",
            ));
        }
        if self.max_concurrent == 0 || self.max_concurrent > 256 {
            return Err(ConfigError::invalid(
                file,
                "max_concurrent",
                self.max_concurrent,
                "use 1 to 256",
            ));
        }
        if let Some(server) = &self.server {
            let s = server.trim();
            if s.is_empty() {
                return Err(ConfigError::invalid(
                    file,
                    "server",
                    "\"\"",
                    "remove the field for the default socket, or give a socket path or http(s)://host:port/mcp URL",
                ));
            }
            if s.contains("://") && !(s.starts_with("http://") || s.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    file,
                    "server",
                    format!("{s:?}"),
                    "only http:// and https:// URLs or socket paths are supported",
                ));
            }
            if let Err(e) = crate::pm::transport::check_cleartext(s, self.allow_insecure_http) {
                return Err(ConfigError::invalid(file, "server", format!("{s:?}"), &e));
            }
        }
        for id in self.agents.keys() {
            if let Err(e) = crate::paths::validate_id(id) {
                return Err(ConfigError::invalid(
                    file,
                    &format!("agents.{id}"),
                    format!("{id:?}"),
                    &e,
                ));
            }
        }
        for (id, a) in &self.agents {
            if let Some(p) = &a.provider {
                if !self.providers.contains_key(p) {
                    return Err(ConfigError::invalid(
                        file,
                        &format!("agents.{id}.provider"),
                        format!("{p:?}"),
                        "name a provider defined under `providers` (claude, gemini, codex or a custom one)",
                    ));
                }
            }
        }
        for (name, p) in &self.providers {
            if p.command.trim().is_empty() {
                return Err(ConfigError::invalid(
                    file,
                    &format!("providers.{name}.command"),
                    "\"\"",
                    "give an executable name or absolute path",
                ));
            }
            if let Some(k) = &p.kind {
                if ProviderKind::parse(k).is_none() {
                    return Err(ConfigError::invalid(
                        file,
                        &format!("providers.{name}.kind"),
                        format!("{k:?}"),
                        "use claude, gemini, codex or custom",
                    ));
                }
            }
        }
        let ep = &self.error_protection;
        if ep.default_cooldown_secs == 0 || ep.default_cooldown_secs > MAX_COOLDOWN_SECS {
            return Err(ConfigError::invalid(
                file,
                "error_protection.default_cooldown_secs",
                ep.default_cooldown_secs,
                &format!("use a number of seconds from 1 to {MAX_COOLDOWN_SECS}"),
            ));
        }
        if ep.max_cooldown_secs < ep.default_cooldown_secs {
            return Err(ConfigError::invalid(
                file,
                "error_protection.max_cooldown_secs",
                ep.max_cooldown_secs,
                "must be at least default_cooldown_secs",
            ));
        }
        if ep.max_cooldown_secs > MAX_COOLDOWN_SECS {
            return Err(ConfigError::invalid(
                file,
                "error_protection.max_cooldown_secs",
                ep.max_cooldown_secs,
                &format!("use at most {MAX_COOLDOWN_SECS} seconds (one week)"),
            ));
        }
        if let Some(d) = &self.log_dir {
            if !d.is_absolute() {
                return Err(ConfigError::invalid(
                    file,
                    "log_dir",
                    format!("{:?}", d.display().to_string()),
                    "use an absolute path (or remove the field for the default)",
                ));
            }
        }
        let lu = &self.log_upload;
        if !lu.retry_delay_secs.is_finite() || !(0.0..=3600.0).contains(&lu.retry_delay_secs) {
            return Err(ConfigError::invalid(
                file,
                "log_upload.retry_delay_secs",
                lu.retry_delay_secs,
                "use a number of seconds from 0 to 3600",
            ));
        }
        if lu.retry_count > 100 {
            return Err(ConfigError::invalid(
                file,
                "log_upload.retry_count",
                lu.retry_count,
                "use 0 to 100",
            ));
        }
        if lu.max_file_size_mb == 0 || lu.max_file_size_mb > 1024 {
            return Err(ConfigError::invalid(
                file,
                "log_upload.max_file_size_mb",
                lu.max_file_size_mb,
                "use 1 to 1024 (megabytes)",
            ));
        }
        if let Some(u) = &self.log_upload.server_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(ConfigError::invalid(
                    file,
                    "log_upload.server_url",
                    format!("{u:?}"),
                    "use an http(s):// URL",
                ));
            }
            if let Err(e) = crate::pm::transport::check_cleartext(u, self.allow_insecure_http) {
                return Err(ConfigError::invalid(
                    file,
                    "log_upload.server_url",
                    format!("{u:?}"),
                    &e,
                ));
            }
        }
        Ok(())
    }

    /// Parse and validate settings JSON text.
    pub fn from_json(text: &str, file: &Path) -> Result<Settings, ConfigError> {
        let mut s: Settings = serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.display().to_string(),
            message: format!("{e} (fix the file, or move it away to start from defaults)"),
        })?;
        s.add_builtin_providers();
        s.validate(file)?;
        Ok(s)
    }

    /// Load from `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::from_json(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(ConfigError::Io {
                file: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Validate, then write atomically (temp file + rename, mode 0600). An invalid value never reaches disk.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate(path)?;
        let text = serde_json::to_string_pretty(self).expect("settings serialize");
        crate::paths::write_atomic(path, text.as_bytes(), 0o600).map_err(|e| ConfigError::Io {
            file: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The effective log root.
    pub fn log_root(&self) -> PathBuf {
        self.log_dir.clone().unwrap_or_else(crate::paths::default_log_root)
    }

    /// The effective server address (socket path or URL).
    pub fn server_address(&self) -> String {
        match &self.server {
            Some(s) => crate::paths::expand_tilde(s.trim()),
            None => crate::paths::default_socket().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let s = Settings::default();
        s.validate(Path::new("x")).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(Settings::from_json(&text, Path::new("x")).unwrap(), s);
    }

    #[test]
    fn bad_interval_names_field_and_value() {
        let err = Settings::from_json(r#"{"polling_interval_secs": 0}"#, Path::new("/tmp/s.json")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/tmp/s.json") && msg.contains("polling_interval_secs") && msg.contains('0'),
            "{msg}"
        );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = Settings::from_json(r#"{"polling_intervall": 5}"#, Path::new("s.json")).unwrap_err();
        assert!(err.to_string().contains("polling_intervall"), "{err}");
    }

    #[test]
    fn log_upload_error_protection_and_log_dir_are_range_checked() {
        let bad = [
            (
                r#"{"log_upload": {"retry_delay_secs": 1e20}}"#,
                "log_upload.retry_delay_secs",
                "100000000000000000000",
            ),
            (
                r#"{"log_upload": {"retry_delay_secs": -1.0}}"#,
                "log_upload.retry_delay_secs",
                "-1",
            ),
            (
                r#"{"log_upload": {"retry_count": 100000}}"#,
                "log_upload.retry_count",
                "100000",
            ),
            (
                r#"{"log_upload": {"max_file_size_mb": 0}}"#,
                "log_upload.max_file_size_mb",
                "0",
            ),
            (
                r#"{"log_upload": {"max_file_size_mb": 99999999}}"#,
                "log_upload.max_file_size_mb",
                "99999999",
            ),
            (
                r#"{"error_protection": {"default_cooldown_secs": 0}}"#,
                "error_protection.default_cooldown_secs",
                "0",
            ),
            (
                r#"{"error_protection": {"default_cooldown_secs": 600, "max_cooldown_secs": 300}}"#,
                "error_protection.max_cooldown_secs",
                "300",
            ),
            (
                r#"{"error_protection": {"max_cooldown_secs": 99999999999}}"#,
                "error_protection.max_cooldown_secs",
                "99999999999",
            ),
            (r#"{"log_dir": "relative/logs"}"#, "log_dir", "relative/logs"),
        ];
        for (json, field, value) in bad {
            let msg = Settings::from_json(json, Path::new("/tmp/s.json"))
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("/tmp/s.json") && msg.contains(&format!("`{field}`")) && msg.contains(value),
                "{json}: {msg}"
            );
        }
        let ok = r#"{"log_dir": "/var/log/x", "log_upload": {"retry_delay_secs": 0.5, "retry_count": 0, "max_file_size_mb": 10}, "error_protection": {"default_cooldown_secs": 1, "max_cooldown_secs": 1}}"#;
        Settings::from_json(ok, Path::new("s.json")).unwrap();
    }

    #[test]
    fn save_refuses_invalid_and_keeps_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let good = Settings::default();
        good.save(&path).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let bad = Settings {
            max_concurrent: 0,
            ..Settings::default()
        };
        assert!(bad.save(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }
}
