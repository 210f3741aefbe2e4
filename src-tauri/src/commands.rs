//! The invoke surface of the window. Thin: each command calls `AppCore` (unit-tested in state/) or the
//! engine host. Errors are `AppError`: a field error for the settings form, a message string otherwise.

use crate::engine_host;
use crate::error::{AppError, AppResult};
use crate::state::{AppCore, AppView, LogTarget, RunFile, TranscriptMatches, TranscriptView};
use coordinator::config::Settings;
use std::path::PathBuf;
use std::sync::Arc;
use tauri::{AppHandle, State};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_opener::OpenerExt;

type Core<'a> = State<'a, Arc<AppCore>>;

#[tauri::command]
pub async fn app_state(core: Core<'_>) -> AppResult<AppView> {
    Ok(core.view().await)
}

#[tauri::command]
pub async fn save_settings(app: AppHandle, core: Core<'_>, settings: Settings) -> AppResult<AppView> {
    let demo = settings.demo;
    let login = settings.launch_at_login;
    // Validate first, then change the login item, then save: a login item the system refused is an inline
    // error and nothing is saved (the checkbox never claims what is not so).
    core.check(&settings)?;
    let autolaunch = app.autolaunch();
    if login != autolaunch.is_enabled().unwrap_or(false) {
        let r = if login {
            autolaunch.enable()
        } else {
            autolaunch.disable()
        };
        r.map_err(|e| AppError::field("launch_at_login", format!("the login item could not be changed: {e}")))?;
    }
    let demo_changed = core.save_settings(settings).await?;
    if demo_changed {
        engine_host::restart_engine(&app, core.inner().clone(), demo)
            .await
            .map_err(|e| AppError::field("demo", e))?;
    }
    Ok(core.view().await)
}

#[tauri::command]
pub async fn set_agent(core: Core<'_>, agent_id: String, enabled: bool, provider: Option<String>) -> AppResult<()> {
    core.set_agent(&agent_id, enabled, provider).await
}

#[tauri::command]
pub async fn add_agent(core: Core<'_>, agent_id: String) -> AppResult<()> {
    core.add_agent(agent_id.trim()).await
}

#[tauri::command]
pub async fn remove_agent(core: Core<'_>, agent_id: String) -> AppResult<()> {
    core.remove_agent(&agent_id).await
}

/// Stores the value in the Keychain (platform store); it never comes back to the UI.
#[tauri::command]
pub async fn set_passkey(core: Core<'_>, agent_id: String, value: String) -> AppResult<()> {
    core.set_passkey(&agent_id, &value).await
}

#[tauri::command]
pub async fn delete_passkey(core: Core<'_>, agent_id: String) -> AppResult<bool> {
    core.delete_secret(coordinator::secrets::agent_account(&agent_id)).await
}

#[tauri::command]
pub async fn set_token(core: Core<'_>, value: String) -> AppResult<()> {
    core.set_token(&value).await
}

#[tauri::command]
pub async fn delete_token(core: Core<'_>) -> AppResult<bool> {
    core.delete_secret(coordinator::secrets::TOKEN_ACCOUNT.to_string())
        .await
}

#[tauri::command]
pub async fn coordinator_start(app: AppHandle, core: Core<'_>) -> AppResult<()> {
    // No engine yet (it could not start, e.g. another coordinator held the lock): this tries again now.
    Ok(engine_host::start(&app, core.inner().clone()).await?)
}

#[tauri::command]
pub async fn coordinator_stop(core: Core<'_>) -> AppResult<()> {
    core.running_engine().await?.stop().await;
    Ok(())
}

#[tauri::command]
pub async fn stop_instance(core: Core<'_>, id: u64) -> AppResult<bool> {
    Ok(core.running_engine().await?.stop_instance(id).await)
}

/// Pause an agent until `until` (ms since epoch; None = until resumed); `stop_running` also stops its runs
/// ("Stop and pause": a stopped run is otherwise started again when the server still has work).
#[tauri::command]
pub async fn pause_agent(
    core: Core<'_>,
    agent_id: String,
    until: Option<i64>,
    stop_running: Option<bool>,
) -> AppResult<()> {
    core.running_engine()
        .await?
        .pause_agent(&agent_id, until, stop_running.unwrap_or(false))
        .await;
    Ok(())
}

#[tauri::command]
pub async fn resume_agent(core: Core<'_>, agent_id: String) -> AppResult<()> {
    core.running_engine().await?.resume_agent(&agent_id).await;
    Ok(())
}

/// "Retry now" on a cooldown (a quota that reset early, a failure whose cause is fixed).
#[tauri::command]
pub async fn retry_agent(core: Core<'_>, agent_id: String) -> AppResult<()> {
    core.running_engine().await?.retry_agent(&agent_id).await;
    Ok(())
}

