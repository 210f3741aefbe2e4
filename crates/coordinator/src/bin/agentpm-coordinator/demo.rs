//! `demo`: the engine on the embedded simulator with fake agents, until the work is drained.

use super::*;

pub(crate) struct DemoArgs {
    pub(crate) agents: usize,
    pub(crate) projects: usize,
    pub(crate) items: usize,
    pub(crate) work_ms: u64,
    pub(crate) max_concurrent: usize,
    pub(crate) polling_interval: u64,
    pub(crate) timeout: u64,
    pub(crate) dir: Option<PathBuf>,
}

pub(crate) async fn demo(a: DemoArgs, json: bool) -> Result<ExitCode> {
    let tmp;
    let dir = match a.dir {
        Some(d) => d,
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let opts = coordinator::demo::DemoOptions {
        agents: a.agents,
        projects: a.projects,
        items: a.items,
        work_ms: a.work_ms,
        dir: dir.clone(),
        fake_agent: vec![exe.display().to_string(), "--fake-agent".to_string()],
    };
    let demo = coordinator::demo::Demo::start(opts).await?;
    let mut settings = demo.settings.clone();
    settings.max_concurrent = a.max_concurrent;
    settings.polling_interval_secs = a.polling_interval;
    let store = secrets::MemoryStore::new();
    for (id, pk) in demo.passkeys() {
        store.set(&secrets::agent_account(&id), &pk)?;
    }
    store.set(secrets::TOKEN_ACCOUNT, &demo.coordinator_token())?;
    demo.sim.set_max_concurrent(a.max_concurrent);
    let total = a.agents * a.projects * a.items;
    if !json {
        println!(
            "AgentPM Coordinator demo: {} agents × {} projects × {} items = {total} work items, max {} at once (simulator at {})",
            a.agents,
            a.projects,
            a.items,
            a.max_concurrent,
            settings.server_address()
        );
    }
    let started = Instant::now();
    let engine = Engine::launch(EngineConfig {
        settings,
        settings_path: dir.join("settings.json"),
        state_path: None,
        secrets: Arc::new(store),
        redactor: coordinator::redact::global().clone(),
        autostart: true,
        runs_db: Some(dir.join("runs.db")),
    });
    let mut view = StatusView::new(json);
    view.total = Some(total);
    let mut snaps = engine.subscribe();
    let mut events = engine.events();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut interrupted = false;
    let done = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { interrupted = true; break false; }
            _ = tokio::time::sleep_until(deadline) => break false,
            _ = snaps.changed() => { let s = snaps.borrow_and_update().clone(); view.completed = Some(demo.sim.stats().completed_items); view.snapshot(&s); }
            Ok(e) = events.recv() => view.event(&e),
            _ = tick.tick() => {
                if demo.sim.all_done() && engine.snapshot().instances.is_empty() { break true; }
                if view.closed { interrupted = true; break false; }
            }
        }
    };
    let wall = started.elapsed();
    view.finish();
    engine.shutdown().await;
    let stats = demo.sim.stats();
    let snap = engine.snapshot();
    let violations = demo.sim.violations();
    demo.sim.shutdown().await;
    let summary = serde_json::json!({
        "all_done": done,
        "wall_seconds": (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        "work_items": total,
        "completed_items": stats.completed_items,
        "spawns": snap.counters.spawns,
        "failed_runs": snap.counters.exits_failed,
        "peak_concurrent": stats.peak_live_processes,
        "violations": violations.len(),
        "logs": dir.join("logs").display().to_string(),
    });
    if view.closed {
        // Nobody to tell: the exit code says it.
    } else if json {
        println!("{}", serde_json::json!({"summary": summary}));
    } else {
        println!(
            "\n{} in {:.2} s: {}/{} items done, {} agent runs, {} failed, peak {} running at once, {} protocol violations",
            if done { "All work done" } else if interrupted { "Interrupted" } else { "Timed out" },
            wall.as_secs_f64(),
            stats.completed_items,
            total,
            snap.counters.spawns,
            snap.counters.exits_failed,
            stats.peak_live_processes,
            violations.len()
        );
        for v in &violations {
            println!("  violation: {v:?}");
        }
        println!("Run logs: {}", dir.join("logs").display());
    }
    Ok(if done && violations.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("agentpm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}
