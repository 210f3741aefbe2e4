//! `agentpm-coordinator`: the headless CLI (run, demo, doctor, passkeys, token, import).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use coordinator::api::{Event, Snapshot};
use coordinator::config::Settings;
use coordinator::engine::{Engine, EngineConfig};
use coordinator::secrets::{self, SecretStore, SharedStore};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Exit code for bad configuration (file, field and value are named in the message).
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(name = "agentpm-coordinator", version, about = "Runs AI Agent PM's coordinator: launches AI coding agents as the PM server asks")]
struct Cli {
    /// Print JSON lines (snapshots and events) instead of the human status line.
    #[arg(long, global = true)]
    json: bool,
    /// More logging (also passes debug flags to providers in `run`).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Coordinate agents against the configured PM server until Ctrl-C / SIGTERM.
    Run {
        /// settings.json (default: the standard location) or the Python coordinator's YAML.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run a self-contained demo: the built-in PM server simulator and real fake-agent processes.
    Demo {
        #[arg(long, default_value_t = 3)]
        agents: usize,
        #[arg(long, default_value_t = 2)]
        projects: usize,
        #[arg(long, default_value_t = 2)]
        items: usize,
        /// How long each fake agent works, in milliseconds.
        #[arg(long, default_value_t = 300)]
        work_ms: u64,
        #[arg(long, default_value_t = 3)]
        max_concurrent: usize,
        #[arg(long, default_value_t = 1)]
        polling_interval: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Keep the demo's files (socket, project dirs, logs) in this directory instead of a temp dir.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check the setup: server reachable, provider CLIs found, passkeys present, directories writable.
    Doctor {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage agent passkeys in the secret store (Keychain on macOS). Values are never printed.
    Passkey {
        #[command(subcommand)]
        cmd: PasskeyCmd,
    },
    /// Manage the coordinator token in the secret store.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Move the Python coordinator's YAML (passkeys, token, agents, providers) into the secret store and settings.json.
    ImportYaml {
        file: PathBuf,
        /// Rewrite the YAML without secrets (a byte-exact backup `<file>.bak`, mode 0600, is written first).
        #[arg(long)]
        scrub: bool,
        /// Replace passkeys that are already stored with a different value.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print where settings, state, logs and the default socket live.
    Paths,
    /// The run history: one line per agent run (newest first), from runs.db; no engine needed.
    Runs {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        project: Option<String>,
        /// Only runs started within this time (30m, 12h, 1d, 2w) or since a date (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only runs that failed or were interrupted.
        #[arg(long)]
        failed: bool,
        /// At most this many runs (the table shows the newest 50 unless given; --json gives all).
        #[arg(long)]
        limit: Option<usize>,
        /// runs.db to read (default: the standard location).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Runs, failures, tokens and cost summed by agent, provider or day (UTC), from runs.db.
    Usage {
        #[arg(long, default_value = "agent", value_parser = ["agent", "provider", "day"])]
        by: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PasskeyCmd {
    /// Store an agent's passkey (read from a no-echo prompt, or from stdin when piped; never from argv).
    Set { agent_id: String },
    Delete { agent_id: String },
    /// Agent ids and whether a passkey is present.
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Store the coordinator token (no-echo prompt, or stdin when piped).
    Set,
    Delete,
}

fn main() -> ExitCode {
    // The demo re-executes this binary as a fake agent: no extra binary to ship.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-agent") {
        return ExitCode::from(pm_sim::fake_agent::run(args[2..].to_vec()).clamp(0, 255) as u8);
    }
    // Agents' `agent-pm` MCP server (stdio); hidden from --help: only MCP configs we write name it.
    if args.get(1).map(String::as_str) == Some("mcp-bridge") {
        return ExitCode::from(coordinator::mcp_bridge::run() as u8);
    }
    let cli = Cli::parse();
    // The demo shows its own progress line: keep the engine's log to warnings there.
    let level = match (&cli.cmd, cli.verbose) {
        (_, true) => "debug",
        (Cmd::Demo { .. }, false) => "warn",
        _ => "info",
    };
    coordinator::redact::init_tracing_at(level, cli.json);
    // One worker: the engine is I/O-bound and its blocking work (files, keyring, zip) runs on the blocking
    // pool. Measured: a 1,000-pair cycle takes 15 ms with one worker vs 20 ms with two (work stealing
    // moves every reply's wake-up to the other core) and half the CPU.
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            let msg = coordinator::redact::global().redact(&format!("{e:#}"));
            eprintln!("error: {msg}");
            let is_config = e.chain().any(|c| c.downcast_ref::<coordinator::config::ConfigError>().is_some());
            if is_config {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run { config } => run(config, cli.json, cli.verbose).await,
        Cmd::Demo { agents, projects, items, work_ms, max_concurrent, polling_interval, timeout, dir } => {
            demo(DemoArgs { agents, projects, items, work_ms, max_concurrent, polling_interval, timeout, dir }, cli.json).await
        }
        Cmd::Doctor { config } => doctor(config).await,
        Cmd::Passkey { cmd } => passkey(cmd),
        Cmd::Token { cmd } => token(cmd),
        Cmd::ImportYaml { file, scrub, overwrite } => import_yaml(&file, scrub, overwrite),
        Cmd::Runs { agent, project, since, failed, limit, db } => runs_cmd(db, since, cli.json, |since| coordinator::runs::RunFilter { agent, project, since, failed, limit }),
        Cmd::Usage { by, since, db } => usage_cmd(db, &by, since, cli.json),
        Cmd::Paths => {
            println!("settings      {}", coordinator::paths::settings_path().display());
            println!("state         {}", coordinator::paths::state_path().display());
            println!("run history   {}", coordinator::runs::store::default_path().display());
            println!("logs          {}", coordinator::paths::default_log_root().display());
            println!("server socket {}", coordinator::paths::default_socket().display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The run history for reading; None (with a note on stderr) when no run was recorded yet.
fn open_runs(db: Option<PathBuf>) -> Result<Option<coordinator::runs::RunReader>> {
    let path = db.unwrap_or_else(coordinator::runs::store::default_path);
    if !path.exists() {
        eprintln!("no runs recorded yet ({} does not exist)", path.display());
        return Ok(None);
    }
    Ok(Some(coordinator::runs::RunReader::open(&path)?))
}

fn since_arg(since: Option<String>) -> Result<Option<i64>> {
    since.map(|s| coordinator::runs::report::parse_since(&s, coordinator::api::now_ms())).transpose().map_err(anyhow::Error::msg)
}

fn runs_cmd(db: Option<PathBuf>, since: Option<String>, json: bool, filter: impl FnOnce(Option<i64>) -> coordinator::runs::RunFilter) -> Result<ExitCode> {
    let filter = filter(since_arg(since)?);
    let reader = open_runs(db)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match (reader, json) {
        // Straight from the rows: 100,000 runs in well under a second.
        (Some(r), true) => {
            r.write_json(&filter, &mut out)?;
        }
        (None, true) => out.write_all(b"[]\n")?,
        (r, false) => {
            const TABLE_ROWS: usize = 50;
            let mut filter = filter;
            let capped = filter.limit.is_none();
            filter.limit = filter.limit.or(Some(TABLE_ROWS));
            let runs = match r {
                Some(r) => r.query(&filter)?,
                None => Vec::new(),
            };
            out.write_all(coordinator::runs::report::runs_table(&runs).as_bytes())?;
            if capped && runs.len() == TABLE_ROWS {
                writeln!(out, "(the newest {TABLE_ROWS}; --limit N for more)")?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn usage_cmd(db: Option<PathBuf>, by: &str, since: Option<String>, json: bool) -> Result<ExitCode> {
    let since = since_arg(since)?;
    let key = coordinator::runs::UsageBy::parse(by).context("--by: expected agent, provider or day")?;
    let rows = match open_runs(db)? {
        Some(r) => r.usage(key, since)?,
        None => Vec::new(),
    };
    let out = if json { serde_json::to_string(&rows)? + "\n" } else { coordinator::runs::report::usage_table(by, &rows) };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn platform_store() -> SharedStore {
    Arc::new(secrets::KeyringStore::new())
}

/// Settings plus the store to read secrets from. YAML configs carry their own passkeys (plain or `${ENV}`);
/// those live only in memory, with a warning that says how to move them into the secret store.
fn load_config(config: Option<PathBuf>) -> Result<(Settings, PathBuf, SharedStore)> {
    let path = config.unwrap_or_else(coordinator::paths::settings_path);
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if !is_yaml {
        if !path.exists() && path != coordinator::paths::settings_path() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        let settings = Settings::load(&path)?;
        return Ok((settings, path, platform_store()));
    }
    let legacy = coordinator::legacy_yaml::load(&path)?;
    for w in &legacy.warnings {
        tracing::warn!("{w}");
    }
    let mem = secrets::MemoryStore::new();
    let platform = platform_store();
    use coordinator::legacy_yaml::PasskeySource;
    for (id, src) in &legacy.passkeys {
        let value = match src {
            PasskeySource::Plain(v) => Some(v.clone()),
            PasskeySource::Env { value, .. } => value.clone(),
            PasskeySource::Missing => None,
        };
        // Fall back to the secret store for agents whose YAML has no passkey.
        let value = value.or_else(|| platform.get(&secrets::agent_account(id)).ok().flatten());
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            mem.set(&secrets::agent_account(id), &v)?;
        }
    }
    let token = match &legacy.token {
        Some(PasskeySource::Plain(v)) => Some(v.clone()),
        Some(PasskeySource::Env { value, .. }) => value.clone(),
        _ => None,
    }
    .or_else(|| platform.get(secrets::TOKEN_ACCOUNT).ok().flatten());
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        mem.set(secrets::TOKEN_ACCOUNT, &t)?;
    }
    Ok((legacy.settings, path, Arc::new(mem)))
}

async fn run(config: Option<PathBuf>, json: bool, verbose: bool) -> Result<ExitCode> {
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
            r = snaps.changed() => { if r.is_err() { break; } let s = snaps.borrow_and_update().clone(); view.snapshot(&s); }
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
    tokio::time::timeout(Duration::from_secs(20), engine.shutdown()).await.ok();
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// The settings file's own state file; a YAML config keeps its state beside our settings, keyed by name and
/// by the same canonical path as the instance lock (so every spelling of one file shares one state file).
fn state_path_for(config: &Path) -> PathBuf {
    let config = coordinator::lock::canonical_config_path(config);
    if config == coordinator::lock::canonical_config_path(&coordinator::paths::settings_path()) {
        return coordinator::paths::state_path();
    }
    let name = config.file_stem().and_then(|s| s.to_str()).unwrap_or("config");
    let mut h: u64 = 1469598103934665603;
    for b in config.display().to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    coordinator::paths::coordinator_dir().join(format!("state-{name}-{:08x}.json", h as u32))
}

struct DemoArgs {
    agents: usize,
    projects: usize,
    items: usize,
    work_ms: u64,
    max_concurrent: usize,
    polling_interval: u64,
    timeout: u64,
    dir: Option<PathBuf>,
}

async fn demo(a: DemoArgs, json: bool) -> Result<ExitCode> {
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

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("agentpm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

async fn doctor(config: Option<PathBuf>) -> Result<ExitCode> {
    let (settings, path, store) = load_config(config)?;
    println!("settings: {}", path.display());
    let checks = coordinator::doctor::run(&settings, store.as_ref()).await;
    let mut ok = true;
    for c in &checks {
        ok &= c.ok;
        println!("{} {:<28} {}", if c.ok { "OK  " } else { "FAIL" }, c.name, c.detail);
        if let (false, Some(h)) = (c.ok, &c.hint) {
            println!("     {:<28} fix: {h}", "");
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// A secret from a no-echo prompt on a terminal, or from stdin when piped. Never from argv.
fn read_secret(prompt: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    };
    let value = value.trim_end_matches(['\r', '\n']).to_string();
    let what = if prompt.starts_with("Passkey") { "passkey" } else { "token" };
    coordinator::secrets::check_secret(what, &value).map_err(|e| anyhow::anyhow!(e))?;
    Ok(value)
}

fn passkey(cmd: PasskeyCmd) -> Result<ExitCode> {
    let store = platform_store();
    match cmd {
        PasskeyCmd::Set { agent_id } => {
            coordinator::paths::validate_id(&agent_id).map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            let v = read_secret(&format!("Passkey for {agent_id}: "))?;
            store.set(&secrets::agent_account(&agent_id), &v)?;
            println!("stored the passkey of {agent_id} in the secret store");
        }
        PasskeyCmd::Delete { agent_id } => {
            let existed = store.delete(&secrets::agent_account(&agent_id))?;
            println!("{}", if existed { format!("deleted the passkey of {agent_id}") } else { format!("{agent_id} had no passkey") });
        }
        PasskeyCmd::List => {
            let settings = Settings::load(&coordinator::paths::settings_path())?;
            let stored = store.list()?;
            let mut ids: std::collections::BTreeSet<String> = settings.agents.keys().cloned().collect();
            ids.extend(stored.iter().filter_map(|a| a.strip_prefix("agent:").map(str::to_string)));
            for id in ids {
                let present = stored.contains(&secrets::agent_account(&id));
                println!("{id:<32} {}", if present { "passkey present" } else { "no passkey" });
            }
            println!("{:<32} {}", "(coordinator token)", if stored.iter().any(|a| a == secrets::TOKEN_ACCOUNT) { "present" } else { "not set" });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn token(cmd: TokenCmd) -> Result<ExitCode> {
    let store = platform_store();
    match cmd {
        TokenCmd::Set => {
            let v = read_secret("Coordinator token: ")?;
            store.set(secrets::TOKEN_ACCOUNT, &v)?;
            println!("stored the coordinator token in the secret store");
        }
        TokenCmd::Delete => {
            let existed = store.delete(secrets::TOKEN_ACCOUNT)?;
            println!("{}", if existed { "deleted the coordinator token" } else { "no coordinator token was stored" });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn import_yaml(file: &Path, scrub: bool, overwrite: bool) -> Result<ExitCode> {
    let store = platform_store();
    let settings_path = coordinator::paths::settings_path();
    let report = coordinator::import::import_yaml(file, store.as_ref(), &settings_path, &coordinator::import::ImportOptions { scrub, overwrite })?;
    for w in &report.warnings {
        println!("warning: {w}");
    }
    let list = |v: &Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    println!("moved into the secret store: {}", list(&report.moved));
    println!("already stored (unchanged):  {}", list(&report.unchanged));
    println!("conflicts (not overwritten): {}", list(&report.conflicts));
    println!("no passkey in the YAML:      {}", list(&report.missing));
    if let Some(t) = &report.token {
        println!("coordinator token:           {t}");
    }
    println!("settings written to {}", report.settings_path.display());
    if let Some(b) = &report.backup {
        println!("backup of the original YAML: {} (mode 0600); the YAML no longer contains secrets", b.display());
        println!("the backup still holds the passkeys in plain text: once the import is checked, delete it: rm {}", shell_words::quote(&b.display().to_string()));
    }
    if report.already_scrubbed {
        println!("{}: already scrubbed (no secret left in it); nothing rewritten, no backup written", file.display());
    }
    if report.has_conflicts() {
        println!("re-run with --overwrite to replace the conflicting passkeys or token");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// Live status for a terminal (one redrawn line) or JSON lines.
struct StatusView {
    json: bool,
    tty: bool,
    last_line: String,
    last_print: Option<Instant>,
    total: Option<usize>,
    completed: Option<usize>,
    /// stdout was closed (e.g. `run --json | head`): the caller stops the agents cleanly and exits, instead
    /// of a panic on the next print leaving them behind.
    closed: bool,
}

impl StatusView {
    fn out(&mut self, text: &str) {
        if self.closed {
            return;
        }
        let mut o = std::io::stdout().lock();
        if o.write_all(text.as_bytes()).and_then(|_| o.flush()).is_err() {
            self.closed = true;
        }
    }

    fn new(json: bool) -> Self {
        StatusView { json, tty: std::io::stdout().is_terminal(), last_line: String::new(), last_print: None, total: None, completed: None, closed: false }
    }

    fn snapshot(&mut self, s: &Snapshot) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({"snapshot": s})) {
                self.out(&format!("{line}\n"));
            }
            return;
        }
        let mut line = s.summary();
        if let (Some(t), Some(c)) = (self.total, self.completed) {
            line = format!("{c}/{t} items · {line}");
        }
        let agents: Vec<String> = s.instances.iter().map(|i| format!("{}@{}", i.agent_id, i.project_id)).collect();
        if !agents.is_empty() {
            line.push_str(&format!(" · {}", agents.join(" ")));
        }
        if line == self.last_line {
            return;
        }
        if self.tty {
            self.out(&format!("\r\x1b[2K{line}"));
        } else if self.last_print.is_none_or(|t| t.elapsed() > Duration::from_millis(500)) {
            self.out(&format!("{line}\n"));
            self.last_print = Some(Instant::now());
        }
        self.last_line = line;
    }

    fn event(&mut self, e: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({"event": e})) {
                self.out(&format!("{line}\n"));
            }
            return;
        }
        let text = match e {
            Event::InstanceExited { instance, exit_code: Some(c), error } if *c != 0 => {
                format!("{} on {} failed (exit {c}): {}", instance.agent_id, instance.project_id, error.clone().unwrap_or_default())
            }
            Event::SpawnFailed { agent_id, project_id, error } => format!("cannot start {agent_id} on {project_id}: {error}"),
            Event::CooldownStarted { agent_id, until, reason } => {
                format!("{agent_id} cooling down for {} s ({reason})", (until - coordinator::api::now_ms()).max(0) / 1000)
            }
            Event::ServerUnreachable { error, .. } => format!("server unreachable: {error}"),
            Event::ServerReachable { after_ms } => format!("server reachable again after {:.1} s", *after_ms as f64 / 1000.0),
            Event::TokenRejected { error } => format!("the server rejected the coordinator token — set the new one (`agentpm-coordinator token set`): {error}"),
            Event::PasskeyMissing { agent_id } => format!("{agent_id} has no passkey: `agentpm-coordinator passkey set {agent_id}`"),
            _ => return,
        };
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        self.out(&format!("{clear}{text}\n"));
        self.last_line.clear();
    }

    fn finish(&mut self) {
        if self.tty && !self.json && !self.last_line.is_empty() {
            self.out("\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_config_shares_one_state_file() {
        let d = tempfile::tempdir().unwrap();
        let abs = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir(abs.join("sub")).unwrap();
        std::fs::write(abs.join("s.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&abs, abs.join("link")).unwrap();
        // A relative spelling of the same file, from the current directory.
        let cwd = std::env::current_dir().unwrap();
        let ups = cwd.components().count() - 1;
        let rel = PathBuf::from("../".repeat(ups)).join(abs.strip_prefix("/").unwrap()).join("s.json");
        let want = state_path_for(&abs.join("s.json"));
        for p in [rel, abs.join("sub/../s.json"), abs.join("link/s.json"), abs.join("./s.json")] {
            assert_eq!(state_path_for(&p), want, "{}", p.display());
        }
        // Not created yet: still the same before and after the file exists.
        let later = abs.join("new/later.json");
        let before = state_path_for(&abs.join("link/new/later.json"));
        std::fs::create_dir(abs.join("new")).unwrap();
        std::fs::write(&later, "{}").unwrap();
        assert_eq!(state_path_for(&later), before);
        assert_ne!(state_path_for(&later), want);
    }
}
