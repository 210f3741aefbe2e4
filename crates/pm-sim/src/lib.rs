//! A faithful simulator of the AI Agent PM server's coordinator protocol (../shared/docs/pm-protocol.md),
//! with a scripted workload and a record of protocol violations, plus a fake agent CLI.
//!
//! - `types`: workload, knobs, records and counters;
//! - `model`: the server state, the envelope and the coordinator tools (same shapes and texts as the real server);
//! - `sessions`: `authenticate`, sessions per purpose (`task`, `chat`) and the agent tools;
//! - `refill`: continuous work for the demo (refilled pairs, run lengths from a seeded range);
//! - `tools`: the `tools/list` catalogue (the real server's input schemas);
//! - `unix` / `http`: the two transports (JSON lines on a Unix socket; `POST /mcp` and the REST endpoints);
//! - `fake_agent`: an AI CLI stand-in that authenticates, completes one work item and exits.

pub mod fake_agent;
mod http;
mod model;
mod refill;
mod sessions;
mod tools;
mod types;
mod unix;

pub use model::pid_alive;
pub use refill::Refill;
pub use types::{
    AgentBehavior, CallRecord, ExitTool, Faults, PairScript, Purpose, SimStats, UploadRecord, Violation, ViolationKind,
    Workload,
};

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct SimConfig {
    pub workload: Workload,
    pub coordinator_token: String,
    /// Serve JSON lines on this Unix socket.
    pub socket_path: Option<PathBuf>,
    /// Serve HTTP (`POST /mcp`, REST endpoints) on this address (port 0 = pick one).
    pub http_addr: Option<SocketAddr>,
    /// Project working dirs are created as `<work_root>/<project_id>`.
    pub work_root: PathBuf,
    pub exit_tool: ExitTool,
    /// When set, more live agent processes than this is a violation.
    pub max_concurrent: Option<usize>,
    /// Passkeys per agent; missing ones are random.
    pub passkeys: Vec<(String, String)>,
    /// The `spawn_started_at` lease (the real server: 120 s).
    pub lease: Duration,
    /// Human agents `hum_01`… assigned to every project with the same work, but without credentials.
    pub humans: usize,
}

impl SimConfig {
    pub fn new(workload: Workload, work_root: PathBuf) -> Self {
        SimConfig {
            workload,
            coordinator_token: format!("tok-{}", random_hex(16)),
            socket_path: None,
            http_addr: None,
            work_root,
            exit_tool: ExitTool::Both,
            max_concurrent: None,
            passkeys: Vec::new(),
            lease: Duration::from_secs(120),
            humans: 0,
        }
    }
}

pub(crate) fn random_hex(n: usize) -> String {
    (0..n).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect()
}

/// Clone-able handle to a running simulator.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) model: Arc<Mutex<model::Model>>,
    socket: Option<PathBuf>,
    http: Option<SocketAddr>,
    /// Set while `stop_listening` is in effect (an outage).
    down: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<Mutex<tokio::sync::watch::Sender<bool>>>,
}

impl Simulator {
    pub async fn start(cfg: SimConfig) -> anyhow::Result<Simulator> {
        std::fs::create_dir_all(&cfg.work_root).with_context(|| format!("creating {}", cfg.work_root.display()))?;
        let work_root = std::fs::canonicalize(&cfg.work_root)?;
        let model = model::Model::new(&cfg, &work_root)?;
        let model = Arc::new(Mutex::new(model));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut socket = None;
        if let Some(path) = &cfg.socket_path {
            unix::serve(path, model.clone(), stop_rx.clone()).await?;
            socket = Some(path.clone());
        }
        let mut http = None;
        if let Some(addr) = cfg.http_addr {
            http = Some(http::serve(addr, model.clone(), stop_rx.clone()).await?);
        }
        Ok(Simulator {
            model,
            socket,
            http,
            down: Arc::default(),
            stop: Arc::new(Mutex::new(stop_tx)),
        })
    }

