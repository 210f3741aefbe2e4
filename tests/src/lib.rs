//! Shared helpers for the end-to-end tests: locate the built binaries, start the simulator, run the engine.

pub mod bench_server;
pub mod fake_model;
pub mod hostile;

use coordinator::api::Snapshot;
use coordinator::config::{AgentSettings, ProviderSettings, Settings};
use coordinator::engine::{Engine, EngineConfig};
use coordinator::secrets::{self, MemoryStore, SecretStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A binary of the workspace, built by `cargo build --workspace` (scripts/test does that first).
pub fn bin(name: &str) -> PathBuf {
    // Test binaries live in target/<profile>/deps, the benchmark in target/<profile>.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    let candidates = [dir.join(name), dir.parent().map(|d| d.join(name)).unwrap_or_default()];
    let found = candidates.iter().find(|p| p.exists());
    assert!(
        found.is_some(),
        "{name} is missing next to {}: run `cargo build --workspace` before the end-to-end tests",
        exe.display()
    );
    found.unwrap().clone()
}

/// The simulator plus an in-process engine pointed at it, with real fake-agent children.
pub struct Rig {
    pub dir: tempfile::TempDir,
    pub sim: pm_sim::Simulator,
    pub engine: Engine,
    pub settings: Settings,
    pub store: Arc<MemoryStore>,
}

pub struct RigOptions {
    pub agents: usize,
    pub projects: usize,
    pub items: usize,
    pub max_concurrent: usize,
    pub work_ms: u64,
    pub http: bool,
    pub exit_tool: pm_sim::ExitTool,
    /// Overwrite the token given to the engine (to test refusals).
    pub wrong_token: bool,
    /// Extra fake-agent args.
    pub agent_args: Vec<String>,
    /// Provider conventions for the fake agent: "custom" (default) or "claude"/"gemini" (context dirs, MCP config).
    pub kind: String,
    /// Change settings before the engine starts.
    pub tweak: Option<fn(&mut Settings)>,
    /// Agents whose passkey is *not* put into the store.
    pub without_passkey: Vec<String>,
    /// The simulator's spawn lease (the real server's is 120 s).
    pub lease_secs: u64,
    /// Runs once the simulator is up, before the engine starts (e.g. to put a passkey into the environment).
    pub before_engine: Option<fn(&pm_sim::Simulator)>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            agents: 2,
            projects: 2,
            items: 1,
            max_concurrent: 3,
            work_ms: 100,
            http: false,
            exit_tool: pm_sim::ExitTool::Both,
            wrong_token: false,
            agent_args: vec![],
            kind: "custom".into(),
            tweak: None,
            without_passkey: vec![],
            lease_secs: 120,
            before_engine: None,
        }
    }
}

