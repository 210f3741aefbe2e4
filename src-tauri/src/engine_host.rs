//! Owns the engine's life in the app: start (taking the single-instance lock), restart, stop, waiting for
//! another coordinator to release the lock, forwarding the engine's snapshots and events to the window, the
//! tray and notifications, and ending the app cleanly on SIGTERM / SIGINT.
//!
//! The app takes the same single-instance lock as `agentpm-coordinator run` for its settings file: two
//! coordinators on one settings/state file would each take the other's children for orphans.

use crate::notify::{self, Notifier};
use crate::state::{demo, AppCore};
use crate::status_words::WindowSnapshot;
use crate::tray;
use coordinator::engine::{Engine, EngineConfig};
use coordinator::lock::{InstanceLock, LockError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tauri::{AppHandle, Emitter};
use tauri_plugin_notification::NotificationExt;

/// How often to try again while another coordinator holds the lock.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(3);

impl AppCore {
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
                        LockError::Held { .. } => format!(
                            "Not running: {e}. The app starts by itself once that coordinator stops (or press Start)."
                        ),
                        LockError::Io { .. } => format!("Not running: {e}."),
                    });
                    return Err(e.into());
                }
            }
        }
        if demo {
            let run = demo::start(self.fake_agent.clone(), &self.settings_path).await?;
            inner.demo_settings = Some(run.settings);
            inner.demo_store = Some(run.store);
            inner.demo = Some(run.demo);
        }
        let engine = Engine::launch(EngineConfig {
            settings: Self::effective(&inner),
            settings_path: self.settings_path.clone(),
            // Beside settings.json (in production exactly `paths::state_path()`).
            // The demo's pauses and cooldowns survive a restart of the demo, apart from the real ones.
            state_path: Some(if demo {
                demo::state_file(&self.settings_path)
            } else {
                self.settings_path.with_file_name("state.json")
            }),
            secrets: Self::store_of(&inner, &self.platform_store),
            redactor: coordinator::redact::global().clone(),
            autostart: true,
            // Beside settings.json; the demo keeps its own history (it survives demo restarts).
            runs_db: Some(
                self.settings_path
                    .with_file_name(if demo { "demo-runs.db" } else { "runs.db" }),
            ),
        });
        inner.engine = Some(engine.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(engine)
    }

    /// Stop the engine (agents: group TERM, grace, KILL, exits reported), the demo, and release the lock.
    /// A second call is a no-op.
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

/// Start the engine if there is none (e.g. another coordinator held the lock), else resume coordinating.
pub async fn start(app: &AppHandle, core: Arc<AppCore>) -> Result<(), String> {
    match core.engine().await {
        Some(e) => e.start().await,
        None => {
            let demo = core.is_demo().await;
            restart_engine(app, core, demo).await?
        }
    }
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

/// Forward an engine's snapshots to the window and tray, and its events to notifications.
fn wire_engine(app: &AppHandle, core: Arc<AppCore>, engine: Engine) {
    let generation = core.generation.load(Ordering::SeqCst);
    let (app1, mut snaps) = (app.clone(), engine.subscribe());
    tauri::async_runtime::spawn(async move {
        let demo = core.is_demo().await;
        let mut last_sig = String::new();
        loop {
            if core.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            let s = snaps.borrow_and_update().clone();
            let sig = tray::signature(&s, demo);
            if sig != last_sig {
                tray::update(&app1, &s, demo);
                last_sig = sig;
            }
            let _ = app1.emit("snapshot", WindowSnapshot::from(s));
            // The tray's elapsed minutes move without a new snapshot: look again every 15 s (the signature
            // keeps the menu as it is unless a shown minute changed).
            tokio::select! {
                r = snaps.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {}
            }
        }
    });
    let (app2, mut events) = (app.clone(), engine.events());
    tauri::async_runtime::spawn(async move {
        let mut notifier = Notifier::default();
        while let Ok(ev) = events.recv().await {
            let _ = app2.emit("engine-event", &ev);
            if let Some(body) = notifier.text(&ev) {
                let _ = app2.notification().builder().title(notify::TITLE).body(body).show();
            }
        }
    });
}

/// SIGTERM / SIGINT (logout, `kill`, Ctrl-C in a terminal) end the app like Quit does; the run event's
/// Exit then stops the agents.
pub fn exit_on_signals(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!("signal received: stopping agents and quitting");
        // While the window still exists (at Exit it may be gone already).
        crate::window::remember_geometry(&app);
        app.exit(0);
    });
}

#[cfg(test)]
mod tests {
    use crate::state::testing::core;

    #[tokio::test]
    async fn a_second_coordinator_on_the_same_settings_is_refused_and_says_who() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (core(d.path()), core(d.path()));
        a.start_engine(false).await.unwrap();
        let e = b
            .start_engine(false)
            .await
            .err()
            .expect("the second engine started")
            .to_string();
        assert!(
            e.contains("another coordinator is already running") && e.contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        assert!(b
            .view()
            .await
            .start_error
            .is_some_and(|m| m.contains(&e) && m.contains("starts by itself")));
        assert!(b.engine().await.is_none());
        // Released when the first one stops.
        a.shutdown().await;
        b.start_engine(false).await.unwrap();
        assert!(b.view().await.start_error.is_none());
        b.shutdown().await;
    }
}
