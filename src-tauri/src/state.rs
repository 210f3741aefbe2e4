//! The app's state: the engine handle, the secret store, the settings file, and demo mode.
//!
//! Everything here is plain Rust (no Tauri types) so the command logic is unit-tested without a window.
//!
//! Settings: the app reads and writes the engine's `settings.json` through `coordinator::config` (same file,
//! schema, validation and atomic 0600 write as the CLI), so the two can never disagree about a field and an
//! invalid value never reaches disk. tauri-plugin-store keeps only window state (`ui-state.json`).
//!
//! The app takes the same single-instance lock as `agentpm-coordinator run` for its settings file: two
//! coordinators on one settings/state file would each take the other's children for orphans.

use coordinator::api::Snapshot;
use coordinator::config::{AgentSettings, ConfigError, Settings};
use coordinator::demo::{Demo, DemoOptions};
use coordinator::engine::{Engine, EngineConfig};
use coordinator::lock::{InstanceLock, LockError};
use coordinator::secrets::{self, MemoryStore, SecretStore, SharedStore};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// An inline error for one settings field (the Settings page shows it under the field).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl From<ConfigError> for FieldError {
    fn from(e: ConfigError) -> Self {
        match &e {
            ConfigError::Invalid { field, value, hint, .. } => FieldError { field: field.clone(), message: format!("{value} is not valid: {hint}") },
            other => FieldError { field: String::new(), message: other.to_string() },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AppView {
    /// What the engine runs with (in demo mode: your settings with the demo's server, agents and providers).
    pub settings: Settings,
    /// What is saved in settings.json.
    pub saved: Settings,
    pub demo: bool,
    pub first_run: bool,
    pub settings_path: PathBuf,
    /// Window state that is not a setting (last page, chosen log), kept by the store plugin.
    pub ui_state_path: PathBuf,
    pub start_error: Option<String>,
    pub log_root: PathBuf,
    pub token_present: bool,
    pub snapshot: Snapshot,
    pub demo_hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFile {
    pub path: PathBuf,
    pub name: String,
    pub bytes: u64,
}

struct Inner {
    engine: Option<Engine>,
    demo: Option<Demo>,
    /// Demo agents' enabled flags and passkeys live in memory only.
    demo_settings: Option<Settings>,
    demo_store: Option<Arc<MemoryStore>>,
    saved: Settings,
    /// Held while a (non-demo) engine runs on `settings_path`.
    lock: Option<InstanceLock>,
    /// Why the engine is not running (e.g. another coordinator holds the lock); shown in the window.
    start_error: Option<String>,
    /// Whether the coordinator token is stored, read once and then kept up to date by set/delete/import:
    /// every Keychain read may prompt on macOS, and the window asks for the view often.
    token_present: Option<bool>,
}

pub struct AppCore {
    pub settings_path: PathBuf,
    platform_store: SharedStore,
    /// How this binary runs a fake agent (demo mode).
    fake_agent: Vec<String>,
    inner: Mutex<Inner>,
    /// Bumped whenever a new engine starts, so watchers of the old one stop.
    pub generation: std::sync::atomic::AtomicU64,
    /// A task is retrying to start while another coordinator holds the lock (only one such task).
    pub waiting_for_lock: std::sync::atomic::AtomicBool,
}

impl AppCore {
    pub fn new(settings_path: PathBuf, platform_store: SharedStore, fake_agent: Vec<String>) -> Result<AppCore, ConfigError> {
        let saved = Settings::load(&settings_path)?;
        Ok(AppCore {
            settings_path,
            platform_store,
            fake_agent,
            inner: Mutex::new(Inner { engine: None, demo: None, demo_settings: None, demo_store: None, saved, lock: None, start_error: None, token_present: None }),
            generation: 0.into(),
            waiting_for_lock: false.into(),
        })
    }

    pub fn first_run(&self) -> bool {
        !self.settings_path.exists()
    }

    fn store_of(inner: &Inner, platform: &SharedStore) -> SharedStore {
        match &inner.demo_store {
            Some(s) => s.clone(),
            None => platform.clone(),
        }
    }

    /// The settings the engine runs with: demo overlay on top of the saved settings.
    fn effective(inner: &Inner) -> Settings {
        match &inner.demo_settings {
            Some(d) => {
                let mut s = inner.saved.clone();
                s.server = d.server.clone();
                s.agents = d.agents.clone();
                s.providers = d.providers.clone();
                s.log_dir = d.log_dir.clone();
                s.demo = true;
                s
            }
            None => inner.saved.clone(),
        }
    }

    /// Start (or restart) the engine in the mode the settings ask for. Returns the new engine.
    pub async fn start_engine(&self, demo: bool) -> anyhow::Result<Engine> {
        let mut inner = self.inner.lock().await;
        if let Some(e) = inner.engine.take() {
            e.shutdown().await;
        }
        if let Some(d) = inner.demo.take() {
            d.sim.shutdown().await;
        }
        inner.demo_settings = None;
        inner.demo_store = None;
        inner.lock = None; // the old engine is down: release before taking it again
        inner.start_error = None;
        inner.token_present = None; // demo and platform stores differ
        if !demo {
            match InstanceLock::acquire(&self.settings_path) {
                Ok(l) => {
                    if let Some(m) = &l.took_over {
                        tracing::warn!("{m}");
                    }
                    inner.lock = Some(l);
                }
                Err(e) => {
                    inner.start_error = Some(match &e {
                        LockError::Held { .. } => format!("Not running: {e}. The app starts by itself once that coordinator stops (or press Start)."),
                        LockError::Io { .. } => format!("Not running: {e}."),
                    });
                    return Err(e.into());
                }
            }
        }
        if demo {
            let dir = coordinator::paths::data_root().join("demo");
            let d = Demo::start(DemoOptions { agents: 3, projects: 2, items: 2, work_ms: 1500, dir, fake_agent: self.fake_agent.clone() }).await?;
            let store = Arc::new(MemoryStore::new());
            let mut ds = d.settings.clone();
            let passkeys = d.passkeys();
            // The last agent starts disabled and without a passkey, so that enabling it is something to try.
            for (i, (id, pk)) in passkeys.iter().enumerate() {
                if i + 1 < passkeys.len() {
                    store.set(&secrets::agent_account(id), pk)?;
                } else if let Some(a) = ds.agents.get_mut(id) {
                    a.enabled = false;
                }
            }
            store.set(secrets::TOKEN_ACCOUNT, &d.coordinator_token())?;
            ds.polling_interval_secs = 1;
            inner.demo_settings = Some(ds);
            inner.demo_store = Some(store);
            inner.demo = Some(d);
        }
        let settings = Self::effective(&inner);
        let engine = Engine::launch(EngineConfig {
            settings,
            settings_path: self.settings_path.clone(),
            // Beside settings.json (in production exactly `paths::state_path()`).
            state_path: if demo { None } else { Some(self.settings_path.with_file_name("state.json")) },
            secrets: Self::store_of(&inner, &self.platform_store),
            redactor: coordinator::redact::global().clone(),
            autostart: true,
        });
        inner.engine = Some(engine.clone());
        self.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(engine)
    }

    pub async fn engine(&self) -> Option<Engine> {
        self.inner.lock().await.engine.clone()
    }

    pub async fn is_demo(&self) -> bool {
        self.inner.lock().await.demo.is_some()
    }

    pub async fn view(&self) -> AppView {
        let mut inner = self.inner.lock().await;
        let settings = Self::effective(&inner);
        let token_present = match inner.token_present {
            Some(p) => p,
            None => {
                let store = Self::store_of(&inner, &self.platform_store);
                let p = tokio::task::spawn_blocking(move || store.get(secrets::TOKEN_ACCOUNT)).await.ok().and_then(|r| r.ok()).flatten().is_some();
                inner.token_present = Some(p);
                p
            }
        };
        AppView {
            log_root: settings.log_root(),
            saved: inner.saved.clone(),
            demo: inner.demo.is_some(),
            first_run: self.first_run() && inner.demo.is_none(),
            settings_path: self.settings_path.clone(),
            ui_state_path: self.settings_path.with_file_name("ui-state.json"),
            start_error: inner.start_error.clone(),
            token_present,
            snapshot: inner.engine.as_ref().map(|e| e.snapshot()).unwrap_or_default(),
            demo_hint: inner.demo.as_ref().map(|_| "Demo mode: a built-in PM server with fake agents. Demo passkeys are demo-<agent id>, e.g. demo-agt_03.".to_string()),
            settings,
        }
    }

    async fn apply(&self, inner: &Inner) {
        if let Some(e) = &inner.engine {
            e.reload(Self::effective(inner)).await;
        }
    }

    /// Validate and save the user's settings; nothing is written when a field is invalid.
    /// Returns whether demo mode was switched (the caller restarts the engine).
    pub async fn save_settings(&self, new: Settings) -> Result<bool, FieldError> {
        let mut inner = self.inner.lock().await;
        let mut new = new;
        new.add_builtin_providers();
        new.validate(&self.settings_path)?;
        // Fields the user saved explicitly win over the server's dynamic configuration.
        for f in ["polling_interval_secs", "max_concurrent"] {
            if !new.pinned.iter().any(|p| p == f) {
                new.pinned.push(f.to_string());
            }
        }
        new.save(&self.settings_path)?;
        let demo_changed = new.demo != inner.demo.is_some();
        inner.saved = new;
        self.apply(&inner).await;
        Ok(demo_changed)
    }

    fn agents_mut(inner: &mut Inner) -> (&mut Settings, bool) {
        match inner.demo_settings.as_mut() {
            Some(d) => (d, true),
            None => (&mut inner.saved, false),
        }
    }

    pub async fn set_agent(&self, agent_id: &str, enabled: bool, provider: Option<String>) -> Result<(), String> {
        let mut inner = self.inner.lock().await;
        let path = self.settings_path.clone();
        let (s, demo) = Self::agents_mut(&mut inner);
        let mut next = s.clone();
        let a = next.agents.get_mut(agent_id).ok_or_else(|| format!("unknown agent {agent_id}"))?;
        a.enabled = enabled;
        a.provider = provider.filter(|p| !p.is_empty());
        next.validate(&path).map_err(|e| e.to_string())?;
        if !demo {
            next.save(&path).map_err(|e| e.to_string())?;
        }
        *s = next;
        self.apply(&inner).await;
        Ok(())
    }

    pub async fn add_agent(&self, agent_id: &str) -> Result<(), String> {
        coordinator::paths::validate_id(agent_id).map_err(|e| format!("agent id {agent_id:?}: {e}"))?;
        let mut inner = self.inner.lock().await;
        let path = self.settings_path.clone();
        let (s, demo) = Self::agents_mut(&mut inner);
        s.agents.entry(agent_id.to_string()).or_insert_with(AgentSettings::default);
        if !demo {
            s.save(&path).map_err(|e| e.to_string())?;
        }
        self.apply(&inner).await;
        Ok(())
    }

    pub async fn remove_agent(&self, agent_id: &str) -> Result<(), String> {
        let mut inner = self.inner.lock().await;
        let path = self.settings_path.clone();
        let (s, demo) = Self::agents_mut(&mut inner);
        s.agents.remove(agent_id);
        if !demo {
            s.save(&path).map_err(|e| e.to_string())?;
        }
        self.apply(&inner).await;
        Ok(())
    }

    /// Store a passkey. The value is never returned, logged or kept anywhere else.
    pub async fn set_passkey(&self, agent_id: &str, value: &str) -> Result<(), String> {
        coordinator::paths::validate_id(agent_id).map_err(|e| format!("agent id {agent_id:?}: {e}"))?;
        if value.trim().is_empty() {
            return Err("the passkey is empty: nothing stored".into());
        }
        let inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        coordinator::redact::global().add(value);
        let (acc, v) = (secrets::agent_account(agent_id), value.to_string());
        tokio::task::spawn_blocking(move || store.set(&acc, &v)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(())
    }

    pub async fn delete_secret(&self, account: String) -> Result<bool, String> {
        let mut inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        let is_token = account == secrets::TOKEN_ACCOUNT;
        let r = tokio::task::spawn_blocking(move || store.delete(&account)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        if is_token {
            inner.token_present = Some(false);
        }
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(r)
    }

    pub async fn set_token(&self, value: &str) -> Result<(), String> {
        if value.trim().is_empty() {
            return Err("the token is empty: nothing stored".into());
        }
        let mut inner = self.inner.lock().await;
        let store = Self::store_of(&inner, &self.platform_store);
        coordinator::redact::global().add(value);
        let v = value.to_string();
        tokio::task::spawn_blocking(move || store.set(secrets::TOKEN_ACCOUNT, &v)).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        inner.token_present = Some(true);
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(())
    }

    /// Run logs of an agent, newest first.
    pub async fn list_runs(&self, agent_id: &str) -> Vec<RunFile> {
        let root = Self::effective(&*self.inner.lock().await).log_root();
        coordinator::logs::list_runs(&root, agent_id)
            .into_iter()
            .map(|p| RunFile { name: p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), bytes: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0), path: p })
            .collect()
    }

    /// A path the UI may read or open: only files under the log root (no traversal out of it).
    pub async fn checked_log_path(&self, path: &Path) -> Result<PathBuf, String> {
        let root = Self::effective(&*self.inner.lock().await).log_root();
        let root = std::fs::canonicalize(&root).map_err(|e| format!("log folder {}: {e}", root.display()))?;
        let p = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !p.starts_with(&root) {
            return Err(format!("{} is not inside the log folder {}", path.display(), root.display()));
        }
        Ok(p)
    }

    pub async fn read_log(&self, path: &Path, max_bytes: u64) -> Result<String, String> {
        let p = self.checked_log_path(path).await?;
        Ok(coordinator::logs::read_tail(&p, max_bytes.clamp(1024, 4 * 1024 * 1024)))
    }

    pub async fn doctor(&self) -> Vec<coordinator::doctor::Check> {
        let (settings, store) = {
            let inner = self.inner.lock().await;
            (Self::effective(&inner), Self::store_of(&inner, &self.platform_store))
        };
        coordinator::doctor::run(&settings, store.as_ref()).await
    }

    /// Import the Python coordinator's YAML (or AI Agent PM's export) into the platform store and settings.
    pub async fn import(&self, path: &Path, scrub: bool) -> Result<coordinator::import::ImportReport, String> {
        let store = self.platform_store.clone();
        let (yaml, settings_path) = (path.to_path_buf(), self.settings_path.clone());
        let report = tokio::task::spawn_blocking(move || coordinator::import::import_yaml(&yaml, store.as_ref(), &settings_path, &coordinator::import::ImportOptions { scrub, overwrite: false }))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let mut inner = self.inner.lock().await;
        inner.token_present = None; // the import may have stored one
        inner.saved = Settings::load(&self.settings_path).map_err(|e| e.to_string())?;
        self.apply(&inner).await;
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(report)
    }

    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        if let Some(e) = inner.engine.take() {
            e.shutdown().await;
        }
        if let Some(d) = inner.demo.take() {
            d.sim.shutdown().await;
        }
        inner.lock = None;
    }
}

/// Does a provider command resolve (PATH plus the usual install locations)?
pub fn test_provider(command: &str) -> Result<String, String> {
    coordinator::launch::resolve_command(command.trim()).map(|p| p.display().to_string()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core(dir: &Path) -> AppCore {
        AppCore::new(dir.join("settings.json"), Arc::new(MemoryStore::new()), vec!["/bin/false".into()]).unwrap()
    }

    #[tokio::test]
    async fn invalid_settings_are_not_saved_and_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.polling_interval_secs = 0;
        let e = c.save_settings(s.clone()).await.unwrap_err();
        assert_eq!(e.field, "polling_interval_secs");
        assert!(!d.path().join("settings.json").exists(), "invalid settings reached disk");
        s.polling_interval_secs = 7;
        c.save_settings(s).await.unwrap();
        assert_eq!(Settings::load(&d.path().join("settings.json")).unwrap().polling_interval_secs, 7);
        assert!(!c.first_run());
    }

    /// Counts reads, to check that the window's frequent view requests do not each hit the Keychain.
    struct CountingStore(MemoryStore, std::sync::atomic::AtomicUsize);
    impl coordinator::secrets::SecretStore for CountingStore {
        fn get(&self, account: &str) -> Result<Option<String>, coordinator::secrets::SecretError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(account)
        }
        fn set(&self, account: &str, value: &str) -> Result<(), coordinator::secrets::SecretError> {
            self.0.set(account, value)
        }
        fn delete(&self, account: &str) -> Result<bool, coordinator::secrets::SecretError> {
            self.0.delete(account)
        }
        fn list(&self) -> Result<Vec<String>, coordinator::secrets::SecretError> {
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
        assert_eq!(store.1.load(std::sync::atomic::Ordering::SeqCst), 1, "the token was read more than once");
        c.set_token("tok-abcdef").await.unwrap();
        assert!(c.view().await.token_present);
        assert_eq!(store.0.get(secrets::TOKEN_ACCOUNT).unwrap().as_deref(), Some("tok-abcdef"));
        assert!(c.delete_secret(secrets::TOKEN_ACCOUNT.to_string()).await.unwrap());
        assert!(!c.view().await.token_present);
        assert_eq!(store.1.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_second_coordinator_on_the_same_settings_is_refused_and_says_who() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (core(d.path()), core(d.path()));
        a.start_engine(false).await.unwrap();
        let e = b.start_engine(false).await.err().expect("the second engine started").to_string();
        assert!(e.contains("another coordinator is already running") && e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(b.view().await.start_error.is_some_and(|m| m.contains(&e) && m.contains("starts by itself")));
        assert!(b.engine().await.is_none());
        // Released when the first one stops.
        a.shutdown().await;
        b.start_engine(false).await.unwrap();
        assert!(b.view().await.start_error.is_none());
        b.shutdown().await;
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

    #[tokio::test]
    async fn logs_outside_the_log_folder_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.log_dir = Some(d.path().join("logs"));
        c.save_settings(s).await.unwrap();
        std::fs::create_dir_all(d.path().join("logs/agt_a")).unwrap();
        std::fs::write(d.path().join("logs/agt_a/1.log"), "hello").unwrap();
        assert_eq!(c.read_log(&d.path().join("logs/agt_a/1.log"), 10).await.unwrap(), "hello");
        assert!(c.read_log(&d.path().join("settings.json"), 10).await.is_err());
        assert!(c.read_log(&d.path().join("logs/../settings.json"), 10).await.is_err());
        assert_eq!(c.list_runs("agt_a").await.len(), 1);
    }

    #[tokio::test]
    async fn import_moves_passkeys_lists_agents_and_scrubs_on_request() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        assert!(c.first_run());
        let yaml = d.path().join("coordinator.yaml");
        std::fs::write(&yaml, "agents:\n  agt_a:\n    passkey: secret-aaaa-1111\n  agt_b:\n    passkey: secret-bbbb-2222\n").unwrap();
        let r = c.import(&yaml, false).await.unwrap();
        assert_eq!(r.moved, vec!["agt_a".to_string(), "agt_b".to_string()]);
        assert!(r.backup.is_none());
        let view = c.view().await;
        assert!(view.saved.agents.contains_key("agt_a") && view.saved.agents.contains_key("agt_b"));
        assert!(!view.first_run);
        assert_eq!(c.platform_store.get("agent:agt_b").unwrap().as_deref(), Some("secret-bbbb-2222"));
        let report_json = serde_json::to_string(&r).unwrap();
        assert!(!report_json.contains("secret-"), "the import report carries a passkey: {report_json}");
        assert!(!std::fs::read_to_string(d.path().join("settings.json")).unwrap().contains("secret-"));
        // Second run with scrub: nothing new moved, the file is blanked, the original kept as a backup.
        let r = c.import(&yaml, true).await.unwrap();
        assert_eq!(r.unchanged.len(), 2);
        assert!(!std::fs::read_to_string(&yaml).unwrap().contains("secret-"));
        assert!(std::fs::read_to_string(r.backup.unwrap()).unwrap().contains("secret-aaaa-1111"));
        // A missing file is an error in words, not a panic.
        assert!(c.import(&d.path().join("nope.yaml"), false).await.unwrap_err().contains("nope.yaml"));
    }

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
        let store = { let inner = c.inner.lock().await; AppCore::store_of(&inner, &c.platform_store) };
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

    #[test]
    fn provider_test_finds_sh_and_not_nonsense() {
        assert!(test_provider("sh").is_ok());
        assert!(test_provider("no-such-cli-xyz").is_err());
    }
}
