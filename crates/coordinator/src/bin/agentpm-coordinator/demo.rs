//! `demo`: the engine on the embedded simulator with fake agents, until the work is drained (or, with
//! `--continuous`, until the time is up: refilled work, streaming runs, a failing agent and a quota).

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
    pub(crate) continuous: Option<coordinator::demo::Continuous>,
}

/// `--run-secs 20-60` (fractions allowed: `0.5-1.5`) → milliseconds.
pub(crate) fn parse_run_secs(s: &str) -> Result<(u64, u64)> {
    let bad = || anyhow::anyhow!("--run-secs {s:?} is not valid: give MIN-MAX in seconds, e.g. 20-60");
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let ms = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| (x * 1000.0).round() as u64)
    };
    let (lo, hi) = (ms(lo).ok_or_else(bad)?, ms(hi).ok_or_else(bad)?);
    anyhow::ensure!(
        lo <= hi && hi > 0,
        "--run-secs {s:?} is not valid: MIN must not exceed MAX, and MAX must be above 0"
    );
    Ok((lo, hi))
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
        continuous: a.continuous.clone(),
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
    let continuous = a.continuous.is_some();
    if !json {
        match &a.continuous {
            None => println!(
                "AgentPM Coordinator demo: {} agents × {} projects × {} items = {total} work items, max {} at once (simulator at {})",
                a.agents,
                a.projects,
                a.items,
                a.max_concurrent,
                settings.server_address()
            ),
            Some(c) => println!(
                "AgentPM Coordinator demo, continuous for {} s (Ctrl-C ends it): {} agents × {} projects, runs of {:.1}-{:.1} s, seed {}{}, max {} at once (simulator at {})",
                a.timeout,
                a.agents,
                a.projects,
                c.run_ms.0 as f64 / 1000.0,
                c.run_ms.1 as f64 / 1000.0,
                c.seed,
                match (&demo.roles.failing, &demo.roles.quota) {
                    (Some(f), Some(q)) => format!("; {f} fails every run, {q} hits a quota"),
                    _ => String::new(),
                },
                a.max_concurrent,
                settings.server_address()
            ),
        }
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
    view.total = (!continuous).then_some(total);
    let mut snaps = engine.subscribe();
    let mut events = engine.events();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(a.timeout);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut interrupted = false;
    let done = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => { interrupted = true; break false; }
            // The continuous demo's end is its time running out.
            _ = tokio::time::sleep_until(deadline) => break continuous,
            _ = snaps.changed() => { let s = snaps.borrow_and_update().clone(); view.completed = Some(demo.sim.stats().completed_items); view.snapshot(&s); }
            Ok(e) = events.recv() => view.event(&e),
            _ = tick.tick() => {
                if !continuous && demo.sim.all_done() && engine.snapshot().instances.is_empty() { break true; }
                if view.closed { interrupted = true; break false; }
            }
        }
    };
    let wall = started.elapsed();
    view.finish();
    // What needed the user at the end (before shutdown clears it): the failing agent, the parked quota.
    let before = engine.snapshot();
    engine.shutdown().await;
    let stats = demo.sim.stats();
    let snap = engine.snapshot();
    let violations = demo.sim.violations();
    demo.sim.shutdown().await;
    let summary = serde_json::json!({
        "all_done": done && !continuous,
        "wall_seconds": (wall.as_secs_f64() * 1000.0).round() / 1000.0,
        "work_items": total,
        "completed_items": stats.completed_items,
        "spawns": snap.counters.spawns,
        "failed_runs": snap.counters.exits_failed,
        "peak_concurrent": stats.peak_live_processes,
        "violations": violations.len(),
        "logs": dir.join("logs").display().to_string(),
        "continuous": continuous,
        "seed": a.continuous.as_ref().map(|c| c.seed),
        "refilled_items": stats.refilled_items,
        "failing_agent": demo.roles.failing,
        "quota_agent": demo.roles.quota,
        "attention": before.attention,
        "cooldowns": before.agents.iter().filter_map(|s| match &s.state {
            coordinator::api::AgentState::Cooldown { until, reason } => Some(serde_json::json!({"agent_id": s.agent_id, "until": until, "reason": reason})),
            _ => None,
        }).collect::<Vec<_>>(),
    });
    if view.closed {
        // Nobody to tell: the exit code says it.
    } else if json {
        println!("{}", serde_json::json!({"summary": summary}));
    } else if continuous {
        println!(
            "\n{} after {:.2} s: {} items done ({} added as work ran out), {} agent runs, {} failed, peak {} running at once, {} protocol violations",
            if interrupted { "Interrupted" } else { "Demo over" },
            wall.as_secs_f64(),
            stats.completed_items,
            stats.refilled_items,
            snap.counters.spawns,
            snap.counters.exits_failed,
            stats.peak_live_processes,
            violations.len()
        );
        for a in &before.attention {
            println!("  needs you: {} {}", a.reason, a.fix);
        }
        for v in &violations {
            println!("  violation: {v:?}");
        }
        println!("Run logs: {}", dir.join("logs").display());
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
    Ok(if done && violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("agentpm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}
