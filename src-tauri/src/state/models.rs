//! What the window receives from `app_state` and `list_runs`.

use crate::status_words::WindowSnapshot;
use coordinator::config::Settings;
use serde::Serialize;
use std::path::PathBuf;

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
    pub snapshot: WindowSnapshot,
    pub demo_hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunFile {
    pub path: PathBuf,
    pub name: String,
    pub bytes: u64,
}