/// The Runs page: recorded runs, newest first (`since` in ms since the epoch).
#[tauri::command]
pub async fn run_history(
    core: Core<'_>,
    agent: Option<String>,
    project: Option<String>,
    failed: Option<bool>,
    since: Option<i64>,
    limit: Option<usize>,
) -> AppResult<Vec<coordinator::runs::RunRecord>> {
    core.run_history(coordinator::runs::RunFilter {
        agent,
        project,
        since,
        failed: failed.unwrap_or(false),
        limit,
    })
    .await
}

/// The Usage page: runs, failures, tokens and cost per day, agent or provider.
#[tauri::command]
pub async fn run_usage(core: Core<'_>, by: String, since: Option<i64>) -> AppResult<Vec<coordinator::runs::UsageRow>> {
    core.run_usage(&by, since).await
}

/// The Transcript page: open a run's log (by run id, or by its path) and get its first `n` items.
#[tauri::command]
pub async fn run_transcript_open(
    core: Core<'_>,
    run_id: Option<String>,
    log_path: Option<PathBuf>,
    n: Option<usize>,
) -> AppResult<TranscriptView> {
    core.transcript_open(run_id.as_deref(), log_path.as_deref(), n.unwrap_or(100))
        .await
}

/// Items `[from, from + n)`, the last `n` (`tail`), or those at `indices` (search hits).
#[tauri::command]
pub async fn run_transcript_window(
    core: Core<'_>,
    log_path: PathBuf,
    from: Option<usize>,
    n: Option<usize>,
    tail: Option<bool>,
    indices: Option<Vec<usize>>,
) -> AppResult<TranscriptView> {
    core.transcript_window(
        &log_path,
        from.unwrap_or(0),
        n.unwrap_or(100),
        tail.unwrap_or(false),
        indices,
    )
    .await
}

/// Indices of the items that contain `query` (ignoring case) and/or are errors.
#[tauri::command]
pub async fn run_transcript_search(
    core: Core<'_>,
    log_path: PathBuf,
    query: Option<String>,
    errors_only: Option<bool>,
    max: Option<usize>,
) -> AppResult<TranscriptMatches> {
    core.transcript_search(
        &log_path,
        query.as_deref().unwrap_or(""),
        errors_only.unwrap_or(false),
        max,
    )
    .await
}

#[tauri::command]
pub async fn list_runs(core: Core<'_>, agent_id: String) -> AppResult<Vec<RunFile>> {
    Ok(core.list_runs(&agent_id).await)
}

#[tauri::command]
pub async fn read_log(core: Core<'_>, path: PathBuf, max_bytes: Option<u64>) -> AppResult<String> {
    core.read_log(&path, max_bytes.unwrap_or(256 * 1024)).await
}

/// Open a run log in the default app.
#[tauri::command]
pub async fn open_log(app: AppHandle, core: Core<'_>, path: PathBuf) -> AppResult<()> {
    let p = core.checked_log_path(&path, LogTarget::RunLog).await?;
    app.opener()
        .open_path(p.display().to_string(), None::<&str>)
        .map_err(|e| AppError::Message(e.to_string()))
}

/// Show a run log (or an agent's log folder) in Finder / the file manager.
#[tauri::command]
pub async fn reveal_log(app: AppHandle, core: Core<'_>, path: PathBuf) -> AppResult<()> {
    let p = core.checked_log_path(&path, LogTarget::RunLogOrAgentDir).await?;
    app.opener()
        .reveal_item_in_dir(p)
        .map_err(|e| AppError::Message(e.to_string()))
}

#[tauri::command]
pub async fn test_provider(command: String) -> AppResult<String> {
    crate::state::test_provider(&command)
}

#[tauri::command]
pub async fn run_doctor(core: Core<'_>) -> AppResult<Vec<coordinator::doctor::Check>> {
    Ok(core.doctor().await)
}

#[tauri::command]
pub async fn import_config(
    core: Core<'_>,
    path: PathBuf,
    scrub: bool,
    overwrite: Option<bool>,
) -> AppResult<coordinator::import::ImportReport> {
    core.import(&path, scrub, overwrite.unwrap_or(false)).await
}

#[tauri::command]
pub async fn set_demo(app: AppHandle, core: Core<'_>, on: bool) -> AppResult<AppView> {
    let mut s = core.view().await.saved;
    s.demo = on;
    if on || core.settings_path.exists() {
        // The welcome page shows this as a line of text, not under a field.
        core.save_settings(s)
            .await
            .map_err(|e| AppError::Message(e.to_string()))?;
    }
    engine_host::restart_engine(&app, core.inner().clone(), on).await?;
    Ok(core.view().await)
}
