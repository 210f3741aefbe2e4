//! Secret store: agent passkeys and the coordinator token. OWNER: secrets helper. Contract below.
//!
//! Service `com.aiagentpm.coordinator`; accounts `agent:<agent_id>` and `coordinator-token`.

use std::sync::Arc;

pub const SERVICE: &str = "com.aiagentpm.coordinator";
pub const TOKEN_ACCOUNT: &str = "coordinator-token";

pub fn agent_account(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SecretError {
    /// No Keychain / Secret Service, or it is locked, or access was denied. Never a reason to use a file.
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    #[error("secret store error: {0}")]
    Other(String),
}

pub trait SecretStore: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError>;
    fn set(&self, account: &str, value: &str) -> Result<(), SecretError>;
    /// Returns whether something was deleted.
    fn delete(&self, account: &str) -> Result<bool, SecretError>;
    /// Accounts present (e.g. `agent:agt_x`, `coordinator-token`). Never values.
    fn list(&self) -> Result<Vec<String>, SecretError>;
}

pub type SharedStore = Arc<dyn SecretStore>;