impl Rig {
    pub async fn start(o: RigOptions) -> Rig {
        // The engine runs inside the test binary: agents' MCP configs must name the real CLI binary as
        // their `mcp-bridge` (the CLI and the app name themselves).
        std::env::set_var("AGENTPM_MCP_BRIDGE", bin("agentpm-coordinator"));
        let dir = tempfile::tempdir().unwrap();
        let workload = pm_sim::Workload {
            projects: o.projects,
            agents: o.agents,
            items_per_pair: o.items,
            provider: "fake".into(),
            model: Some("fake-1".into()),
        };
        let mut cfg = pm_sim::SimConfig::new(workload, dir.path().join("projects"));
        cfg.socket_path = Some(dir.path().join("mcp.sock"));
        if o.http {
            cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
        }
        cfg.exit_tool = o.exit_tool;
        cfg.max_concurrent = Some(o.max_concurrent);
        cfg.lease = Duration::from_secs(o.lease_secs);
        let sim = pm_sim::Simulator::start(cfg).await.unwrap();
        let server = if o.http {
            sim.mcp_url().unwrap()
        } else {
            sim.socket_path().unwrap().display().to_string()
        };
        let mut settings = Settings {
            server: Some(server),
            max_concurrent: o.max_concurrent,
            polling_interval_secs: 1,
            log_dir: Some(dir.path().join("logs")),
            ..Settings::default()
        };
        let mut args = vec!["--work-ms".to_string(), o.work_ms.to_string()];
        args.extend(o.agent_args.clone());
        settings.providers.insert(
            "fake".into(),
            ProviderSettings {
                command: bin("fake-agent").display().to_string(),
                args,
                model: None,
                kind: Some(o.kind.clone()),
            },
        );
        let store = Arc::new(MemoryStore::new());
        for id in sim.agent_ids() {
            settings.agents.insert(
                id.clone(),
                AgentSettings {
                    enabled: true,
                    provider: Some("fake".into()),
                    ..Default::default()
                },
            );
            if !o.without_passkey.contains(&id) {
                store.set(&secrets::agent_account(&id), &sim.passkey(&id)).unwrap();
            }
        }
        if let Some(t) = o.tweak {
            t(&mut settings);
        }
        if let Some(f) = o.before_engine {
            f(&sim);
        }
        let token = if o.wrong_token {
            "wrong-token-value".to_string()
        } else {
            sim.coordinator_token()
        };
        store.set(secrets::TOKEN_ACCOUNT, &token).unwrap();
        let engine = Engine::launch(EngineConfig {
            settings: settings.clone(),
            settings_path: dir.path().join("settings.json"),
            state_path: Some(dir.path().join("state.json")),
            secrets: store.clone(),
            redactor: coordinator::redact::global().clone(),
            autostart: true,
            runs_db: Some(dir.path().join("runs.db")),
        });
        Rig {
            dir,
            sim,
            engine,
            settings,
            store,
        }
    }

    /// Wait for a snapshot condition with a deadline.
    pub async fn wait_snapshot(&self, timeout: Duration, pred: impl Fn(&Snapshot) -> bool) -> Option<Snapshot> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.engine.subscribe();
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return Some(s);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), rx.changed()).await;
        }
    }

    pub async fn wait_done(&self, timeout: Duration) -> bool {
        let ok = self.sim.wait_until(timeout, |s| s.remaining_items == 0).await;
        ok && self
            .wait_snapshot(Duration::from_secs(10), |s| s.instances.is_empty())
            .await
            .is_some()
    }

    pub async fn stop(self) -> (tempfile::TempDir, pm_sim::Simulator) {
        self.engine.shutdown().await;
        (self.dir, self.sim)
    }
}

/// Every process's argv on this machine (Linux /proc), joined by spaces.
pub fn all_cmdlines() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
                if let Ok(b) = std::fs::read(e.path().join("cmdline")) {
                    out.push(String::from_utf8_lossy(&b).replace('\0', " "));
                }
            }
        }
    }
    out
}

/// All files under `dir` whose content contains `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                if String::from_utf8_lossy(&b).contains(needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// Alive and not a zombie: the simulator's own check (one implementation for tests and simulator).
pub fn pid_alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(pm_sim::pid_alive)
}

/// A venv with the Python coordinator, aiagent-runner 0.1.13 from PyPI (plus aiohttp, which 0.1.13 imports
/// at module load), created once under the target dir and reused. Returns its python.
pub fn python_venv() -> Result<PathBuf, String> {
    use std::process::Command;
    let dir = bin("agentpm-coordinator")
        .parent()
        .unwrap()
        .join("py-aiagent-runner-0.1.13");
    let py = dir.join("bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import aiagent_runner, aiohttp"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ok {
        eprintln!("creating {} with aiagent-runner==0.1.13 from PyPI…", dir.display());
        let s = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !s.success() {
            return Err("python3 -m venv failed (install python3-venv)".into());
        }
        let s = Command::new(dir.join("bin/pip"))
            .args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "aiagent-runner==0.1.13",
                "aiohttp",
            ])
            .status()
            .map_err(|e| e.to_string())?;
        if !s.success() {
            return Err("pip install aiagent-runner==0.1.13 aiohttp failed (is PyPI reachable?)".into());
        }
    }
    Ok(py)
}

