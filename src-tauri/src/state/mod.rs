//! The app's state: the engine handle, the secret store, the settings file, and demo mode.
//!
//! Everything here is plain Rust (no Tauri types) so the command logic is unit-tested without a window.
//! One mutex guards it all: the engine, the demo overlay and the store it uses change together.
//!
//! Settings: the app reads and writes the engine's `settings.json` through `coordinator::config` (same file,
//! schema, validation and atomic 0600 write as the CLI), so the two can never disagree about a field and an
//! invalid value never reaches disk. tauri-plugin-store keeps only window state (`ui-state.json`).
//!
//! Starting and stopping the engine (and the single-instance lock) is `crate::engine_host`.

pub(crate) mod demo;
mod history;
mod logs;
mod models;
mod secrets;
mod settings;
mod transcript;

pub use logs::LogTarget;
pub use models::{AppView, RunFile};
pub use transcript::{TranscriptMatches, TranscriptView};

use crate::error::{AppError, AppResult};
use coordinator::config::{ConfigError, Settings};
use coordinator::demo::Demo;
use coordinator::engine::Engine;
use coordinator::lock::InstanceLock;
use coordinator::secrets::{MemoryStore, SharedStore, TOKEN_ACCOUNT};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

pub(crate) struct Inner {
    pub(crate) engine: Option<Engine>,
    pub(crate) demo: Option<Demo>,
    /// The demo's settings (its own file, `demo::settings_file`); its passkeys live in memory only.
    pub(crate) demo_settings: Option<Settings>,
    pub(crate) demo_store: Option<Arc<MemoryStore>>,
    pub(crate) saved: Settings,
    /// Held while a (non-demo) engine runs on `settings_path`.
    pub(crate) lock: Option<InstanceLock>,
    /// Why the engine is not running (e.g. another coordinator holds the lock); shown in the window.
    pub(crate) start_error: Option<String>,
    /// Whether the coordinator token is stored, read once and then kept up to date by set/delete/import:
    /// every Keychain read may prompt on macOS, and the window asks for the view often.
    pub(crate) token_present: Option<bool>,
}

pub struct AppCore {
    pub settings_path: PathBuf,
    pub(crate) platform_store: SharedStore,
    /// How this binary runs a fake agent (demo mode).
    pub(crate) fake_agent: Vec<String>,
    pub(crate) inner: Mutex<Inner>,
    /// Bumped whenever a new engine starts, so watchers of the old one stop.
    pub generation: std::sync::atomic::AtomicU64,
    /// A task is retrying to start while another coordinator holds the lock (only one such task).
    pub waiting_for_lock: std::sync::atomic::AtomicBool,
    /// The Transcript page's open logs.
    pub(crate) transcripts: Arc<transcript::OpenTranscripts>,
}

impl AppCore {
    pub fn new(
        settings_path: PathBuf,
        platform_store: SharedStore,
        fake_agent: Vec<String>,
    ) -> Result<AppCore, ConfigError> {
        let saved = Settings::load(&settings_path)?;
        Ok(AppCore {
            settings_path,
            platform_store,
            fake_agent,
            inner: Mutex::new(Inner {
                engine: None,
                demo: None,
                demo_settings: None,
                demo_store: None,
                saved,
                lock: None,
                start_error: None,
                token_present: None,
            }),
            generation: 0.into(),
            waiting_for_lock: false.into(),
            transcripts: Default::default(),
        })
    }

    pub fn first_run(&self) -> bool {
        !self.settings_path.exists()
    }

    pub(crate) fn store_of(inner: &Inner, platform: &SharedStore) -> SharedStore {
        match &inner.demo_store {
            Some(s) => s.clone(),
            None => platform.clone(),
        }
    }

    /// The settings the engine runs with, and the window edits: the demo's in demo mode, else the saved ones.
    pub(crate) fn effective(inner: &Inner) -> Settings {
        match &inner.demo_settings {
            Some(d) => d.clone(),
            None => inner.saved.clone(),
        }
    }

    pub async fn engine(&self) -> Option<Engine> {
        self.inner.lock().await.engine.clone()
    }

    /// The running engine, or the error the window shows when there is none.
    pub async fn running_engine(&self) -> AppResult<Engine> {
        self.engine().await.ok_or(AppError::EngineNotRunning)
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
                let p = tokio::task::spawn_blocking(move || store.get(TOKEN_ACCOUNT))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .flatten()
                    .is_some();
                inner.token_present = Some(p);
                p
            }
        };
        AppView {
            log_root: settings.log_root(),
            // What the window edits and saves back: in demo mode the demo's own settings.
            saved: settings.clone(),
            demo: inner.demo.is_some(),
            first_run: self.first_run() && inner.demo.is_none(),
            settings_path: self.settings_path.clone(),
            ui_state_path: self.settings_path.with_file_name("ui-state.json"),
            start_error: inner.start_error.clone(),
            token_present,
            snapshot: inner.engine.as_ref().map(|e| e.snapshot()).unwrap_or_default().into(),
            demo_hint: inner.demo.as_ref().map(|_| demo::HINT.to_string()),
            settings,
        }
    }

    /// Hand the engine the settings it should run with now.
    async fn apply(&self, inner: &Inner) {
        if let Some(e) = &inner.engine {
            e.reload(Self::effective(inner)).await;
        }
    }

    pub async fn doctor(&self) -> Vec<coordinator::doctor::Check> {
        let (settings, store) = {
            let inner = self.inner.lock().await;
            (Self::effective(&inner), Self::store_of(&inner, &self.platform_store))
        };
        coordinator::doctor::run(&settings, store.as_ref()).await
    }
}

/// Does a provider command resolve (PATH plus the usual install locations)?
/// The providers page's "Test": where the CLI is and which version it reports (`<cmd> --version`).
pub fn test_provider(command: &str) -> AppResult<String> {
    match coordinator::launch::probe_version(command.trim(), std::time::Duration::from_secs(10)) {
        Ok((path, v)) if v.is_empty() => Ok(format!("{} (no version printed)", path.display())),
        Ok((path, v)) => Ok(format!("{} — {v}", path.display())),
        Err(e) => Err(AppError::Message(e.to_string())),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use std::path::Path;

    pub fn core(dir: &Path) -> AppCore {
        AppCore::new(
            dir.join("settings.json"),
            Arc::new(MemoryStore::new()),
            vec!["/bin/false".into()],
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_test_reports_the_version_and_rejects_nonsense() {
        let d = tempfile::tempdir().unwrap();
        let cli = d.path().join("mycli");
        std::fs::write(
            &cli,
            "#!/bin/sh\n[ \"$1\" = --version ] && echo '2.1.197 (Claude Code)'\n",
        )
        .unwrap();
        std::fs::set_permissions(&cli, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let r = test_provider(cli.to_str().unwrap()).unwrap();
        assert!(r.ends_with("— 2.1.197 (Claude Code)"), "{r}");
        assert!(test_provider("no-such-cli-xyz").is_err());
        let bad = d.path().join("bad");
        std::fs::write(&bad, "#!/bin/sh\necho 'unknown option --version' >&2; exit 3\n").unwrap();
        std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        assert!(test_provider(bad.to_str().unwrap())
            .unwrap()
            .contains("no version (`--version` exited with exit status: 3: unknown option --version)"));
    }
}
