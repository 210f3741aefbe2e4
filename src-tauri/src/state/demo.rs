//! Demo mode: a built-in PM server with fake agents, whose settings and passkeys live in memory only.

use coordinator::config::Settings;
use coordinator::demo::{Demo, DemoOptions};
use coordinator::secrets::{self, MemoryStore, SecretStore};
use std::sync::Arc;

pub const HINT: &str = "Demo mode: a built-in PM server with fake agents. Demo passkeys are demo-<agent id>, e.g. demo-agt_03.";

/// A started demo: the simulator, the settings its agents run with, and the in-memory store of its secrets.
pub struct DemoRun {
    pub demo: Demo,
    pub settings: Settings,
    pub store: Arc<MemoryStore>,
}

/// Start the simulator and seed the demo's passkeys and token. `fake_agent` is how this binary runs a fake
/// agent.
pub async fn start(fake_agent: Vec<String>) -> anyhow::Result<DemoRun> {
    let dir = coordinator::paths::data_root().join("demo");
    let demo = Demo::start(DemoOptions { agents: 3, projects: 2, items: 2, work_ms: 1500, dir, fake_agent, continuous: None }).await?;
    let store = Arc::new(MemoryStore::new());
    let mut settings = demo.settings.clone();
    let passkeys = demo.passkeys();
    // The last agent starts disabled and without a passkey, so that enabling it is something to try.
    for (i, (id, pk)) in passkeys.iter().enumerate() {
        if i + 1 < passkeys.len() {
            store.set(&secrets::agent_account(id), pk)?;
        } else if let Some(a) = settings.agents.get_mut(id) {
            a.enabled = false;
        }
    }
    store.set(secrets::TOKEN_ACCOUNT, &demo.coordinator_token())?;
    settings.polling_interval_secs = 1;
    Ok(DemoRun { demo, settings, store })
}

/// The user's saved settings with the demo's server, agents, providers and log folder.
pub fn overlay(saved: &Settings, demo: &Settings) -> Settings {
    let mut s = saved.clone();
    s.server = demo.server.clone();
    s.agents = demo.agents.clone();
    s.providers = demo.providers.clone();
    s.log_dir = demo.log_dir.clone();
    s.demo = true;
    s
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use super::super::AppCore;
    use coordinator::secrets;

    #[tokio::test]
    async fn demo_seeds_passkeys_for_all_but_the_last_agent_and_writes_nothing() {
        let d = tempfile::tempdir().unwrap();
        // Only this test relies on the data root (the demo dir lives under it).
        std::env::set_var(coordinator::paths::DATA_DIR_ENV, d.path());
        let c = core(d.path());
        c.start_engine(true).await.unwrap();
        let view = c.view().await;
        assert!(view.demo && !view.first_run);
        assert!(view.demo_hint.as_deref().unwrap_or("").contains("demo-<agent id>"));
        let ids: Vec<_> = view.settings.agents.keys().cloned().collect();
        assert_eq!(ids.len(), 3);
        let last = ids.last().unwrap().clone();
        assert!(!view.settings.agents[&last].enabled, "the last demo agent should wait for the user");
        let store = {
            let inner = c.inner.lock().await;
            AppCore::store_of(&inner, &c.platform_store)
        };
        for id in &ids[..2] {
            assert_eq!(store.get(&secrets::agent_account(id)).unwrap(), Some(format!("demo-{id}")));
        }
        assert_eq!(store.get(&secrets::agent_account(&last)).unwrap(), None);
        // The platform store is untouched by the demo.
        assert!(c.platform_store.list().unwrap().is_empty());
        // Trying things out in the demo: enabling the last agent and setting its passkey.
        c.set_agent(&last, true, None).await.unwrap();
        c.set_passkey(&last, &format!("demo-{last}")).await.unwrap();
        assert!(store.get(&secrets::agent_account(&last)).unwrap().is_some());
        assert!(c.platform_store.list().unwrap().is_empty());
        assert!(!d.path().join("settings.json").exists(), "demo agent changes reached settings.json");
        assert!(!serde_json::to_string(&c.view().await).unwrap().contains("demo-agt_01"));
        c.shutdown().await;
    }
}