/// A simulator on a Unix socket in `dir` that names "claude" as provider (the Python coordinator's default),
/// for tests that run a coordinator *process* from a YAML file.
pub async fn socket_sim(
    dir: &Path,
    agents: usize,
    projects: usize,
    items: usize,
    max_concurrent: Option<usize>,
    exit_tool: pm_sim::ExitTool,
) -> pm_sim::Simulator {
    let workload = pm_sim::Workload {
        projects,
        agents,
        items_per_pair: items,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(workload, dir.join("projects"));
    cfg.socket_path = Some(dir.join("mcp.sock"));
    cfg.max_concurrent = max_concurrent;
    cfg.exit_tool = exit_tool;
    pm_sim::Simulator::start(cfg).await.unwrap()
}

/// The Python coordinator's YAML for `sim` (plain passkeys; the fake agent as the `claude` provider). Both
/// coordinators read it unchanged.
pub fn python_yaml(sim: &pm_sim::Simulator, polling: u64, max_concurrent: usize, fake_args: &[&str]) -> String {
    let args: Vec<String> = fake_args.iter().map(|a| format!("\"{a}\"")).collect();
    let mut yaml = format!(
        "polling_interval: {polling}\nmax_concurrent: {max_concurrent}\nmcp_socket_path: {}\ncoordinator_token: {}\ndebug_mode: false\nai_providers:\n  claude:\n    cli_command: {}\n    cli_args: [{}]\nagents:\n",
        sim.socket_path().unwrap().display(),
        sim.coordinator_token(),
        bin("fake-agent").display(),
        args.join(", ")
    );
    for id in sim.agent_ids() {
        yaml.push_str(&format!("  {id}:\n    passkey: \"{}\"\n", sim.passkey(&id)));
    }
    yaml
}

/// SIGTERM a child and wait for it (SIGKILL after `timeout`). Returns its status and whether it obeyed.
pub fn sigterm_and_wait(child: &mut std::process::Child, timeout: Duration) -> (std::process::ExitStatus, bool) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let t = Instant::now();
    while t.elapsed() < timeout {
        if let Ok(Some(s)) = child.try_wait() {
            return (s, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    (child.wait().unwrap(), false)
}

/// The real `agentpm-coordinator` binary running `--json run` on a YAML file; its JSON lines (snapshots and
/// events) are collected for assertions.
pub struct CoordinatorProcess {
    pub child: std::process::Child,
    pub lines: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl CoordinatorProcess {
    pub fn start(yaml: &Path, data_dir: &Path) -> CoordinatorProcess {
        use std::process::{Command, Stdio};
        let mut child = Command::new(bin("agentpm-coordinator"))
            .args(["--json", "run", "--config"])
            .arg(yaml)
            .env_remove("MCP_COORDINATOR_TOKEN")
            .env("AGENTPM_DATA_DIR", data_dir)
            .env("XDG_DATA_HOME", data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start agentpm-coordinator");
        let out = child.stdout.take().expect("stdout");
        let lines: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        CoordinatorProcess {
            child,
            lines,
            reader: Some(reader),
        }
    }

    /// Every `snapshot` printed so far.
    pub fn snapshots(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|v| v.get("snapshot").cloned())
            .collect()
    }

    pub fn last_snapshot(&self) -> Option<serde_json::Value> {
        self.snapshots().pop()
    }

    /// SIGTERM, wait (SIGKILL after 10 s), and collect the rest of the output.
    pub fn stop(mut self) -> Vec<serde_json::Value> {
        sigterm_and_wait(&mut self.child, Duration::from_secs(10));
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for CoordinatorProcess {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
