//! AgentPM Coordinator, the menu-bar app: wires plugins, the tray, the window and the engine.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod applog;
mod commands;
mod state;
mod tray;

use coordinator::api::Event as EngineEvent;
use coordinator::lock::LockError;
use state::AppCore;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tauri::{AppHandle, Emitter, Manager};
use tauri_plugin_notification::NotificationExt;

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

pub fn on_menu(app: &AppHandle, id: &str) {
    let app = app.clone();
    let core = app.state::<Arc<AppCore>>().inner().clone();
    let id = id.to_string();
    tauri::async_runtime::spawn(async move {
        match id.as_str() {
            "open" => show_window(&app),
            "applog" => {
                use tauri_plugin_opener::OpenerExt;
                let log = coordinator::paths::coordinator_dir().join("app.log");
                if let Err(e) = app.opener().open_path(log.display().to_string(), None::<&str>) {
                    tracing::warn!("cannot open {}: {e}", log.display());
                }
            }
            "start" => match core.engine().await {
                Some(e) => e.start().await,
                None => {
                    let demo = core.is_demo().await;
                    let _ = restart_engine(&app, core, demo).await;
                }
            },
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
            other => {
                use tauri_plugin_opener::OpenerExt;
                let root = core.view().await.log_root;
                if let Some(agent) = other.strip_prefix("log:") {
                    if let Some(latest) = coordinator::logs::list_runs(&root, agent).into_iter().next() {
                        let _ = app.opener().open_path(latest.display().to_string(), None::<&str>);
                    }
                } else if let Some(agent) = other.strip_prefix("dir:") {
                    if let Ok(dir) = coordinator::paths::join_id(&root, agent) {
                        let _ = std::fs::create_dir_all(&dir);
                        let _ = app.opener().open_path(dir.display().to_string(), None::<&str>);
                    }
                }
            }
        }
    });
}

/// (Re)start the engine and forward its snapshots to the window and tray, and its events to notifications.
pub async fn restart_engine(app: &AppHandle, core: Arc<AppCore>, demo: bool) -> Result<(), String> {
    let engine = match core.start_engine(demo).await {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("engine did not start: {msg}");
            tray::show_not_running(app, &msg);
            let _ = app.emit("engine-stopped", &msg);
            if matches!(e.downcast_ref::<LockError>(), Some(LockError::Held { .. })) {
                wait_for_lock(app.clone(), core);
            }
            return Err(msg);
        }
    };
    wire_engine(app, core, engine);
    Ok(())
}

/// Another coordinator (e.g. `agentpm-coordinator run`) holds this settings file: try again every few
/// seconds and take over once it has stopped, unless the user started something else meanwhile.
fn wait_for_lock(app: AppHandle, core: Arc<AppCore>) {
    if core.waiting_for_lock.swap(true, Ordering::SeqCst) {
        return;
    }
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(LOCK_RETRY).await;
            if core.engine().await.is_some() || core.is_demo().await {
                break;
            }
            match core.start_engine(false).await {
                Ok(engine) => {
                    tracing::info!("the other coordinator stopped; this app's engine took over");
                    wire_engine(&app, core.clone(), engine);
                    let _ = app.emit("engine-stopped", ""); // the window refreshes (banner gone)
                    break;
                }
                Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::Held { .. })) => continue,
                Err(e) => {
                    tracing::error!("engine did not start: {e:#}");
                    break;
                }
            }
        }
        core.waiting_for_lock.store(false, Ordering::SeqCst);
    });
}

const LOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(3);

/// Forward an engine's snapshots to the window and tray, and its events to notifications.
fn wire_engine(app: &AppHandle, core: Arc<AppCore>, engine: coordinator::engine::Engine) {
    let generation = core.generation.load(Ordering::SeqCst);
    let (app1, core1, mut snaps) = (app.clone(), core.clone(), engine.subscribe());
    tauri::async_runtime::spawn(async move {
        let mut last_sig = String::new();
        loop {
            if core1.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let s = snaps.borrow_and_update().clone();
            let _ = app1.emit("snapshot", &s);
            let sig = tray::signature(&s);
            if sig != last_sig {
                tray::update(&app1, &s);
                last_sig = sig;
            }
            if snaps.changed().await.is_err() {
                return;
            }
        }
    });
    let (app2, mut events) = (app.clone(), engine.events());
    tauri::async_runtime::spawn(async move {
        // A quota failure is announced once, by its cooldown (which the engine sends just before the exit).
        let mut quota_announced = std::collections::HashSet::new();
        while let Ok(ev) = events.recv().await {
            let _ = app2.emit("engine-event", &ev);
            let text = match &ev {
                // `error` is set for failed runs only: not for a clean exit, nor for one the user stopped.
                EngineEvent::InstanceExited { instance, error: Some(error), .. } => {
                    (!quota_announced.remove(&instance.agent_id)).then(|| format!("{} failed on {}: {error}", instance.agent_id, instance.project_id))
                }
                EngineEvent::SpawnFailed { agent_id, error, .. } => Some(format!("{agent_id} could not start: {error}")),
                EngineEvent::CooldownStarted { agent_id, reason, until } if reason == "quota" => {
                    quota_announced.insert(agent_id.clone());
                    let until = chrono::DateTime::from_timestamp_millis(*until).map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string());
                    Some(format!("{agent_id} hit a quota; cooling down until {}", until.unwrap_or_default()))
                }
                EngineEvent::ServerUnreachable { error, .. } => Some(format!("PM server unreachable: {error}")),
                _ => None,
            };
            if let Some(body) = text {
                let _ = app2.notification().builder().title("AgentPM Coordinator").body(body).show();
            }
        }
    });
}

