//! Secret store: agent passkeys and the coordinator token. OWNER: secrets helper. Contract below.
//!
//! Service `com.aiagentpm.coordinator`; accounts `agent:<agent_id>` and `coordinator-token`.

use std::sync::Arc;

pub const SERVICE: &str = "com.aiagentpm.coordinator";
pub const TOKEN_ACCOUNT: &str = "coordinator-token";

pub fn agent_account(agent_id: &str) -> String {
    format!("agent:{agent_id}")
}

/// Shorter passkeys and tokens are refused: they are guessable, and too short to be masked safely in logs.
pub const MIN_SECRET_LEN: usize = 8;

/// Why `value` cannot be stored as a passkey or token (`what` names it in the message), if it cannot.
pub fn check_secret(what: &str, value: &str) -> Result<(), String> {
    let n = value.trim().chars().count();
    if n == 0 {
        return Err(format!("the {what} is empty: nothing stored"));
    }
    if n < MIN_SECRET_LEN {
        return Err(format!("the {what} has {n} characters; at least {MIN_SECRET_LEN} are needed (copy the whole value AI Agent PM shows)"));
    }
    Ok(())
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

/// The service name in use: [`SERVICE`] for every build, so a CLI and an app built either way share one set
/// of secrets; `AGENTPM_KEYRING_SERVICE` moves it elsewhere (tests, experiments).
pub fn service_name() -> String {
    match std::env::var("AGENTPM_KEYRING_SERVICE") {
        Ok(s) if !s.is_empty() => s,
        _ => SERVICE.to_string(),
    }
}

/// Account that lists the other accounts (the platform stores cannot enumerate); holds no secret.
const INDEX_ACCOUNT: &str = "index";

/// The platform store: macOS Keychain, or the Secret Service (gnome-keyring, KWallet) on Linux.
pub struct KeyringStore {
    service: String,
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyringStore {
    pub fn new() -> Self {
        KeyringStore {
            service: service_name(),
        }
    }

    pub fn with_service(service: &str) -> Self {
        KeyringStore {
            service: service.to_string(),
        }
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, account).map_err(map_err)
    }

    fn read_index(&self) -> Result<Vec<String>, SecretError> {
        match self.entry(INDEX_ACCOUNT)?.get_password() {
            Ok(s) => Ok(serde_json::from_str(&s).unwrap_or_default()),
            Err(keyring::Error::NoEntry) => Ok(Vec::new()),
            Err(e) => Err(map_err(e)),
        }
    }

    fn write_index(&self, mut accounts: Vec<String>) -> Result<(), SecretError> {
        accounts.sort();
        accounts.dedup();
        let text = serde_json::to_string(&accounts).unwrap_or_else(|_| "[]".into());
        self.entry(INDEX_ACCOUNT)?.set_password(&text).map_err(map_err)
    }
}

fn map_err(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretError::Unavailable(format!(
            "cannot access the secret store ({inner}); on macOS allow Keychain access, on Linux start a Secret Service (e.g. gnome-keyring) in this session"
        )),
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable(format!(
            "secret store failed ({inner}); on Linux a Secret Service must run on the session D-Bus (gnome-keyring, KWallet)"
        )),
        other => SecretError::Other(other.to_string()),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        match self.entry(account)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        self.entry(account)?.set_password(value).map_err(map_err)?;
        let mut idx = self.read_index()?;
        if !idx.iter().any(|a| a == account) {
            idx.push(account.to_string());
            self.write_index(idx)?;
        }
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<bool, SecretError> {
        let existed = match self.entry(account)?.delete_credential() {
            Ok(()) => true,
            Err(keyring::Error::NoEntry) => false,
            Err(e) => return Err(map_err(e)),
        };
        let idx = self.read_index()?;
        if idx.iter().any(|a| a == account) {
            self.write_index(idx.into_iter().filter(|a| a != account).collect())?;
        }
        Ok(existed)
    }

    fn list(&self) -> Result<Vec<String>, SecretError> {
        // The index may name entries deleted behind our back: report only those that exist.
        let mut out = Vec::new();
        for a in self.read_index()? {
            if self.get(&a)?.is_some() {
                out.push(a);
            }
        }
        Ok(out)
    }
}

/// In-memory store: unit tests, the demo, and YAML configs whose passkeys are given inline or by env.
#[derive(Default)]
pub struct MemoryStore {
    map: std::sync::Mutex<std::collections::BTreeMap<String, zeroize::Zeroizing<String>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        Ok(self.map.lock().unwrap().get(account).map(|v| v.to_string()))
    }
    fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
        self.map
            .lock()
            .unwrap()
            .insert(account.to_string(), zeroize::Zeroizing::new(value.to_string()));
        Ok(())
    }
    fn delete(&self, account: &str) -> Result<bool, SecretError> {
        Ok(self.map.lock().unwrap().remove(account).is_some())
    }
    fn list(&self) -> Result<Vec<String>, SecretError> {
        Ok(self.map.lock().unwrap().keys().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(store: &dyn SecretStore) {
        let acc = agent_account("agt_test");
        assert_eq!(store.get(&acc).unwrap(), None);
        store.set(&acc, "s3cret-value").unwrap();
        assert_eq!(store.get(&acc).unwrap().as_deref(), Some("s3cret-value"));
        assert!(store.list().unwrap().contains(&acc));
        assert!(store.delete(&acc).unwrap());
        assert!(!store.delete(&acc).unwrap());
        assert_eq!(store.get(&acc).unwrap(), None);
        assert!(!store.list().unwrap().contains(&acc));
    }

    #[test]
    fn memory_round_trip() {
        round_trip(&MemoryStore::new());
    }

    /// The real platform store. scripts/test sets AGENTPM_TEST_KEYRING=1 inside a D-Bus session with an
    /// unlocked gnome-keyring; then an unavailable store fails the test instead of skipping it.
    #[test]
    fn platform_round_trip() {
        if std::env::var("AGENTPM_TEST_KEYRING").as_deref() != Ok("1") {
            eprintln!("SKIPPED: set AGENTPM_TEST_KEYRING=1 with a Secret Service running");
            return;
        }
        let store = KeyringStore::with_service(&format!("com.aiagentpm.coordinator.unit-{}", std::process::id()));
        round_trip(&store);
        let _ = store.delete(INDEX_ACCOUNT);
    }
}
