//! AgentPM Coordinator, the menu-bar app: builds and wires plugins, the tray, the window's commands and the
//! engine host. The logic lives in the modules below; this file only connects them.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod applog;
mod commands;
mod engine_host;
mod error;
mod menu;
mod notify;
mod state;
mod status_words;
mod tray;
mod tray_model;
mod window;

use state::AppCore;
use std::sync::Arc;
use tauri::Manager;

fn main() {
    // Cold start is measured from here to the page's first render (`window_ready`).
    let started = std::time::Instant::now();
    let context = tauri::generate_context!();
    // Demo mode re-executes this binary as a fake agent: no extra binary to ship.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-agent") {
        std::process::exit(pm_sim::fake_agent::run(args[2..].to_vec()));
    }
    // Agents' `agent-pm` MCP server (stdio): the app binary is the bridge, as the CLI binary is.
    if args.get(1).map(String::as_str) == Some("mcp-bridge") {
        std::process::exit(coordinator::mcp_bridge::run());
    }
    // `--data-dir DIR` moves settings, state and logs (tests, portable setups), like AGENTPM_DATA_DIR.
    if let Some(i) = args.iter().position(|a| a == "--data-dir") {
        if let Some(dir) = args.get(i + 1) {
            std::env::set_var(coordinator::paths::DATA_DIR_ENV, dir);
        }
    }
    let demo_flag = args.iter().any(|a| a == "--demo");
    let show_flag = args.iter().any(|a| a == "--show");
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| args[0].clone());
    let core = match AppCore::new(
        coordinator::paths::settings_path(),
        Arc::new(coordinator::secrets::KeyringStore::new()),
        vec![exe, "--fake-agent".into()],
    ) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // A bad settings file is never overwritten: say what is wrong (in a dialog: an app opened from
            // Finder has no terminal) and stop.
            eprintln!("error: {e}");
            window::settings_error_dialog(context, &e.to_string());
            std::process::exit(2);
        }
    };

    let debug = tauri::async_runtime::block_on(core.view()).saved.debug;
    let exit_core = core.clone();
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| window::show(app)))
        .plugin(applog::plugin(coordinator::paths::coordinator_dir(), debug))
        .plugin(tauri_plugin_store::Builder::new().build())
        // Window size and position, beside settings.json (an absolute name wins over the plugin's config dir).
        .plugin(
            tauri_plugin_window_state::Builder::new()
                .with_filename(
                    coordinator::paths::coordinator_dir()
                        .join("window-state.json")
                        .to_string_lossy(),
                )
                .with_state_flags(window::REMEMBERED)
                .build(),
        )
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
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
            commands::pause_agent,
            commands::run_history,
            commands::run_usage,
            commands::resume_agent,
            commands::retry_agent,
            commands::list_runs,
            commands::run_transcript_open,
            commands::run_transcript_window,
            commands::run_transcript_search,
            commands::read_log,
            commands::open_log,
            commands::reveal_log,
            commands::test_provider,
            commands::run_doctor,
            commands::import_config,
            commands::set_demo,
            window::window_ready,
            window::set_clock_style,
        ])
        .setup(move |app| {
            // Menu-bar app on macOS: no Dock icon (Info.plist also sets LSUIElement for the bundle).
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            tray::create(app.handle(), menu::on_menu)?;
            engine_host::exit_on_signals(app.handle().clone());
            app.manage(window::StartedAt(started));
            let demo = demo_flag || tauri::async_runtime::block_on(core.view()).saved.demo;
            let first_run = core.first_run();
            let handle = app.handle().clone();
            let c = core.clone();
            tauri::async_runtime::spawn(async move {
                let _ = engine_host::restart_engine(&handle, c, demo).await; // failures are logged and shown
            });
            if first_run || demo_flag || show_flag {
                window::show(app.handle());
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app (and the agents) running in the menu bar.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                window::remember_geometry(window.app_handle());
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
