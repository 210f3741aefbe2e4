//! The server's dynamic configuration (HTTP servers, protocol doc §4.3): fetched now and then, merged
//! into the live settings without overriding what the user pinned.

use super::protocol::Msg;
use super::{Supervisor, CALL_TIMEOUT};
use crate::config::Settings;
use crate::pm::{PmError, RemoteConfig};
use crate::secrets;
use std::collections::HashMap;
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

/// What applying the server's configuration changed or asks for (pure: see [`merge`]).
#[derive(Debug, Default, PartialEq)]
pub(super) struct Merge {
    /// Passkeys to put into the secret store (agents that have none locally).
    pub(super) to_store: Vec<(String, String)>,
    /// Agents whose server passkey differs from the local one (the local one wins).
    pub(super) conflicts: Vec<String>,
    /// Every passkey the server sent for a configured agent (to mask in logs).
    pub(super) passkeys_seen: Vec<String>,
    /// Providers the server defines that are not configured locally (their commands never run).
    pub(super) foreign_providers: Vec<String>,
}

/// Merge the server's configuration into the settings. A field the user pinned and any agent or provider
/// configured locally win. The server's agents are added only when the local settings have none (a
/// server-driven setup), and only those it sends a passkey for: without `root_agent_id` it lists every
/// agent, humans included (as `{}`; it never checks their type).
pub(super) fn merge(settings: &mut Settings, rc: &RemoteConfig, local: &HashMap<String, Option<String>>) -> Merge {
    let pinned = |s: &Settings, f: &str| s.pinned.iter().any(|p| p == f);
    let mut m = Merge::default();
    if let Some(p) = rc.polling_interval.filter(|p| (1..=3600).contains(p)) {
        if !pinned(settings, "polling_interval_secs") {
            settings.polling_interval_secs = p;
        }
    }
    if let Some(n) = rc.max_concurrent.filter(|n| (1..=256).contains(n)) {
        if !pinned(settings, "max_concurrent") {
            settings.max_concurrent = n;
        }
    }
    if rc.root_agent_id.is_some() && settings.root_agent_id.is_none() && !pinned(settings, "root_agent_id") {
        settings.root_agent_id = rc.root_agent_id.clone();
    }
    m.foreign_providers = rc
        .ai_providers
        .iter()
        .filter(|(name, _, _)| !settings.providers.contains_key(name))
        .map(|(n, _, _)| n.clone())
        .collect();
    let add_agents = !pinned(settings, "agents") && settings.agents.is_empty();
    for (id, passkey) in &rc.agents {
        if crate::paths::validate_id(id).is_err() {
            continue;
        }
        let passkey = passkey.as_ref().filter(|p| !p.is_empty());
        if add_agents && passkey.is_some() {
            settings.agents.entry(id.clone()).or_default();
        }
        if !settings.agents.contains_key(id) {
            continue;
        }
        if let Some(pk) = passkey {
            m.passkeys_seen.push(pk.clone());
            match local.get(id).cloned().flatten() {
                Some(l) if l == *pk => {}
                Some(_) => m.conflicts.push(id.clone()),
                None => m.to_store.push((id.clone(), pk.clone())),
            }
        }
    }
    m
}

impl Supervisor {
    /// HTTP servers publish a coordinator configuration (protocol doc §4.3); fetch it now and then.
    pub(super) fn maybe_fetch_remote_config(&mut self) {
        let Some(base) = rest_base(&self.settings.server_address()) else {
            return;
        };
        let Some(token) = self.secrets.token.clone() else {
            return;
        };
        let every = (Duration::from_secs(self.settings.polling_interval_secs) * REMOTE_CONFIG_EVERY_TICKS)
            .max(Duration::from_secs(5));
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
        let m = merge(&mut self.settings, &rc, &self.secrets.passkeys);
        for pk in &m.passkeys_seen {
            self.redactor.add(pk);
            crate::redact::global().add(pk);
        }
        let foreign = (!m.foreign_providers.is_empty()).then(|| {
            format!(
                "provider commands in its dynamic configuration ({})",
                m.foreign_providers.join(", ")
            )
        });
        let conflicts = self.secrets.conflicts.clone();
        let report_conflict = move |id: &str| {
            if conflicts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string())
            {
                tracing::warn!(agent = %id, "the server sends a passkey that differs from the one stored locally; the local one is kept");
            }
        };
        for id in &m.conflicts {
            report_conflict(id);
        }
        let to_store = m.to_store;
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
                        Err(e) => {
                            tracing::warn!(agent = %id, "cannot read the secret store; the server's passkey is not stored: {e}")
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rc() -> RemoteConfig {
        RemoteConfig {
            polling_interval: Some(7),
            max_concurrent: Some(5),
            agents: vec![
                ("agt_ai".into(), Some("pk-ai-123456".into())),
                ("usr_human".into(), None),
                ("../x".into(), Some("pk-bad-1234".into())),
            ],
            ai_providers: vec![
                ("claude".into(), "claude".into(), vec![]),
                ("evil".into(), "/tmp/evil".into(), vec![]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_server_driven_setup_gets_only_ai_agents_with_safe_ids() {
        let mut s = Settings::default();
        let m = merge(&mut s, &rc(), &HashMap::new());
        assert_eq!(
            s.agents.keys().collect::<Vec<_>>(),
            vec!["agt_ai"],
            "humans and unsafe ids are never added"
        );
        assert_eq!(m.to_store, vec![("agt_ai".to_string(), "pk-ai-123456".to_string())]);
        assert_eq!((s.polling_interval_secs, s.max_concurrent), (7, 5));
        assert_eq!(m.foreign_providers, vec!["evil".to_string()]);
    }

    #[test]
    fn local_agents_pins_and_passkeys_win() {
        let mut s = Settings::default();
        s.agents.insert("agt_local".into(), Default::default());
        s.pinned = vec!["max_concurrent".into()];
        s.max_concurrent = 2;
        let mut r = rc();
        r.agents.push(("agt_local".into(), Some("pk-server-9999".into())));
        let local = HashMap::from([("agt_local".to_string(), Some("pk-local-0000".to_string()))]);
        let m = merge(&mut s, &r, &local);
        assert!(
            !s.agents.contains_key("agt_ai"),
            "the server's agents are not added to a local list"
        );
        assert_eq!(s.max_concurrent, 2, "a pinned field keeps the user's value");
        assert_eq!(s.polling_interval_secs, 7);
        assert_eq!(m.conflicts, vec!["agt_local".to_string()]);
        assert!(m.to_store.is_empty());
        assert_eq!(
            m.passkeys_seen,
            vec!["pk-server-9999".to_string()],
            "the server's passkey is still masked"
        );
    }
}
