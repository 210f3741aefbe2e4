//! `run`: the engine on a settings file or YAML until Ctrl-C, SIGTERM or SIGHUP.

use super::*;

pub(crate) async fn run(config: Option<PathBuf>, json: bool, verbose: bool) -> Result<ExitCode> {
    let (mut settings, path, store) = load_config(config)?;
    if verbose {
        settings.debug = true;
    }
    let lock = coordinator::lock::InstanceLock::acquire(&path)?;
    if let Some(msg) = &lock.took_over {
        tracing::warn!("{msg}");
    }
    let engine = Engine::launch(EngineConfig {
        settings,
        settings_path: path.clone(),
        state_path: Some(state_path_for(&path)),
        secrets: store,
        redactor: coordinator::redact::global().clone(),
        autostart: true,
        // One history for every config: `runs` and `usage` read it.
        runs_db: Some(coordinator::runs::store::default_path()),
    });
    let mut view = StatusView::new(json);
    // `status` reads what this coordinator is doing from here (its snapshot, at most once a second).
    let status_file = status_path_for(&path);
    let mut unwritten: Option<Snapshot> = Some(engine.snapshot());
    let mut status_tick = tokio::time::interval(WRITE_EVERY);
    let mut snaps = engine.subscribe();
    let mut events = engine.events();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // The terminal closed: stop the agents cleanly (they log out) instead of dying with them left unlogged.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => break,
            r = snaps.changed() => {
                if r.is_err() { break; }
                let s = snaps.borrow_and_update().clone();
                view.snapshot(&s);
                unwritten = Some(s);
            }
            _ = status_tick.tick() => if let Some(s) = unwritten.take() { write_status(&status_file, &s) },
            Ok(e) = events.recv() => view.event(&e),
        }
        if view.closed {
            eprintln!("stdout was closed");
            break;
        }
    }
    view.finish();
    // Not eprintln!: after SIGHUP the terminal is gone and a failed write must not abort the clean stop.
    let _ = writeln!(std::io::stderr(), "stopping agents…");
    tokio::time::timeout(Duration::from_secs(20), engine.shutdown())
        .await
        .ok();
    let _ = std::fs::remove_file(&status_file);
    drop(lock);
    Ok(ExitCode::SUCCESS)
}
