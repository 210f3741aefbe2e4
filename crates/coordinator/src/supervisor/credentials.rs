//! Token and passkeys: read once from the secret store (the Keychain may prompt per read), retried while
//! the store fails, and added to the redactor so they never reach a log.

use super::protocol::Msg;
use super::{Supervisor, CALL_TIMEOUT};
use crate::pm::PmClient;
use crate::secrets;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::Instant;

#[derive(Default)]
pub(super) struct Credentials {
    pub(super) token: Option<String>,
    /// Passkeys read once from the store (the Keychain may prompt per read); `None` = missing.
    pub(super) passkeys: HashMap<String, Option<String>>,
    pub(super) loaded: bool,
    pub(super) error: Option<String>,
    pub(super) warned_no_passkey: HashSet<String>,
    /// Agents whose stored passkey differs from the server's, already reported (once per agent): shared with
    /// the blocking task that stores the server's passkeys.
    pub(super) conflicts: Arc<std::sync::Mutex<HashSet<String>>>,
}

impl Supervisor {
    /// Read the token and every stored passkey once, off the runtime (keyring calls block).
    pub(super) fn load_secrets(&mut self) {
        let store = self.store.clone();
        // Every configured agent, enabled or not: a disabled agent's passkey must be masked all the same.
        let ids: Vec<String> = self.settings.agents.keys().cloned().collect();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut error = None;
            let mut passkeys = HashMap::new();
            let token = match store.get(secrets::TOKEN_ACCOUNT) {
                Ok(t) => t,
                Err(e) => {
                    error = Some(e.to_string());
                    None
                }
            };
            // Passkeys stored for agents the settings no longer name are still secrets to mask.
            let mut ids = ids;
            for acc in store.list().unwrap_or_default() {
                if let Some(id) = acc.strip_prefix("agent:").filter(|id| !ids.iter().any(|i| i == id)) {
                    ids.push(id.to_string());
                }
            }
            for id in ids {
                match store.get(&secrets::agent_account(&id)) {
                    Ok(v) => {
                        passkeys.insert(id, v.filter(|v| !v.is_empty()));
                    }
                    Err(e) => {
                        error.get_or_insert(e.to_string());
                    }
                }
            }
            let _ = tx.send(Msg::SecretsLoaded { passkeys, token, error });
        });
    }
    pub(super) fn secrets_loaded_msg(
        &mut self,
        passkeys: HashMap<String, Option<String>>,
        token: Option<String>,
        error: Option<String>,
    ) {
        for v in passkeys.values().flatten().chain(token.iter()) {
            self.redactor.add(v);
            crate::redact::global().add(v);
        }
        // Keep passkeys we already had when the store failed this time: running agents keep working.
        for (id, v) in passkeys {
            if v.is_some() || error.is_none() {
                self.secrets.passkeys.insert(id, v);
            } else {
                self.secrets.passkeys.entry(id).or_insert(None);
            }
        }
        if error.is_none() || token.is_some() {
            self.secrets.token = token;
        }
        if let Some(e) = &error {
            if self.secrets.error.as_deref() != Some(e) {
                tracing::warn!("{e}; will retry in 30 s (secrets are never written to disk instead)");
            }
            // Retried at the start of every cycle: the Keychain may be unlocked, the Secret Service started.
        }
        self.secrets.error = error;
        self.secrets.loaded = true;
        self.secrets.warned_no_passkey.clear();
        match PmClient::with_options(
            &self.settings.server_address(),
            self.secrets.token.clone(),
            CALL_TIMEOUT,
            self.settings.allow_insecure_http,
        ) {
            Ok(c) => self.client = Some(Arc::new(c)),
            Err(e) => {
                self.client = None;
                self.push_error(None, None, e.to_string());
            }
        }
        self.cycle.next_at = Instant::now();
    }
}
