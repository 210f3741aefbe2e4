//! What the tray menu's items do. The tray (tray.rs) only draws the menu; this is wired to it in main.rs.

use crate::state::AppCore;
use crate::{engine_host, window};
use std::sync::Arc;
use tauri::{AppHandle, Manager};
use tauri_plugin_opener::OpenerExt;

pub fn on_menu(app: &AppHandle, id: &str) {
    let app = app.clone();
    let core = app.state::<Arc<AppCore>>().inner().clone();
    let id = id.to_string();
    tauri::async_runtime::spawn(async move {
        match id.as_str() {
            "open" => window::show(&app),
            "applog" => {
                let log = coordinator::paths::coordinator_dir().join("app.log");
                if let Err(e) = app.opener().open_path(log.display().to_string(), None::<&str>) {
                    tracing::warn!("cannot open {}: {e}", log.display());
                }
            }
            "start" => {
                let _ = engine_host::start(&app, core).await; // failures are logged and shown
            }
            "stop" => {
                if let Some(e) = core.engine().await {
                    e.stop().await;
                }
            }
            "quit" => {
                // Stop agents cleanly (group TERM, grace, KILL, exits reported) before leaving.
                core.shutdown().await;
                app.exit(0);
            }
            other
                if ["pause:", "pause1h:", "pause4h:", "pausetomorrow:", "resume:"]
                    .iter()
                    .any(|p| other.starts_with(p)) =>
            {
                pause_menu(&core, other).await
            }
            other => open_agent_log(&app, &core, other).await,
        }
    });
}

/// `pause:<agent>` stops its runs and pauses it until resumed; "Pause until…" (`pause1h:`, `pause4h:`,
/// `pausetomorrow:`, timed from the click) lets its runs finish; `resume:<agent>` resumes it.
async fn pause_menu(core: &AppCore, id: &str) {
    let Some(engine) = core.engine().await else { return };
    let (what, agent) = id.split_once(':').unwrap_or((id, ""));
    match what {
        "pause" => engine.pause_agent(agent, None, true).await,
        "resume" => engine.resume_agent(agent).await,
        kind => {
            if let Some(until) = crate::tray_model::pause_until(kind, coordinator::api::now_ms(), &chrono::Local) {
                engine.pause_agent(agent, Some(until), false).await;
            }
        }
    }
}

/// `log:<agent>` opens its latest run log, `dir:<agent>` its log folder.
async fn open_agent_log(app: &AppHandle, core: &AppCore, id: &str) {
    let root = core.view().await.log_root;
    if let Some(agent) = id.strip_prefix("log:") {
        if let Some(latest) = coordinator::logs::list_runs(&root, agent).into_iter().next() {
            let _ = app.opener().open_path(latest.display().to_string(), None::<&str>);
        }
    } else if let Some(agent) = id.strip_prefix("dir:") {
        if let Ok(dir) = coordinator::paths::join_id(&root, agent) {
            let _ = std::fs::create_dir_all(&dir);
            let _ = app.opener().open_path(dir.display().to_string(), None::<&str>);
        }
    }
}
