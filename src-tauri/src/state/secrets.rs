//! Passkeys and the coordinator token: stored in the secret store (the Keychain, or the demo's memory store),
//! added to the redactor, never returned to the window.

use super::AppCore;
use crate::error::{AppError, AppResult};
use coordinator::secrets::{self, TOKEN_ACCOUNT};

impl AppCore {
    /// Store a passkey. The value is never returned, logged or kept anywhere else.
    pub async fn set_passkey(&self, agent_id: &str, value: &str) -> AppResult<()> {
        coordinator::paths::validate_id(agent_id)
            .map_err(|e| AppError::Message(format!("agent id {agent_id:?}: {e}")))?;
        secrets::check_secret("passkey", value).map_err(AppError::Message)?;
        let inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        coordinator::redact::global().add(value);
        let (acc, v) = (secrets::agent_account(agent_id), value.to_string());
        tokio::task::spawn_blocking(move || store.set(&acc, &v)).await??;
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(())
    }

    pub async fn delete_secret(&self, account: String) -> AppResult<bool> {
        let mut inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        let is_token = account == TOKEN_ACCOUNT;
        let r = tokio::task::spawn_blocking(move || store.delete(&account)).await??;
        if is_token {
            inner.token_present = Some(false);
        }
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(r)
    }

    pub async fn set_token(&self, value: &str) -> AppResult<()> {
        secrets::check_secret("token", value).map_err(AppError::Message)?;
        let mut inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        coordinator::redact::global().add(value);
        let v = value.to_string();
        tokio::task::spawn_blocking(move || store.set(TOKEN_ACCOUNT, &v)).await??;
        inner.token_present = Some(true);
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use super::*;
    use coordinator::secrets::{MemoryStore, SecretError, SecretStore};
    use std::sync::Arc;

    /// Counts reads, to check that the window's frequent view requests do not each hit the Keychain.
    struct CountingStore(MemoryStore, std::sync::atomic::AtomicUsize);
    impl SecretStore for CountingStore {
        fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(account)
        }
        fn set(&self, account: &str, value: &str) -> Result<(), SecretError> {
            self.0.set(account, value)
        }
        fn delete(&self, account: &str) -> Result<bool, SecretError> {
            self.0.delete(account)
        }
        fn list(&self) -> Result<Vec<String>, SecretError> {
            self.0.list()
        }
    }

    #[tokio::test]
    async fn token_presence_is_read_once_and_follows_set_and_delete() {
        let d = tempfile::tempdir().unwrap();
        let store = Arc::new(CountingStore(MemoryStore::new(), 0.into()));
        let c = AppCore::new(d.path().join("settings.json"), store.clone(), vec!["/bin/false".into()]).unwrap();
        for _ in 0..5 {
            assert!(!c.view().await.token_present);
        }
        assert_eq!(
            store.1.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the token was read more than once"
        );
        c.set_token("tok-abcdef").await.unwrap();
        assert!(c.view().await.token_present);
        assert_eq!(store.0.get(TOKEN_ACCOUNT).unwrap().as_deref(), Some("tok-abcdef"));
        assert!(c.delete_secret(TOKEN_ACCOUNT.to_string()).await.unwrap());
        assert!(!c.view().await.token_present);
        assert_eq!(store.1.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn passkeys_are_stored_but_never_returned() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        c.add_agent("agt_x").await.unwrap();
        c.set_passkey("agt_x", "pk-never-shown-1234").await.unwrap();
        assert!(c.platform_store.get("agent:agt_x").unwrap().is_some());
        let view = serde_json::to_string(&c.view().await).unwrap();
        assert!(!view.contains("pk-never-shown-1234"));
        assert!(c.set_passkey("../etc", "x").await.is_err());
        assert!(c.set_passkey("agt_x", "  ").await.is_err());
        assert!(c.delete_secret("agent:agt_x".into()).await.unwrap());
        let saved = std::fs::read_to_string(d.path().join("settings.json")).unwrap();
        assert!(!saved.contains("pk-never-shown"));
    }
}
