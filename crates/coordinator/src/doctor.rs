//! `doctor`: server reachable, provider CLIs found, passkeys present, dirs writable — each line OK/FAIL + fix hint.
use crate::config::Settings;
use crate::secrets::SecretStore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found (plain words; never a secret).
    pub detail: String,
    /// How to fix it when not ok.
    pub hint: Option<String>,
}

/// Run every check (bounded in time: the server check has a short timeout).
pub async fn run(settings: &Settings, store: &dyn SecretStore) -> Vec<Check> {
    let _ = (settings, store);
    Vec::new()
}
