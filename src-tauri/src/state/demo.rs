//! Demo mode: a built-in PM server with fake agents that keeps going (refilled work, runs of 20-60 s that
//! stream their transcripts, one agent failing every run, one on a quota). Its passkeys live in memory; its
//! settings (agents, providers, intervals: whatever the user edits while trying it) live in
//! `demo-settings.json` beside the app's settings, so they survive a restart of the demo and never reach
//! the real `settings.json`. Its pauses and cooldowns are in `demo-state.json`, its history in `demo-runs.db`.

use coordinator::config::Settings;
use coordinator::demo::{Continuous, Demo, DemoOptions, DEMO_PROVIDER, DEMO_PROVIDER_2};
use coordinator::secrets::{self, MemoryStore, SecretStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const HINT: &str =
    "Demo mode: a built-in PM server with fake agents. Demo passkeys are demo-<agent id>, e.g. demo-agt_03.";

/// A started demo: the simulator, the settings its agents run with, and the in-memory store of its secrets.
pub struct DemoRun {
    pub demo: Demo,
    pub settings: Settings,
    pub store: Arc<MemoryStore>,
}

/// The demo's own settings file, beside the app's.
pub fn settings_file(settings_path: &Path) -> PathBuf {
    settings_path.with_file_name("demo-settings.json")
}

/// The demo's engine state (pauses, cooldowns), beside the app's.
pub fn state_file(settings_path: &Path) -> PathBuf {
    settings_path.with_file_name("demo-state.json")
}

/// Start the simulator and seed the demo's passkeys and token. `fake_agent` is how this binary runs a fake
/// agent; `settings_path` is the app's settings file (the demo's lives beside it).
pub async fn start(fake_agent: Vec<String>, settings_path: &Path) -> anyhow::Result<DemoRun> {
    let dir = coordinator::paths::data_root().join("demo");
    let continuous = Some(Continuous::app(coordinator::demo::random_seed()));
    let demo = Demo::start(DemoOptions {
        agents: 4,
        projects: 2,
        items: 2,
        work_ms: 1500,
        dir,
        fake_agent,
        continuous,
    })
    .await?;
    let file = settings_file(settings_path);
    let settings = match file.exists() {
        true => restore(&Settings::load(&file)?, &demo.settings),
        false => first_settings(&demo.settings),
    };
    let store = Arc::new(MemoryStore::new());
    // Enabled agents get their (public) demo passkey; a disabled one gets it when the user sets it.
    for (id, pk) in demo.passkeys() {
        if settings.agents.get(&id).is_some_and(|a| a.enabled) {
            store.set(&secrets::agent_account(&id), &pk)?;
        }
    }
    store.set(secrets::TOKEN_ACCOUNT, &demo.coordinator_token())?;
    Ok(DemoRun { demo, settings, store })
}

/// The agent a first demo starts disabled and without a passkey, so enabling it is something to try: one
/// that works normally (agt_02 fails on purpose, agt_04 hits a quota).
pub const WAITING_AGENT: &str = "agt_03";

fn first_settings(fresh: &Settings) -> Settings {
    let mut s = fresh.clone();
    if let Some(a) = s.agents.get_mut(WAITING_AGENT) {
        a.enabled = false;
    }
    s.polling_interval_secs = 1;
    s
}

/// The user's demo settings from last time, pointed at this run's simulator and fake-agent binary.
pub fn restore(saved: &Settings, fresh: &Settings) -> Settings {
    let mut s = saved.clone();
    s.server = fresh.server.clone();
    s.log_dir = fresh.log_dir.clone();
    s.demo = true;
    for name in [DEMO_PROVIDER, DEMO_PROVIDER_2] {
        let Some(p) = fresh.providers.get(name) else { continue };
        // The user's args and model stay; the program is this build's.
        s.providers.entry(name.to_string()).or_insert_with(|| p.clone()).command = p.command.clone();
    }
    s
}

/// Keep the demo's settings for its next start.
pub fn save(settings_path: &Path, s: &Settings) -> Result<(), coordinator::config::ConfigError> {
    s.save(&settings_file(settings_path))
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use super::super::AppCore;
    use coordinator::secrets;

    #[tokio::test]
    async fn demo_seeds_passkeys_keeps_edits_across_restarts_and_never_writes_the_real_settings() {
        let d = tempfile::tempdir().unwrap();
        // Only this test relies on the data root (the demo dir lives under it).
        std::env::set_var(coordinator::paths::DATA_DIR_ENV, d.path());
        let c = core(d.path());
        c.start_engine(true).await.unwrap();
        let view = c.view().await;
        assert!(view.demo && !view.first_run);
        assert!(view.demo_hint.as_deref().unwrap_or("").contains("demo-<agent id>"));
        let ids: Vec<_> = view.settings.agents.keys().cloned().collect();
        assert_eq!(ids.len(), 4);
        let last = super::WAITING_AGENT.to_string();
        assert!(!view.settings.agents[&last].enabled, "agt_03 should wait for the user");
        // The quota agent runs on its own provider account, so its limit parks only itself.
        assert_eq!(
            view.settings.agents["agt_04"].provider.as_deref(),
            Some(coordinator::demo::DEMO_PROVIDER_2)
        );
        let store = {
            let inner = c.inner.lock().await;
            AppCore::store_of(&inner, &c.platform_store)
        };
        for id in ids.iter().filter(|id| **id != last) {
            assert_eq!(
                store.get(&secrets::agent_account(id)).unwrap(),
                Some(format!("demo-{id}"))
            );
        }
        assert_eq!(store.get(&secrets::agent_account(&last)).unwrap(), None);
        // The platform store is untouched by the demo.
        assert!(c.platform_store.list().unwrap().is_empty());
        // Trying things out in the demo: enabling the last agent, disabling the first, a setting.
        c.set_agent(&last, true, None).await.unwrap();
        c.set_passkey(&last, &format!("demo-{last}")).await.unwrap();
        c.set_agent(&ids[0], false, None).await.unwrap();
        let mut s = c.view().await.saved;
        assert!(s.demo, "in demo mode the window edits the demo's settings");
        s.max_concurrent = 2;
        assert!(
            !c.save_settings(s).await.unwrap(),
            "saving demo settings switched the mode"
        );
        assert!(store.get(&secrets::agent_account(&last)).unwrap().is_some());
        assert!(c.platform_store.list().unwrap().is_empty());
        assert!(
            !d.path().join("settings.json").exists(),
            "demo changes reached settings.json"
        );
        assert!(!serde_json::to_string(&c.view().await).unwrap().contains("demo-agt_01"));
        c.running_engine()
            .await
            .unwrap()
            .pause_agent(&ids[1], None, false)
            .await;
        assert!(paused(&c, &ids[1]).await, "the pause did not take");
        // A restart of the demo keeps all of it.
        c.start_engine(true).await.unwrap();
        assert!(paused(&c, &ids[1]).await, "the pause was lost with the restart");
        let view = c.view().await;
        assert!(view.settings.agents[&last].enabled && !view.settings.agents[&ids[0]].enabled);
        assert_eq!(view.settings.max_concurrent, 2);
        assert!(!d.path().join("settings.json").exists());
        let store = {
            let inner = c.inner.lock().await;
            AppCore::store_of(&inner, &c.platform_store)
        };
        assert_eq!(
            store.get(&secrets::agent_account(&last)).unwrap(),
            Some(format!("demo-{last}"))
        );
        // Leaving the demo writes only the mode to the real settings, none of the demo's.
        let mut s = c.view().await.saved;
        s.demo = false;
        assert!(c.save_settings(s).await.unwrap());
        let real = coordinator::config::Settings::load(&d.path().join("settings.json")).unwrap();
        assert!(
            !real.demo && real.agents.is_empty() && real.max_concurrent != 2,
            "{real:?}"
        );
        c.shutdown().await;
    }

    async fn paused(c: &AppCore, id: &str) -> bool {
        for _ in 0..100 {
            let snap = c.running_engine().await.unwrap().snapshot();
            if snap
                .agents
                .iter()
                .any(|a| a.agent_id == id && matches!(a.state, coordinator::api::AgentState::Paused { .. }))
            {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    #[test]
    fn restore_points_at_this_run_and_keeps_the_users_provider_edits() {
        let mut fresh = coordinator::config::Settings {
            server: Some("/new/mcp.sock".into()),
            ..Default::default()
        };
        fresh.providers.insert(
            "fake".into(),
            coordinator::config::ProviderSettings {
                command: "/new/exe".into(),
                args: vec!["--fake-agent".into()],
                ..Default::default()
            },
        );
        let mut saved = coordinator::config::Settings {
            server: Some("/old/mcp.sock".into()),
            ..Default::default()
        };
        saved.providers.insert(
            "fake".into(),
            coordinator::config::ProviderSettings {
                command: "/old/exe".into(),
                args: vec!["--fake-agent".into(), "--work-ms".into(), "9".into()],
                ..Default::default()
            },
        );
        let s = super::restore(&saved, &fresh);
        assert_eq!(s.server.as_deref(), Some("/new/mcp.sock"));
        assert_eq!(s.providers["fake"].command, "/new/exe");
        assert!(s.providers["fake"].args.contains(&"9".to_string()));
        assert!(s.demo);
    }
}