    fn m(&self) -> std::sync::MutexGuard<'_, model::Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn socket_path(&self) -> Option<PathBuf> {
        self.socket.clone()
    }
    pub fn http_base(&self) -> Option<String> {
        self.http.map(|a| format!("http://{a}"))
    }
    pub fn mcp_url(&self) -> Option<String> {
        self.http_base().map(|b| format!("{b}/mcp"))
    }
    pub fn coordinator_token(&self) -> String {
        self.m().token.clone()
    }
    pub fn agent_ids(&self) -> Vec<String> {
        self.m().agents.clone()
    }
    pub fn project_ids(&self) -> Vec<String> {
        self.m().projects.clone()
    }
    /// Human agents (listed by the server, no passkey).
    pub fn human_ids(&self) -> Vec<String> {
        self.m().humans.clone()
    }
    /// The provider `get_agent_action` names for this agent (any string: `openai`, `custom`, …).
    pub fn set_agent_provider(&self, agent_id: &str, provider: &str) {
        self.m().agent_providers.insert(agent_id.into(), provider.into());
    }
    /// An unread chat message to the agent in the project (chat work).
    pub fn add_chat_message(&self, agent_id: &str, project_id: &str, text: &str) {
        self.m().add_chat_message(agent_id, project_id, text);
    }
    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// An outage: stop listening `after` from now, come back `length` later (same state, same addresses).
    pub fn schedule_outage(&self, after: Duration, length: Duration) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            sim.stop_listening().await;
            tokio::time::sleep(length).await;
            if let Err(e) = sim.resume_listening().await {
                eprintln!("simulator: cannot listen again after the outage: {e:#}");
            }
        })
    }
    pub fn passkey(&self, agent_id: &str) -> String {
        self.m().passkeys.get(agent_id).cloned().unwrap_or_default()
    }
    pub fn stats(&self) -> SimStats {
        self.m().stats()
    }
    pub fn violations(&self) -> Vec<Violation> {
        self.m().violations.clone()
    }
    pub fn calls(&self) -> Vec<CallRecord> {
        self.m().calls.clone()
    }
    pub fn uploads(&self) -> Vec<UploadRecord> {
        self.m().uploads.clone()
    }
    pub fn all_done(&self) -> bool {
        self.m().stats().remaining_items == 0
    }
    pub async fn wait_until(&self, timeout: Duration, pred: impl Fn(&SimStats) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(&self.stats()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    pub fn set_pair_script(&self, agent_id: &str, project_id: &str, script: PairScript) {
        self.m().scripts.insert((agent_id.into(), project_id.into()), script);
    }
    pub fn set_agent_behavior(&self, agent_id: &str, b: AgentBehavior) {
        self.m().behaviors.insert(agent_id.into(), b);
    }
    pub fn set_faults(&self, f: Faults) {
        self.m().faults = f;
    }
    pub fn faults(&self) -> Faults {
        self.m().faults.clone()
    }
    pub fn set_max_concurrent(&self, n: usize) {
        self.m().max_concurrent = Some(n);
    }
    pub fn set_base_prompt(&self, p: Option<String>) {
        self.m().base_prompt = p;
    }
    /// What `GET /api/coordinator/config` reports for polling interval and max concurrent.
    pub fn set_remote_limits(&self, polling_interval: u64, max_concurrent: usize) {
        let mut m = self.m();
        m.remote_polling = polling_interval;
        m.remote_max_concurrent = max_concurrent;
    }
    pub fn set_agent_profile(&self, agent_id: &str, system_prompt: &str, skills: Vec<(String, Vec<u8>)>) {
        self.m()
            .profiles
            .insert(agent_id.into(), (system_prompt.into(), skills));
    }
    /// Continuous work: refill pairs whose work ran out and give each run a length (None: off).
    pub fn set_refill(&self, r: Option<Refill>) {
        self.m().refill = r.map(refill::RefillState::new);
    }
    /// Add work to a pair (dynamic workloads in tests).
    pub fn add_items(&self, agent_id: &str, project_id: &str, n: usize) {
        self.m().add_items(agent_id, project_id, n);
    }
    /// Simulate a server crash: stop listening, drop every connection, remove the socket. State is kept.
    pub async fn stop_listening(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop.lock().unwrap_or_else(|p| p.into_inner()).send(true);
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    /// The server is back (same state, same socket path).
    pub async fn resume_listening(&self) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = tx;
        if let Some(p) = &self.socket {
            unix::serve(p, self.model.clone(), rx.clone()).await?;
        }
        if let Some(a) = self.http {
            // The old listener closes with its graceful shutdown; retry the bind briefly.
            let mut tries = 0;
            loop {
                match http::serve(a, self.model.clone(), rx.clone()).await {
                    Ok(_) => break,
                    Err(_) if tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Extra raw entries appended to `list_active_projects_with_agents` (hostile ids and paths in tests).
    pub fn set_extra_projects(&self, projects: Vec<serde_json::Value>) {
        self.m().extra_projects = projects;
    }

    /// Stop listening and remove the socket. Open connections are closed.
    pub async fn shutdown(&self) {
        let _ = self.stop.lock().unwrap_or_else(|p| p.into_inner()).send(true);
        if let Some(p) = &self.socket {
            let _ = std::fs::remove_file(p);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
