//! The main window: showing it, its ready signal (cold start time), and the dialog shown instead of it when
//! the settings file cannot be read.

use tauri::{AppHandle, Manager};

pub fn show(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// When the process started: cold start is measured from there to the page's first render.
pub struct StartedAt(pub std::time::Instant);

/// The page's locale uses a 12-hour clock (Intl's hour cycle): the tray writes times of day the same way.
#[tauri::command]
pub fn set_clock_style(twelve_hour: bool) {
    coordinator::clock::set_twelve_hour(twelve_hour);
}

/// Called by the page once it has rendered: logs the cold start time (launch → window ready).
#[tauri::command]
pub fn window_ready(started: tauri::State<'_, StartedAt>) -> f64 {
    let ms = started.0.elapsed().as_secs_f64() * 1000.0;
    tracing::info!("window ready {ms:.0} ms after launch");
    ms
}

/// The settings file cannot be read: show why in a native dialog, then exit (nothing is written).
pub fn settings_error_dialog(mut context: tauri::Context<tauri::Wry>, message: &str) {
    use tauri_plugin_dialog::{DialogExt, MessageDialogKind};
    let text = format!("{message}\n\nFix or move the file, then open the app again. Nothing was changed.");
    context.config_mut().app.windows.clear(); // only the dialog, not the main window
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .build(context);
    let Ok(app) = app else { return };
    app.dialog()
        .message(text)
        .title("AgentPM Coordinator: settings cannot be read")
        .kind(MessageDialogKind::Error)
        .show(|_| std::process::exit(2));
    app.run(|_, _| {});
}

/// What is kept of the window between launches: where it was and how big.
pub const REMEMBERED: tauri_plugin_window_state::StateFlags = tauri_plugin_window_state::StateFlags::SIZE
    .union(tauri_plugin_window_state::StateFlags::POSITION)
    .union(tauri_plugin_window_state::StateFlags::MAXIMIZED);

/// Saved when the window is hidden, not only at exit: a menu-bar app is rarely quit, and a crash or logout
/// would otherwise lose the last geometry.
pub fn remember_geometry(app: &tauri::AppHandle) {
    use tauri_plugin_window_state::AppHandleExt;
    if let Err(e) = app.save_window_state(REMEMBERED) {
        tracing::warn!("window size and position not saved: {e}");
    }
}