fn main() {
    // Cold start is measured from here to the page's first render (`window_ready`).
    let started = std::time::Instant::now();
    let context = tauri::generate_context!();
    // Demo mode re-executes this binary as a fake agent: no extra binary to ship.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-agent") {
        std::process::exit(pm_sim::fake_agent::run(args[2..].to_vec()));
    }
    // `--data-dir DIR` moves settings, state and logs (tests, portable setups), like AGENTPM_DATA_DIR.
    if let Some(i) = args.iter().position(|a| a == "--data-dir") {
        if let Some(dir) = args.get(i + 1) {
            std::env::set_var(coordinator::paths::DATA_DIR_ENV, dir);
        }
    }
    let demo_flag = args.iter().any(|a| a == "--demo");
    let show_flag = args.iter().any(|a| a == "--show");
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| args[0].clone());
    let core = match AppCore::new(coordinator::paths::settings_path(), Arc::new(coordinator::secrets::KeyringStore::new()), vec![exe, "--fake-agent".into()]) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // A bad settings file is never overwritten: say what is wrong (in a dialog: an app opened from
            // Finder has no terminal) and stop.
            eprintln!("error: {e}");
            settings_error_dialog(context, &e.to_string());
            std::process::exit(2);
        }
    };

    let debug = tauri::async_runtime::block_on(core.view()).saved.debug;
    let exit_core = core.clone();
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| show_window(app)))
        .plugin(applog::plugin(coordinator::paths::coordinator_dir(), debug))
        .plugin(tauri_plugin_store::Builder::new().build())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::init(tauri_plugin_autostart::MacosLauncher::LaunchAgent, None))
        .manage(core.clone())
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::save_settings,
            commands::set_agent,
            commands::add_agent,
            commands::remove_agent,
            commands::set_passkey,
            commands::delete_passkey,
            commands::set_token,
            commands::delete_token,
            commands::coordinator_start,
            commands::coordinator_stop,
            commands::stop_instance,
            commands::list_runs,
            commands::read_log,
            commands::open_log,
            commands::reveal_log,
            commands::test_provider,
            commands::run_doctor,
            commands::import_config,
            commands::set_demo,
            window_ready,
        ])
        .setup(move |app| {
            // Menu-bar app on macOS: no Dock icon (Info.plist also sets LSUIElement for the bundle).
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            tray::create(app.handle())?;
            exit_on_signals(app.handle().clone());
            app.manage(StartedAt(started));
            let demo = demo_flag || tauri::async_runtime::block_on(core.view()).saved.demo;
            let first_run = core.first_run();
            let handle = app.handle().clone();
            let c = core.clone();
            tauri::async_runtime::spawn(async move {
                let _ = restart_engine(&handle, c, demo).await; // failures are logged and shown
            });
            if first_run || demo_flag || show_flag {
                show_window(app.handle());
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app (and the agents) running in the menu bar.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(context)
        .expect("error while building the app")
        .run(move |_app, event| {
            // However the app ends (tray Quit, Cmd-Q, logout, SIGTERM), agents are stopped and reported first:
            // their process groups would otherwise outlive the app unsupervised. A second call is a no-op.
            if let tauri::RunEvent::Exit = event {
                tauri::async_runtime::block_on(exit_core.shutdown());
            }
        });
}

/// SIGTERM / SIGINT (logout, `kill`, Ctrl-C in a terminal) end the app like Quit does.
fn exit_on_signals(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else { return };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("signal received: stopping agents and quitting");
        app.exit(0);
    });
}

/// The settings file cannot be read: show why in a native dialog, then exit (nothing is written).
fn settings_error_dialog(mut context: tauri::Context<tauri::Wry>, message: &str) {
    use tauri_plugin_dialog::{DialogExt, MessageDialogKind};
    let text = format!("{message}\n\nFix or move the file, then open the app again. Nothing was changed.");
    context.config_mut().app.windows.clear(); // only the dialog, not the main window
    let app = tauri::Builder::default().plugin(tauri_plugin_dialog::init()).build(context);
    let Ok(app) = app else { return };
    app.dialog().message(text).title("AgentPM Coordinator: settings cannot be read").kind(MessageDialogKind::Error).show(|_| std::process::exit(2));
    app.run(|_, _| {});
}

struct StartedAt(std::time::Instant);

/// Called by the page once it has rendered: logs the cold start time (launch → window ready).
#[tauri::command]
fn window_ready(started: tauri::State<'_, StartedAt>) -> f64 {
    let ms = started.0.elapsed().as_secs_f64() * 1000.0;
    tracing::info!("window ready {ms:.0} ms after launch");
    ms
}
