//! The server's dynamic configuration (HTTP servers, protocol doc §4.3): fetched now and then, merged
//! into the live settings without overriding what the user pinned.

use super::protocol::Msg;
use super::{Supervisor, CALL_TIMEOUT};
use crate::pm::PmError;
use crate::secrets;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Default)]
pub(super) struct RemoteState {
    pub(super) base_prompt: Option<String>,
    pub(super) base_prompt_at: Option<Instant>,
    /// When the server's dynamic configuration was last fetched (HTTP servers only).
    pub(super) fetched_at: Option<Instant>,
}

/// The server's dynamic configuration is fetched again every this many polling intervals (at least 5 s).
const REMOTE_CONFIG_EVERY_TICKS: u32 = 5;

/// `http://host:8080/mcp` → `http://host:8080`.
pub(super) fn rest_base(address: &str) -> Option<String> {
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        return None;
    }
    let trimmed = address.trim_end_matches('/');
    Some(trimmed.strip_suffix("/mcp").unwrap_or(trimmed).to_string())
}

impl Supervisor {
    /// HTTP servers publish a coordinator configuration (protocol doc §4.3); fetch it now and then.
    pub(super) fn maybe_fetch_remote_config(&mut self) {
        let Some(base) = rest_base(&self.settings.server_address()) else { return };
        let Some(token) = self.secrets.token.clone() else { return };
        let every = (Duration::from_secs(self.settings.polling_interval_secs) * REMOTE_CONFIG_EVERY_TICKS).max(Duration::from_secs(5));
        if self.remote.fetched_at.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.remote.fetched_at = Some(Instant::now());
        let root = self.settings.root_agent_id.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let r = crate::pm::rest::fetch_remote_config(&base, &token, root.as_deref(), CALL_TIMEOUT).await;
            let _ = tx.send(Msg::RemoteConfig(r));
        });
    }

    /// Apply the server's configuration live. Rule: a field the user pinned (settings `pinned`; a YAML config
    /// or `import-yaml` pins every field the YAML sets) and any agent or provider already configured locally
    /// win; the server fills in everything else. The server's agents are added only when the local settings
    /// have no agents at all (a server-driven setup), and only those it sends a passkey for (never a human):
    /// an agent the user removed locally is never re-added.
    /// Passkeys from the server go straight into the secret store, never into settings, and only for agents
    /// that have none stored: a locally stored passkey wins (a differing one is logged once, without values).
    pub(super) fn remote_config(&mut self, r: Result<crate::pm::RemoteConfig, PmError>) {
        let rc = match r {
            Ok(rc) => rc,
            Err(e) => {
                // Older servers have no such endpoint: that is not an error worth showing.
                tracing::debug!("dynamic configuration not available: {e}");
                return;
            }
        };
        let pinned = |f: &str| self.settings.pinned.iter().any(|p| p == f);
        if let Some(p) = rc.polling_interval.filter(|p| (1..=3600).contains(p)) {
            if !pinned("polling_interval_secs") {
                self.settings.polling_interval_secs = p;
            }
        }
        if let Some(m) = rc.max_concurrent.filter(|m| (1..=256).contains(m)) {
            if !pinned("max_concurrent") {
                self.settings.max_concurrent = m;
            }
        }
        if rc.root_agent_id.is_some() && self.settings.root_agent_id.is_none() && !pinned("root_agent_id") {
            self.settings.root_agent_id = rc.root_agent_id.clone();
        }
        // Server-defined provider commands never run (a hostile server would choose our programs); a provider
        // name the server sends later selects among the local ones.
        let foreign: Vec<&str> = rc.ai_providers.iter().filter(|(name, _, _)| !self.settings.providers.contains_key(name)).map(|(n, _, _)| n.as_str()).collect();
        let foreign = (!foreign.is_empty()).then(|| format!("provider commands in its dynamic configuration ({})", foreign.join(", ")));
        let conflicts = self.secrets.conflicts.clone();
        let report_conflict = move |id: &str| {
            if conflicts.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string()) {
                tracing::warn!(agent = %id, "the server sends a passkey that differs from the one stored locally; the local one is kept");
            }
        };
        let mut to_store = Vec::new();
        let add_agents = !pinned("agents") && self.settings.agents.is_empty();
        for (id, passkey) in &rc.agents {
            if crate::paths::validate_id(id).is_err() {
                continue;
            }
            let passkey = passkey.as_ref().filter(|p| !p.is_empty());
            // Without root_agent_id the server lists every agent, humans included (as `{}`, no passkey; it
            // never checks their type): only an entry with a passkey is an AI agent we can run.
            if add_agents && passkey.is_some() {
                self.settings.agents.entry(id.clone()).or_default();
            }
            if !self.settings.agents.contains_key(id) {
                continue;
            }
            if let Some(pk) = passkey {
                self.redactor.add(pk);
                crate::redact::global().add(pk);
                match self.secrets.passkeys.get(id).cloned().flatten() {
                    Some(local) if local == *pk => {}
                    Some(_) => report_conflict(id),
                    None => to_store.push((id.clone(), pk.clone())),
                }
            }
        }
        if let Some(bp) = rc.agent_base_prompt.filter(|p| !p.trim().is_empty()) {
            self.remote.base_prompt = Some(bp);
        }
        if !to_store.is_empty() {
            let store = self.store.clone();
            let tx = self.tx.clone();
            tokio::task::spawn_blocking(move || {
                for (id, pk) in to_store {
                    // Only when the store has none: a passkey stored locally (perhaps since the last read) wins.
                    let account = secrets::agent_account(&id);
                    match store.get(&account) {
                        Ok(Some(local)) if local == pk => {}
                        Ok(Some(_)) => report_conflict(&id),
                        Ok(None) => {
                            if let Err(e) = store.set(&account, &pk) {
                                tracing::warn!(agent = %id, "cannot store the passkey sent by the server: {e}");
                            }
                        }
                        Err(e) => tracing::warn!(agent = %id, "cannot read the secret store; the server's passkey is not stored: {e}"),
                    }
                }
                let _ = tx.send(Msg::RemotePasskeysStored);
            });
        }
        if let Some(what) = foreign {
            self.report_server_command(None, &what);
        }
        self.status.dirty = true;
    }
}
