//! The supervisor: one task that owns all mutable state and reconciles what the server wants with what runs.
//!
//! Everything slow (server calls, spawning, exit analysis) runs in small tasks that report back as
//! [`Msg`]s, so the loop itself never blocks and reacts to a child's exit at once.
//!
//! Leases: a `start` answer sets `spawn_started_at` on the server (a 120 s lease). So we only ask about a
//! pair when we could start it right now: a free slot is *reserved* for every question in flight, pairs in
//! cooldown or without a passkey are not asked, and a pair that already runs is only asked for stop/restart.

use crate::api::*;
use crate::config::Settings;
use crate::engine::{Command, EngineConfig};
use crate::exit::Cooldowns;
use crate::launch::{self, LaunchPlan, LaunchRequest};
use crate::pm::{AgentAction, PmClient, PmError, ProjectInfo};
use crate::redact::Redactor;
use crate::secrets::{self, SharedStore};
use crate::state::{ChildRecord, PersistedState};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// (agent_id, project_id)
pub type Pair = (String, String);

/// Grace between SIGTERM and SIGKILL of an agent's process group.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Questions about running pairs (stop/restart checks) in flight at once.
const CHECK_CONCURRENCY: usize = 16;
/// Per-call timeout towards the server.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How many recent errors the snapshot keeps.
const MAX_ERRORS: usize = 50;
/// Snapshots are coalesced to at most one per this interval.
const PUBLISH_EVERY: Duration = Duration::from_millis(50);
/// How long `get_app_settings` is cached (upstream caches it forever; we refresh).
const APP_SETTINGS_TTL: Duration = Duration::from_secs(300);

/// Results of the small tasks, sent back to the loop.
enum Msg {
    SecretsLoaded { passkeys: HashMap<String, Option<String>>, token: Option<String>, error: Option<String> },
    Discovered { cycle: u64, result: Result<Discovery, PmError> },
    Answer { cycle: u64, pair: Pair, running: bool, result: Result<AgentAction, PmError> },
    /// From an asker: `last` means the asker ended and its slot comes back to the loop.
    Asked { pair: Pair, result: Result<AgentAction, PmError>, holds: u64 },
    AskerIdle { holds: u64 },
    // Boxed: the largest message by far, and every message in the channel is as big as the largest.
    /// `pair_only`: the failure concerns this (agent, project) pair only (its working dir, its task id), so
    /// only the pair is held; the agent keeps running in its other projects.
    Spawned { pair: Pair, result: Result<Box<Spawned>, String>, asked_at: Instant, pair_only: bool },
    Exited { id: u64, code: Option<i32> },
    Analyzed { id: u64, code: Option<i32>, error: Option<String>, quota_secs: Option<u64> },
    Reported { pair: Pair, result: Result<(), PmError>, exit_tool: Option<ExitTool> },
    PendingFlushed { done: Vec<Pair>, exit_tool: Option<ExitTool> },
    RemoteConfig(Result<crate::pm::RemoteConfig, PmError>),
    RemotePasskeysStored,
}

struct Discovery {
    projects: Vec<ProjectInfo>,
    base_prompt: Option<Option<String>>,
}

struct Spawned {
    info: InstanceInfo,
    plan: LaunchPlan,
    child: launch::RunningChild,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ExitTool {
    ReportProcessExit,
    InvalidateSession,
}

impl ExitTool {
    fn name(self) -> &'static str {
        match self {
            ExitTool::ReportProcessExit => "report_process_exit",
            ExitTool::InvalidateSession => "invalidate_session",
        }
    }
}

struct Instance {
    info: InstanceInfo,
    plan: LaunchPlan,
    stopping: bool,
}

/// How long a finished agent's log copy may take once the agent exited: a background process it left
/// behind (`cmd &`) keeps the pipes open, and the run must not hold its slot forever because of it.
const LOG_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A pair (not the whole agent) that must not be started: its project's working directory is unusable
/// (`dir`: re-checked every cycle, no lease is taken meanwhile), or a start failed for a pair-specific reason
/// (held with backoff until `until`).
struct PairHold {
    until: UnixMs,
    failures: u32,
    message: String,
    dir: bool,
}

/// Why a project's working directory cannot be used (checked before asking, so no lease is taken).
fn working_dir_problem(project: &ProjectInfo) -> Option<String> {
    let raw = &project.working_directory;
    let wd = raw.trim();
    if wd.is_empty() {
        return Some(format!("project {} has no working directory on the server; set one in AI Agent PM", project.project_id));
    }
    let path = Path::new(wd);
    if !path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) || raw.contains('\0') {
        return Some(format!("project {} has an unsafe working directory {:?}; it must be an absolute path without `..`", project.project_id, raw));
    }
    if !path.is_dir() {
        return Some(format!("working directory {} of project {} does not exist; create it or fix the project in AI Agent PM", path.display(), project.project_id));
    }
    None
}

pub(crate) fn spawn(cfg: EngineConfig, cmd: mpsc::Receiver<Command>, snap: watch::Sender<Snapshot>, ev: broadcast::Sender<Event>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let persisted = cfg.state_path.as_deref().map(PersistedState::load).unwrap_or_default();
    let (state_tx, state_rx) = watch::channel(persisted.clone());
    if let Some(path) = cfg.state_path.clone() {
        tokio::spawn(state_writer(path, state_rx));
    }
    let mut sup = Supervisor {
        running: false,
        autostart: cfg.autostart,
        settings: cfg.settings,
        store: cfg.secrets,
        redactor: cfg.redactor,
        client: None,
        token: None,
        passkeys: HashMap::new(),
        secrets_loaded: false,
        secret_error: None,
        tx,
        snap,
        ev,
        state_tx,
        instances: HashMap::new(),
        next_id: 1,
        asking: HashSet::new(),
        checking: HashSet::new(),
        ask_queue: Arc::new(std::sync::Mutex::new(VecDeque::new())),
        askers: 0,
        check_queue: VecDeque::new(),
        cycle: 0,
        cycle_started: None,
        discovering: false,
        next_cycle_at: Instant::now(),
        rotation: 0,
        projects: HashMap::new(),
        pair_holds: HashMap::new(),
        live_logs: Arc::new(std::sync::Mutex::new(HashSet::new())),
        passkey_conflicts: Arc::new(std::sync::Mutex::new(HashSet::new())),
        cooldowns: persisted.cooldowns.clone(),
        pending_reports: persisted.pending_exit_reports.iter().cloned().collect(),
        reporting: 0,
        warned_no_passkey: HashSet::new(),
        server: ServerHealth::default(),
        unreachable_streak: 0,
        last_outage_at: None,
        recent_backoffs: Vec::new(),
        exit_tool: None,
        base_prompt: None,
        base_prompt_at: None,
        remote_config_at: None,
        errors: VecDeque::new(),
        agent_errors: HashMap::new(),
        last_exit: HashMap::new(),
        counters: Counters::default(),
        dirty: true,
        publish_at: None,
    };
    sup.server.address = sup.settings.server_address();
    let orphans = persisted.children;
    tokio::spawn(async move {
        sup.stop_orphans(orphans).await;
        sup.load_secrets();
        sup.run(cmd, rx).await;
    });
}

struct Supervisor {
    running: bool,
    autostart: bool,
    settings: Settings,
    store: SharedStore,
    redactor: Redactor,
    client: Option<Arc<PmClient>>,
    token: Option<String>,
    /// Passkeys read once from the store (the Keychain may prompt per read); `None` = missing.
    passkeys: HashMap<String, Option<String>>,
    secrets_loaded: bool,
    secret_error: Option<String>,
    tx: mpsc::UnboundedSender<Msg>,
    snap: watch::Sender<Snapshot>,
    ev: broadcast::Sender<Event>,
    state_tx: watch::Sender<PersistedState>,
    instances: HashMap<u64, Instance>,
    next_id: u64,
    /// Pairs whose `start` is being spawned: each holds a reserved slot.
    asking: HashSet<Pair>,
    /// Asker tasks: each holds one reserved slot and asks queued pairs one after another until an answer
    /// needs the loop (start, stop, restart, error) or the queue is empty. Chaining the questions in the
    /// asker, instead of a hop through the loop per question, is what makes a cycle over 1,000 pairs fast.
    askers: usize,
    /// Running pairs with a stop/restart check in flight.
    checking: HashSet<Pair>,
    /// Pairs to ask this cycle; only eligible pairs are put in (see `blocked`), and pairs that become
    /// ineligible are purged.
    ask_queue: Arc<std::sync::Mutex<VecDeque<Pair>>>,
    check_queue: VecDeque<Pair>,
    cycle: u64,
    cycle_started: Option<Instant>,
    discovering: bool,
    next_cycle_at: Instant,
    rotation: usize,
    projects: HashMap<String, ProjectInfo>,
    /// Pairs held back for a pair-specific reason (see [`PairHold`]); the agent's other pairs are unaffected.
    pair_holds: HashMap<Pair, PairHold>,
    /// Logs of runs being spawned or running: retention never deletes one of these.
    live_logs: Arc<std::sync::Mutex<HashSet<PathBuf>>>,
    /// Agents whose stored passkey differs from the server's, already reported (once per agent): shared with
    /// the blocking task that stores the server's passkeys.
    passkey_conflicts: Arc<std::sync::Mutex<HashSet<String>>>,
    cooldowns: Cooldowns,
    pending_reports: VecDeque<Pair>,
    reporting: usize,
    warned_no_passkey: HashSet<String>,
    server: ServerHealth,
    unreachable_streak: u32,
    /// When the server last failed to answer: runs that overlap an outage fail for the server's sake, not
    /// the agent's, so they do not count towards the agent's backoff.
    last_outage_at: Option<UnixMs>,
    /// Recent error backoffs (agent, when): the engine may learn of an outage only after an agent that
    /// tripped over it has exited (a silent server costs a full call timeout to notice).
    recent_backoffs: Vec<(String, UnixMs)>,
    exit_tool: Option<ExitTool>,
    base_prompt: Option<String>,
    base_prompt_at: Option<Instant>,
    /// When the server's dynamic configuration was last fetched (HTTP servers only).
    remote_config_at: Option<Instant>,
    errors: VecDeque<ErrorEntry>,
    agent_errors: HashMap<String, String>,
    last_exit: HashMap<String, (Option<i32>, PathBuf)>,
    counters: Counters,
    dirty: bool,
    publish_at: Option<Instant>,
}

impl Supervisor {
    async fn run(&mut self, mut cmd: mpsc::Receiver<Command>, mut rx: mpsc::UnboundedReceiver<Msg>) {
        if self.autostart {
            self.set_running(true);
        }
        loop {
            self.maybe_schedule_publish();
            let cycle_due = self.running && self.secrets_loaded && !self.discovering;
            let next_cycle = self.next_cycle_at;
            let publish_at = self.publish_at;
            tokio::select! {
                c = cmd.recv() => match c {
                    None => {
                        // Every handle is gone: stop children cleanly and end.
                        self.stop_all(&mut rx).await;
                        self.publish();
                        return;
                    }
                    Some(Command::Shutdown(done)) => {
                        self.set_running(false);
                        self.stop_all(&mut rx).await;
                        self.publish();
                        let _ = done.send(());
                        return;
                    }
                    Some(c) => self.command(c, &mut rx).await,
                },
                Some(m) = rx.recv() => self.message(m),
                _ = tokio::time::sleep_until(next_cycle), if cycle_due => self.begin_cycle(),
                _ = sleep_opt(publish_at) => self.publish(),
            }
        }
    }

    // ----- commands -----

    async fn command(&mut self, c: Command, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        match c {
            Command::Start => self.set_running(true),
            Command::Stop(done) => {
                self.set_running(false);
                self.stop_all(rx).await;
                let _ = done.send(());
            }
            Command::Reload(s) => self.reload(*s),
            Command::StopInstance(id, done) => {
                let found = self.instances.contains_key(&id);
                if found {
                    self.stop_instance(id);
                }
                let _ = done.send(found);
            }
            Command::SecretsChanged => self.load_secrets(),
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
        self.dirty = true;
    }

    fn set_running(&mut self, on: bool) {
        if self.running == on {
            return;
        }
        self.running = on;
        self.dirty = true;
        if on {
            self.next_cycle_at = Instant::now();
            let _ = self.ev.send(Event::Started);
            tracing::info!("coordinator started ({})", self.server.address);
        } else {
            self.queue().clear();
            self.check_queue.clear();
            let _ = self.ev.send(Event::Stopped);
            tracing::info!("coordinator stopped");
        }
    }

    fn reload(&mut self, s: Settings) {
        let server_changed = s.server_address() != self.settings.server_address();
        self.settings = s;
        // Agents may have been disabled: questions are queued again from the next cycle.
        self.queue().clear();
        if server_changed {
            self.server = ServerHealth { address: self.settings.server_address(), ..Default::default() };
            self.exit_tool = None;
            self.base_prompt_at = None;
        }
        // Agents may have been enabled or disabled: re-read secrets (once) and rebuild the client.
        self.load_secrets();
        self.next_cycle_at = Instant::now();
        // The new settings lack what the server's dynamic configuration added: fetch and apply it again now.
        self.remote_config_at = None;
        tracing::info!("settings reloaded");
    }

    /// Read the token and every enabled agent's passkey once, off the runtime (keyring calls block).
    fn load_secrets(&mut self) {
        let store = self.store.clone();
        let ids: Vec<String> = self.settings.agents.iter().filter(|(_, a)| a.enabled).map(|(id, _)| id.clone()).collect();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let mut error = None;
            let mut passkeys = HashMap::new();
            let token = match store.get(secrets::TOKEN_ACCOUNT) {
                Ok(t) => t,
                Err(e) => {
                    error = Some(e.to_string());
                    None
                }
            };
            for id in ids {
                match store.get(&secrets::agent_account(&id)) {
                    Ok(v) => {
                        passkeys.insert(id, v.filter(|v| !v.is_empty()));
                    }
                    Err(e) => {
                        error.get_or_insert(e.to_string());
                    }
                }
            }
            let _ = tx.send(Msg::SecretsLoaded { passkeys, token, error });
        });
    }

    // ----- messages -----

    fn message(&mut self, m: Msg) {
        self.dirty = true;
        match m {
            Msg::SecretsLoaded { passkeys, token, error } => self.secrets_loaded_msg(passkeys, token, error),
            Msg::Discovered { cycle, result } => self.discovered(cycle, result),
            Msg::Answer { cycle, pair, running, result } => self.answered(cycle, pair, running, result),
            Msg::Asked { pair, result, holds } => {
                self.askers -= 1;
                self.counters.asked += holds;
                self.answered(self.cycle, pair, false, result);
            }
            Msg::AskerIdle { holds } => {
                self.askers -= 1;
                self.counters.asked += holds;
                self.dispatch();
                self.check_cycle_done();
            }
            Msg::Spawned { pair, result, asked_at, pair_only } => self.spawned(pair, result, asked_at, pair_only),
            Msg::Exited { id, code } => self.exited(id, code),
            Msg::Analyzed { id, code, error, quota_secs } => self.analyzed(id, code, error, quota_secs),
            Msg::Reported { pair, result, exit_tool } => self.reported(pair, result, exit_tool),
            Msg::RemoteConfig(r) => self.remote_config(r),
            Msg::RemotePasskeysStored => self.load_secrets(),
            Msg::PendingFlushed { done, exit_tool } => {
                self.reporting = self.reporting.saturating_sub(1);
                if exit_tool.is_some() {
                    self.exit_tool = exit_tool;
                }
                self.pending_reports.retain(|p| !done.contains(p));
                self.persist();
            }
        }
    }

    fn secrets_loaded_msg(&mut self, passkeys: HashMap<String, Option<String>>, token: Option<String>, error: Option<String>) {
        for v in passkeys.values().flatten().chain(token.iter()) {
            self.redactor.add(v);
            crate::redact::global().add(v);
        }
        // Keep passkeys we already had when the store failed this time: running agents keep working.
        for (id, v) in passkeys {
            if v.is_some() || error.is_none() {
                self.passkeys.insert(id, v);
            } else {
                self.passkeys.entry(id).or_insert(None);
            }
        }
        if error.is_none() || token.is_some() {
            self.token = token;
        }
        if let Some(e) = &error {
            if self.secret_error.as_deref() != Some(e) {
                tracing::warn!("{e}; will retry in 30 s (secrets are never written to disk instead)");
            }
            // Retried at the start of every cycle: the Keychain may be unlocked, the Secret Service started.
        }
        self.secret_error = error;
        self.secrets_loaded = true;
        self.warned_no_passkey.clear();
        match PmClient::new(&self.settings.server_address(), self.token.clone(), CALL_TIMEOUT) {
            Ok(c) => self.client = Some(Arc::new(c)),
            Err(e) => {
                self.client = None;
                self.push_error(None, None, e.to_string());
            }
        }
        self.next_cycle_at = Instant::now();
    }

    // ----- the cycle -----

    fn begin_cycle(&mut self) {
        let Some(client) = self.client.clone() else {
            self.next_cycle_at = Instant::now() + Duration::from_secs(self.settings.polling_interval_secs);
            return;
        };
        if self.secret_error.is_some() {
            // Retry the store once per cycle; running agents are unaffected.
            self.load_secrets();
        }
        self.maybe_fetch_remote_config();
        self.cycle += 1;
        self.discovering = true;
        self.cycle_started = Some(Instant::now());
        let cycle = self.cycle;
        let root = self.settings.root_agent_id.clone();
        let want_settings = self.base_prompt_at.is_none_or(|t| t.elapsed() > APP_SETTINGS_TTL);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = async {
                let health = client.health_check().await?;
                if health.status != "ok" {
                    return Err(PmError::Protocol { tool: "health_check".into(), message: format!("server status is {:?}", health.status) });
                }
                let base_prompt = if want_settings {
                    // Optional tool (absent before HEAD): failure just means "no base prompt".
                    Some(client.get_app_settings().await.ok().and_then(|s| s.agent_base_prompt).filter(|p| !p.trim().is_empty()))
                } else {
                    None
                };
                let projects = client.list_active_projects_with_agents(root.as_deref()).await?;
                Ok(Discovery { projects, base_prompt })
            }
            .await;
            let _ = tx.send(Msg::Discovered { cycle, result });
        });
    }

    fn discovered(&mut self, cycle: u64, result: Result<Discovery, PmError>) {
        self.discovering = false;
        let interval = Duration::from_secs(self.settings.polling_interval_secs);
        self.counters.ticks += 1;
        match result {
            Err(e) => {
                self.server_failed(&e);
                let backoff = backoff_delay(self.unreachable_streak, interval);
                self.next_cycle_at = Instant::now() + backoff;
            }
            Ok(d) => {
                self.server_ok();
                if let Some(bp) = d.base_prompt {
                    self.base_prompt = bp;
                    self.base_prompt_at = Some(Instant::now());
                }
                self.next_cycle_at = self.cycle_started.unwrap_or_else(Instant::now) + interval;
                self.flush_pending_reports();
                self.build_queues(cycle, d.projects);
                self.dispatch();
                self.check_cycle_done();
            }
        }
    }

    fn build_queues(&mut self, _cycle: u64, projects: Vec<ProjectInfo>) {
        self.projects.clear();
        let mut pairs = Vec::new();
        let mut seen: HashSet<Pair> = HashSet::new();
        for p in projects {
            if let Err(e) = crate::paths::validate_id(&p.project_id) {
                self.push_error(None, None, format!("ignoring project with unsafe id {:?}: {e}", p.project_id));
                continue;
            }
            // A stat per project per cycle: a missing or unsafe working dir holds this project's pairs
            // before anyone asks the server (no lease taken), and is reported once per pair.
            let dir_problem = working_dir_problem(&p);
            for a in &p.agents {
                let Some(agent) = self.settings.agents.get(a) else { continue };
                if !agent.enabled {
                    continue;
                }
                if crate::paths::validate_id(a).is_err() {
                    continue; // settings validation already rejects these; server data must not create dirs
                }
                let pair = (a.clone(), p.project_id.clone());
                seen.insert(pair.clone());
                match &dir_problem {
                    Some(msg) => self.hold_pair_for_dir(&pair, msg),
                    None => {
                        if self.pair_holds.get(&pair).is_some_and(|h| h.dir) {
                            tracing::info!(agent = %pair.0, project = %pair.1, "working directory usable again");
                            self.pair_holds.remove(&pair);
                        }
                    }
                }
                pairs.push(pair);
            }
            self.projects.insert(p.project_id.clone(), p);
        }
        // Pairs the server no longer lists: forget their directory holds (a timed hold simply expires).
        self.pair_holds.retain(|pair, h| !h.dir || seen.contains(pair));
        // Rotate the start point so that, with few free slots, every pair gets its turn.
        if !pairs.is_empty() {
            let r = self.rotation % pairs.len();
            pairs.rotate_left(r);
            self.rotation = self.rotation.wrapping_add(1);
        }
        self.check_queue.clear();
        let running: HashSet<Pair> = self.instances.values().map(|i| (i.info.agent_id.clone(), i.info.project_id.clone())).collect();
        let mut queue = VecDeque::new();
        for pair in pairs {
            if running.contains(&pair) {
                self.check_queue.push_back(pair);
            } else if self.blocked(&pair).is_none() {
                queue.push_back(pair);
            }
        }
        *self.queue() = queue;
    }

    /// Hold a pair whose project's working directory is unusable; report it once (status and the agent's
    /// chat), not once per cycle.
    fn hold_pair_for_dir(&mut self, pair: &Pair, msg: &str) {
        if self.pair_holds.get(pair).is_some_and(|h| h.dir && h.message == msg) {
            return;
        }
        tracing::warn!(agent = %pair.0, project = %pair.1, "{msg}; not starting this pair until it is fixed");
        self.push_error(Some(&pair.0), Some(&pair.1), msg.to_string());
        let failures = self.pair_holds.get(pair).map_or(0, |h| h.failures);
        self.pair_holds.insert(pair.clone(), PairHold { until: UnixMs::MAX, failures, message: msg.to_string(), dir: true });
        if let Some(client) = self.client.clone() {
            let (a, p, m) = (pair.0.clone(), pair.1.clone(), msg.to_string());
            tokio::spawn(async move {
                let _ = client.report_agent_error(&a, &p, &format!("Coordinator cannot start the agent in this project: {m}")).await;
            });
        }
    }

    /// Hold one pair with exponential backoff after a pair-specific start failure.
    fn hold_pair_after_failure(&mut self, pair: &Pair, msg: &str) -> UnixMs {
        let ep = &self.settings.error_protection;
        let failures = self.pair_holds.get(pair).map_or(0, |h| h.failures) + 1;
        let secs = (ep.default_cooldown_secs as f64 * 2f64.powi(failures.saturating_sub(1).min(20) as i32)).min(ep.max_cooldown_secs as f64).max(1.0);
        let until = now_ms() + (secs * 1000.0) as i64;
        self.pair_holds.insert(pair.clone(), PairHold { until, failures, message: msg.to_string(), dir: false });
        self.queue().retain(|p| p != pair);
        until
    }

    fn pair_held(&self, pair: &Pair) -> bool {
        self.pair_holds.get(pair).is_some_and(|h| h.until > now_ms())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Pair>> {
        self.ask_queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop an agent's queued questions (it just became ineligible, e.g. a cooldown started).
    fn purge_queue(&self, agent: &str) {
        self.queue().retain(|p| p.0 != agent);
    }

    fn free_slots(&self) -> usize {
        self.settings.max_concurrent.saturating_sub(self.instances.len() + self.asking.len() + self.askers)
    }

    fn pair_running(&self, pair: &Pair) -> bool {
        self.instances.values().any(|i| i.info.agent_id == pair.0 && i.info.project_id == pair.1)
    }

    /// Why a `start` for a pair must not be obeyed (it changed while the question was in flight).
    fn blocked_for_start(&self, pair: &Pair) -> Option<&'static str> {
        if self.pair_running(pair) || self.asking.contains(pair) {
            return Some("already running");
        }
        if !self.settings.agents.get(&pair.0).is_some_and(|a| a.enabled) {
            return Some("agent disabled");
        }
        if self.passkeys.get(&pair.0).is_none_or(|p| p.is_none()) {
            return Some("no passkey");
        }
        if self.settings.error_protection.enabled && self.cooldowns.active(&pair.0, now_ms()).is_some() {
            return Some("agent cooling down");
        }
        if self.pair_held(pair) {
            return Some("this project's last start failed or its working directory is unusable");
        }
        None
    }

    /// Why a pair must not be asked now (None = ask).
    fn blocked(&mut self, pair: &Pair) -> Option<&'static str> {
        if self.asking.contains(pair) || self.pair_running(pair) {
            return Some("busy");
        }
        if !self.settings.agents.get(&pair.0).is_some_and(|a| a.enabled) {
            return Some("disabled");
        }
        if self.passkeys.get(&pair.0).cloned().flatten().is_none() {
            if self.warned_no_passkey.insert(pair.0.clone()) {
                tracing::warn!(agent = %pair.0, "no passkey in the secret store; not starting this agent (set one with `agentpm-coordinator passkey set {}`)", pair.0);
                let _ = self.ev.send(Event::PasskeyMissing { agent_id: pair.0.clone() });
            }
            return Some("no passkey");
        }
        if self.settings.error_protection.enabled && self.cooldowns.active(&pair.0, now_ms()).is_some() {
            return Some("cooldown");
        }
        if self.pending_reports.contains(pair) {
            return Some("exit not yet reported");
        }
        if self.pair_held(pair) {
            return Some("pair held");
        }
        None
    }

    /// Ask as many questions as there are free slots (plus stop/restart checks for running pairs).
    fn dispatch(&mut self) {
        if !self.running {
            return;
        }
        let Some(client) = self.client.clone() else { return };
        while self.free_slots() > 0 && !self.queue().is_empty() {
            self.askers += 1;
            tokio::spawn(asker(client.clone(), self.ask_queue.clone(), self.tx.clone()));
        }
        while self.checking.len() < CHECK_CONCURRENCY {
            let Some(pair) = self.check_queue.pop_front() else { break };
            if !self.pair_running(&pair) || self.checking.contains(&pair) {
                continue;
            }
            self.checking.insert(pair.clone());
            self.ask(client.clone(), pair, true);
        }
    }

    fn ask(&self, client: Arc<PmClient>, pair: Pair, running: bool) {
        let tx = self.tx.clone();
        let cycle = self.cycle;
        tokio::spawn(async move {
            let result = client.get_agent_action(&pair.0, &pair.1).await;
            let _ = tx.send(Msg::Answer { cycle, pair, running, result });
        });
    }

    fn check_cycle_done(&mut self) {
        if self.askers == 0 && self.check_queue.is_empty() && self.asking.is_empty() && self.checking.is_empty() && self.queue().is_empty() {
            if let Some(t) = self.cycle_started.take() {
                self.counters.last_cycle_ms = t.elapsed().as_secs_f64() * 1000.0;
            }
        }
    }

    fn answered(&mut self, _cycle: u64, pair: Pair, running: bool, result: Result<AgentAction, PmError>) {
        let asked_at = Instant::now();
        if running {
            self.checking.remove(&pair);
        }
        match result {
            Err(e) => {
                if !running {
                    self.asking.remove(&pair);
                }
                if e.is_server_fault() {
                    self.server_failed(&e);
                    self.queue().clear();
                    self.check_queue.clear();
                } else {
                    self.push_error(Some(&pair.0), Some(&pair.1), e.to_string());
                }
            }
            Ok(action) => match action.action.as_str() {
                "start" if running => {
                    // We never run two instances of a pair; the lease expires on the server (120 s).
                    self.push_error(Some(&pair.0), Some(&pair.1), "server asked to start a pair that is already running; not starting a second instance".into());
                }
                "start" => {
                    if let Some(why) = self.blocked_for_start(&pair) {
                        // Rare: the pair became ineligible while its question was in flight. Tell the server,
                        // which keeps the lease until it expires.
                        self.push_error(Some(&pair.0), Some(&pair.1), format!("not starting ({why}); the server's lease for this pair expires in 120 s"));
                    } else if !self.running {
                        self.push_error(Some(&pair.0), Some(&pair.1), "start answer arrived after the coordinator was stopped; the server lease expires in 120 s".into());
                    } else {
                        // The slot stays reserved (asking) until the spawn finishes.
                        self.asking.insert(pair.clone());
                        self.start_spawn(pair, action, asked_at);
                    }
                }
                "stop" | "restart" => {
                    if !running {
                        self.asking.remove(&pair);
                    }
                    let ids: Vec<u64> = self.instances.iter().filter(|(_, i)| i.info.agent_id == pair.0 && i.info.project_id == pair.1).map(|(id, _)| *id).collect();
                    tracing::info!(agent = %pair.0, project = %pair.1, reason = ?action.reason, "server asked to {}", action.action);
                    // restart = stop now; the exit handling asks again at once and starts it if there is work.
                    for id in ids {
                        self.stop_instance(id);
                    }
                }
                _ => {
                    if !running {
                        self.asking.remove(&pair);
                    }
                }
            },
        }
        self.dispatch();
        self.check_cycle_done();
    }

    // ----- spawning -----

    fn start_spawn(&mut self, pair: Pair, action: AgentAction, asked_at: Instant) {
        let tx = self.tx.clone();
        let req = match self.launch_request(&pair, &action) {
            Ok(r) => r,
            Err((e, pair_only)) => {
                let _ = tx.send(Msg::Spawned { pair, result: Err(e), asked_at, pair_only });
                return;
            }
        };
        let client = self.client.clone();
        let redactor = self.redactor.clone();
        let retention = self.settings.log_retention.clone();
        let log_root = self.settings.log_root();
        // The new run's log is live from now on: no retention pass (this one or a concurrent spawn's) may
        // delete it, nor the log of any other run being spawned or running.
        let live = self.live_logs.clone();
        live.lock().unwrap_or_else(|p| p.into_inner()).insert(req.log_path.clone());
        let own_log = req.log_path.clone();
        let provider_label = req.provider_name.clone();
        tokio::spawn(async move {
            let result = async {
                let mut req = req;
                if matches!(req.kind.as_str(), "claude" | "gemini") {
                    req.context_dir = prepare_context(client.as_deref(), &req).await;
                }
                if req.kind == "gemini" {
                    // Upstream resolves symlinks (os.path.realpath) for Gemini's includeDirectories.
                    let wd = req.working_dir.clone();
                    req.real_working_dir = tokio::task::spawn_blocking(move || std::fs::canonicalize(wd).ok()).await.ok().flatten();
                }
                let plan = launch::plan(&req).map_err(|e| e.to_string())?;
                let child = launch::spawn(&plan, &req.log_path, &redactor).await.map_err(|e| e.to_string())?;
                let info = InstanceInfo {
                    id: 0,
                    agent_id: req.agent_id.clone(),
                    project_id: req.project_id.clone(),
                    pid: child.pid,
                    started_at: now_ms(),
                    provider: provider_label,
                    model: req.model.clone(),
                    task_id: req.task_id.clone(),
                    log_path: req.log_path.clone(),
                    spawn_ms: 0.0,
                };
                // Retention runs after the new log exists, never touching live logs (read at prune time, so a
                // concurrent spawn's new log is included).
                let agent = req.agent_id.clone();
                let live = live.clone();
                tokio::task::spawn_blocking(move || {
                    let keep: Vec<PathBuf> = live.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                    crate::logs::prune(&log_root, &agent, retention.max_files_per_agent, retention.max_mb_per_agent * 1024 * 1024, &keep)
                });
                Ok(Box::new(Spawned { info, plan, child }))
            }
            .await;
            if result.is_err() {
                live.lock().unwrap_or_else(|p| p.into_inner()).remove(&own_log);
            }
            let _ = tx.send(Msg::Spawned { pair, result, asked_at, pair_only: false });
        });
    }

    /// Everything about a start that can be decided without I/O (and the log file, created here).
    /// Errors say whether they concern only this pair (`true`: its project, its task) or the whole agent.
    fn launch_request(&self, pair: &Pair, action: &AgentAction) -> Result<LaunchRequest, (String, bool)> {
        let project = self.projects.get(&pair.1).ok_or_else(|| (format!("project {} vanished from the server's list", pair.1), true))?;
        // Checked before asking too (build_queues); again here, as the directory may vanish in between.
        if let Some(problem) = working_dir_problem(project) {
            return Err((problem, true));
        }
        let wd = PathBuf::from(project.working_directory.trim());
        if let Some(t) = &action.task_id {
            if crate::paths::validate_id(t).is_err() {
                return Err((format!("server sent an unsafe task id {t:?}"), true));
            }
        }
        self.agent_launch_request(pair, action, wd).map_err(|e| (e, false))
    }

    fn agent_launch_request(&self, pair: &Pair, action: &AgentAction, wd: PathBuf) -> Result<LaunchRequest, String> {
        let agent = self.settings.agents.get(&pair.0).ok_or_else(|| format!("agent {} is not in settings", pair.0))?;
        let provider_name = agent.provider.clone().or_else(|| action.provider.clone().filter(|p| !p.is_empty())).unwrap_or_else(|| "claude".to_string());
        let provider = self.settings.providers.get(&provider_name).cloned().ok_or_else(|| {
            format!("provider {provider_name:?} (asked for agent {}) is not configured; add it under providers in settings", pair.0)
        })?;
        let kind = self.settings.provider_kind(&provider_name);
        let model = agent.model.clone().or_else(|| action.model.clone().filter(|m| !m.is_empty())).or_else(|| provider.model.clone());
        let passkey = self.passkeys.get(&pair.0).cloned().flatten().ok_or_else(|| format!("no passkey for agent {}", pair.0))?;
        let log_path = crate::logs::new_run_log(&self.settings.log_root(), &pair.0)
            .map_err(|e| format!("cannot create a log file under {}: {e}; not starting the agent blind", self.settings.log_root().display()))?;
        Ok(LaunchRequest {
            agent_id: pair.0.clone(),
            project_id: pair.1.clone(),
            working_dir: wd,
            provider_name,
            provider,
            kind,
            model,
            kick_command: action.kick_command.clone().filter(|k| !k.trim().is_empty()),
            server_address: self.settings.server_address(),
            passkey,
            coordinator_token: self.token.clone(),
            task_id: action.task_id.clone(),
            debug: self.settings.debug,
            log_path,
            context_dir: None,
            base_prompt: self.base_prompt.clone(),
            real_working_dir: None,
            bridge_command: {
                let (exe, args) = crate::mcp_bridge::command();
                std::iter::once(exe).chain(args).collect()
            },
            as_root: crate::agent_cli::running_as_root(),
        })
    }

    fn spawned(&mut self, pair: Pair, result: Result<Box<Spawned>, String>, asked_at: Instant, pair_only: bool) {
        self.asking.remove(&pair);
        match result {
            Err(e) => {
                let e = self.redactor.redact(&e);
                tracing::error!(agent = %pair.0, project = %pair.1, "spawn failed: {e}");
                self.push_error(Some(&pair.0), Some(&pair.1), format!("spawn failed: {e}"));
                let _ = self.ev.send(Event::SpawnFailed { agent_id: pair.0.clone(), project_id: pair.1.clone(), error: e.clone() });
                // A spawn failure is a failure like any other: back off, never storm. A pair-specific one
                // (this project's working dir, this task id) holds only the pair: the agent's other
                // projects keep running.
                if pair_only {
                    let until = self.hold_pair_after_failure(&pair, &e);
                    tracing::info!(agent = %pair.0, project = %pair.1, "holding this pair for {} s", (until - now_ms()) / 1000);
                } else {
                    self.agent_errors.insert(pair.0.clone(), e.clone());
                }
                let ep = &self.settings.error_protection;
                if !pair_only && ep.enabled {
                    let c = self.cooldowns.record_failure(&pair.0, None, ep.default_cooldown_secs, ep.max_cooldown_secs, now_ms());
                    let _ = self.ev.send(Event::CooldownStarted { agent_id: pair.0.clone(), until: c.until, reason: c.reason.clone() });
                    self.purge_queue(&pair.0);
                }
                // The lease was taken: tell the server (visible in the agent's chat), not silently dropped.
                if let Some(client) = self.client.clone() {
                    let (a, p) = pair.clone();
                    tokio::spawn(async move {
                        let _ = client.report_agent_error(&a, &p, &format!("Coordinator could not start the agent: {e}")).await;
                    });
                }
                self.persist();
            }
            Ok(s) => {
                let id = self.next_id;
                self.next_id += 1;
                let mut info = s.info;
                info.id = id;
                let latency = asked_at.elapsed();
                info.spawn_ms = latency.as_secs_f64() * 1000.0;
                tracing::info!(agent = %info.agent_id, project = %info.project_id, pid = info.pid, log = %info.log_path.display(), "started ({:.1} ms after the decision)", latency.as_secs_f64() * 1000.0);
                self.counters.spawns += 1;
                self.agent_errors.remove(&info.agent_id);
                let _ = self.ev.send(Event::InstanceStarted { instance: info.clone() });
                let tx = self.tx.clone();
                let mut child = s.child;
                tokio::spawn(async move {
                    let status = child.child.wait().await;
                    // The log is complete once the relay drained the pipes, which needs every holder of the
                    // pipes to close them. A background process the agent left behind (`cmd &`) would keep
                    // the run "running" forever: after a short grace, stop what is left of its process
                    // group (the leader is gone; the group id stays valid while members remain).
                    if tokio::time::timeout(LOG_DRAIN_GRACE, &mut child.log_task).await.is_err() {
                        tracing::warn!(pid = child.pid, "the agent exited but processes it left behind still hold its output; stopping its process group");
                        launch::stop_group(child.pid, Duration::from_secs(2)).await;
                        // Anything that escaped the group (setsid) and still holds the pipes: stop copying.
                        if tokio::time::timeout(LOG_DRAIN_GRACE, &mut child.log_task).await.is_err() {
                            child.log_task.abort();
                        }
                    }
                    let code = status.ok().and_then(|s| {
                        use std::os::unix::process::ExitStatusExt;
                        s.code().or_else(|| s.signal().map(|sig| 128 + sig))
                    });
                    let _ = tx.send(Msg::Exited { id, code });
                });
                self.instances.insert(id, Instance { info, plan: s.plan, stopping: false });
                if !self.running {
                    // The spawn raced a stop: it must not outlive the coordinator's stop.
                    self.stop_instance(id);
                }
                self.persist();
            }
        }
        self.dispatch();
        self.check_cycle_done();
    }

    fn stop_instance(&mut self, id: u64) {
        if let Some(inst) = self.instances.get_mut(&id) {
            if inst.stopping {
                return;
            }
            inst.stopping = true;
            let pgid = inst.info.pid;
            tokio::spawn(launch::stop_group(pgid, STOP_GRACE));
        }
    }

    // ----- exits -----

    fn exited(&mut self, id: u64, code: Option<i32>) {
        let Some(inst) = self.instances.get(&id) else { return };
        launch::cleanup(&inst.plan);
        let log = inst.info.log_path.clone();
        let failed = code != Some(0) && !inst.stopping;
        let ep = self.settings.error_protection.clone();
        let tx = self.tx.clone();
        // Reading the log tail is file I/O: off the loop.
        let stopped = inst.stopping;
        tokio::task::spawn_blocking(move || {
            // A closing line, so a log read later says how the run ended.
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                use std::io::Write;
                let how = if stopped { " (stopped by the coordinator)" } else { "" };
                let _ = writeln!(f, "[agentpm] {} exit code={}{how}", chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f"), code.map_or("?".into(), |c| c.to_string()));
            }
            let (error, quota_secs) = if failed {
                let tail = crate::logs::read_tail(&log, 64 * 1024);
                let error = crate::exit::extract_error(&tail);
                let quota = if ep.quota_detection { crate::exit::detect_quota(&tail, ep.quota_margin_percent, ep.max_cooldown_secs) } else { None };
                (error.or_else(|| Some(format!("agent exited with code {}", code.map_or("?".into(), |c| c.to_string())))), quota)
            } else {
                (None, None)
            };
            let _ = tx.send(Msg::Analyzed { id, code, error, quota_secs });
        });
    }

    fn analyzed(&mut self, id: u64, code: Option<i32>, error: Option<String>, quota_secs: Option<u64>) {
        let Some(inst) = self.instances.remove(&id) else { return };
        let info = inst.info;
        let pair = (info.agent_id.clone(), info.project_id.clone());
        let error = error.map(|e| self.redactor.redact(&e));
        self.last_exit.insert(info.agent_id.clone(), (code, info.log_path.clone()));
        // The run is over: its log may be pruned by later retention passes.
        self.live_logs.lock().unwrap_or_else(|p| p.into_inner()).remove(&info.log_path);
        if code == Some(0) || inst.stopping {
            self.counters.exits_ok += 1;
            if code == Some(0) {
                if self.pair_holds.get(&pair).is_some_and(|h| !h.dir) {
                    self.pair_holds.remove(&pair);
                }
                self.cooldowns.record_success(&info.agent_id);
                self.agent_errors.remove(&info.agent_id);
            }
        } else {
            self.counters.exits_failed += 1;
            let msg = error.clone().unwrap_or_default();
            tracing::warn!(agent = %info.agent_id, project = %info.project_id, code = ?code, "agent failed: {msg}");
            self.push_error(Some(&info.agent_id), Some(&info.project_id), msg.clone());
            self.agent_errors.insert(info.agent_id.clone(), msg);
            let ep = &self.settings.error_protection;
            let outage = !self.server.reachable || self.last_outage_at.is_some_and(|t| t >= info.started_at);
            if outage && quota_secs.is_none() {
                tracing::info!(agent = %info.agent_id, "run failed while the PM server was unreachable; retrying without a backoff once it is back");
            } else if ep.enabled {
                let c = self.cooldowns.record_failure(&info.agent_id, quota_secs, ep.default_cooldown_secs, ep.max_cooldown_secs, now_ms());
                tracing::info!(agent = %info.agent_id, "cooling down for {} s ({})", (c.until - now_ms()) / 1000, c.reason);
                self.purge_queue(&info.agent_id);
                if quota_secs.is_none() {
                    self.recent_backoffs.push((info.agent_id.clone(), now_ms()));
                }
                let _ = self.ev.send(Event::CooldownStarted { agent_id: info.agent_id.clone(), until: c.until, reason: c.reason.clone() });
            }
        }
        let _ = self.ev.send(Event::InstanceExited { instance: info.clone(), exit_code: code, error: error.clone() });
        let remaining = self.instances.values().filter(|i| i.info.agent_id == pair.0 && i.info.project_id == pair.1).count() as u64;
        self.pending_reports.push_back(pair.clone());
        self.persist();
        // Report in order: register log → error → exit. The pair is asked again once the exit is reported.
        if let Some(client) = self.client.clone() {
            let tx = self.tx.clone();
            let known = self.exit_tool;
            let report_error = if code != Some(0) && !inst.stopping { error } else { None };
            let upload = self.upload_target();
            tokio::spawn(async move {
                if let Some(task) = &info.task_id {
                    // Register the local path first: it is what the server keeps if an upload fails.
                    let exec_id = register_log(&client, &info.agent_id, task, &info.log_path).await;
                    if let (Some(up), Some(exec_id)) = (upload, exec_id) {
                        // Uploads run on their own and never hold up the supervisor or the exit report.
                        tokio::spawn(upload_log(up, exec_id, info.clone()));
                    }
                }
                if let Some(msg) = report_error {
                    if let Err(e) = client.report_agent_error(&info.agent_id, &info.project_id, &msg).await {
                        tracing::debug!("report_agent_error: {e}");
                    }
                }
                let (result, tool) = report_exit(&client, known, &info.agent_id, &info.project_id, remaining).await;
                let _ = tx.send(Msg::Reported { pair, result, exit_tool: tool });
            });
        }
        self.dispatch();
    }

    fn reported(&mut self, pair: Pair, result: Result<(), PmError>, exit_tool: Option<ExitTool>) {
        if exit_tool.is_some() && self.exit_tool != exit_tool {
            self.exit_tool = exit_tool;
            self.server.exit_report_tool = exit_tool.map(|t| t.name().to_string());
        }
        match result {
            Ok(()) => {
                if let Some(pos) = self.pending_reports.iter().position(|p| *p == pair) {
                    self.pending_reports.remove(pos);
                }
                self.persist();
                // React at once: the pair may have more work.
                if self.running && self.blocked(&pair).is_none() {
                    let mut q = self.queue();
                    if !q.contains(&pair) {
                        q.push_front(pair);
                    }
                }
                self.dispatch();
            }
            Err(e) => {
                // Kept in pending_reports (persisted); sent again once the server answers.
                if e.is_server_fault() {
                    self.server_failed(&e);
                    // The run most likely failed because the server went away under it (we only learn of the
                    // outage now): that is no reason to hold the agent back once the server is back.
                    if self.cooldowns.agents.get(&pair.0).is_some_and(|c| c.reason == "error") {
                        self.cooldowns.record_success(&pair.0);
                        self.persist();
                    }
                } else {
                    self.push_error(Some(&pair.0), Some(&pair.1), e.to_string());
                    if let Some(pos) = self.pending_reports.iter().position(|p| *p == pair) {
                        self.pending_reports.remove(pos);
                    }
                }
            }
        }
    }

    fn flush_pending_reports(&mut self) {
        if self.pending_reports.is_empty() || self.reporting > 0 {
            return;
        }
        // Only pairs with nothing running and no report already in flight.
        let pending: Vec<Pair> = self.pending_reports.iter().filter(|p| !self.pair_running(p)).cloned().collect();
        let Some(client) = self.client.clone() else { return };
        self.reporting += 1;
        let tx = self.tx.clone();
        let known = self.exit_tool;
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut tool = known;
            for (a, p) in pending {
                let (r, t) = report_exit(&client, tool, &a, &p, 0).await;
                if t.is_some() {
                    tool = t;
                }
                match r {
                    Ok(()) => done.push((a, p)),
                    Err(e) if e.is_unreachable() => break,
                    Err(_) => done.push((a, p)), // refused: nothing more we can do
                }
            }
            let _ = tx.send(Msg::PendingFlushed { done, exit_tool: tool });
        });
    }

    // ----- server health -----

    fn server_failed(&mut self, e: &PmError) {
        let msg = self.redactor.redact(&e.to_string());
        self.unreachable_streak = self.unreachable_streak.saturating_add(1);
        let now = now_ms();
        self.last_outage_at = Some(now);
        // Failures just before we noticed the outage were most likely caused by it: no backoff for those.
        let recent: Vec<String> = self.recent_backoffs.drain(..).filter(|(_, at)| now - at < 30_000).map(|(a, _)| a).collect();
        for agent in recent {
            if self.cooldowns.agents.get(&agent).is_some_and(|c| c.reason == "error") {
                self.cooldowns.record_success(&agent);
            }
        }
        if self.server.reachable || self.server.unreachable_since.is_none() {
            let since = now_ms();
            self.server.unreachable_since = Some(since);
            tracing::warn!("PM server unreachable: {msg}");
            let _ = self.ev.send(Event::ServerUnreachable { since, error: msg.clone() });
        }
        self.server.reachable = false;
        self.server.last_error = Some(msg);
    }

    fn server_ok(&mut self) {
        if !self.server.reachable {
            if let Some(since) = self.server.unreachable_since.take() {
                let after = now_ms() - since;
                tracing::info!("PM server reachable again after {after} ms");
                let _ = self.ev.send(Event::ServerReachable { after_ms: after });
            }
        }
        self.unreachable_streak = 0;
        self.server.reachable = true;
        self.server.last_error = None;
    }

    // ----- stop / orphans -----

    /// Stop every child (group TERM, grace, KILL) and wait (bounded) until their exits are handled and reported.
    async fn stop_all(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        let ids: Vec<u64> = self.instances.keys().copied().collect();
        for id in &ids {
            self.stop_instance(*id);
        }
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(5);
        // Drain messages until every instance is gone and its exit report is done (or the deadline passes).
        while (!self.instances.is_empty() || !self.asking.is_empty() || self.askers > 0 || self.reports_in_flight()) && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => {
                    // Late start answers are not acted on while stopping.
                    self.message(m);
                }
                _ => break,
            }
        }
        self.persist();
        self.dirty = true;
    }

    fn reports_in_flight(&self) -> bool {
        self.pending_reports.iter().any(|p| !self.pair_running(p)) && self.server.reachable && self.client.is_some()
    }

    /// Children recorded by a previous run that crashed: stop them (we cannot re-attach to their output,
    /// so adopting them would leave runs unlogged), and report their exits when the server answers.
    async fn stop_orphans(&mut self, orphans: Vec<ChildRecord>) {
        let mut stopped = Vec::new();
        for rec in orphans {
            if crate::state::is_alive(&rec) {
                tracing::warn!(pid = rec.pid, agent = %rec.agent_id, project = %rec.project_id, "stopping an agent left running by a previous coordinator");
                launch::stop_group(rec.pgid, STOP_GRACE).await;
                self.push_error(Some(&rec.agent_id), Some(&rec.project_id), format!("stopped orphaned agent pid {} from a previous run", rec.pid));
            }
            let pair = (rec.agent_id.clone(), rec.project_id.clone());
            if !self.pending_reports.contains(&pair) {
                self.pending_reports.push_back(pair);
            }
            stopped.push(rec.pid);
        }
        if !stopped.is_empty() {
            self.persist();
        }
    }

    fn persist(&mut self) {
        let children = self
            .instances
            .values()
            .map(|i| ChildRecord {
                pid: i.info.pid,
                pgid: i.info.pid,
                agent_id: i.info.agent_id.clone(),
                project_id: i.info.project_id.clone(),
                task_id: i.info.task_id.clone(),
                started_at: i.info.started_at,
                log_path: i.info.log_path.clone(),
                proc_start: crate::state::process_start_time(i.info.pid),
            })
            .collect();
        let st = PersistedState { children, cooldowns: self.cooldowns.clone(), pending_exit_reports: self.pending_reports.iter().cloned().collect() };
        let _ = self.state_tx.send(st);
    }

    // ----- snapshot -----

    fn push_error(&mut self, agent: Option<&str>, project: Option<&str>, message: String) {
        let message = self.redactor.redact(&message);
        self.errors.push_back(ErrorEntry { at: now_ms(), agent_id: agent.map(str::to_string), project_id: project.map(str::to_string), message });
        while self.errors.len() > MAX_ERRORS {
            self.errors.pop_front();
        }
        self.dirty = true;
    }

    fn maybe_schedule_publish(&mut self) {
        if self.dirty && self.publish_at.is_none() {
            self.publish_at = Some(Instant::now() + PUBLISH_EVERY);
        }
    }

    fn publish(&mut self) {
        self.publish_at = None;
        self.dirty = false;
        let now = now_ms();
        let mut instances: Vec<InstanceInfo> = self.instances.values().map(|i| i.info.clone()).collect();
        instances.sort_by_key(|i| i.id);
        let agents = self
            .settings
            .agents
            .iter()
            .map(|(id, a)| {
                let has_passkey = self.passkeys.get(id).cloned().flatten().is_some();
                let running = instances.iter().filter(|i| &i.agent_id == id).count();
                let state = if !a.enabled {
                    AgentState::Disabled
                } else if running > 0 {
                    AgentState::Running { instances: running }
                } else if let Some(c) = self.cooldowns.active(id, now) {
                    AgentState::Cooldown { until: c.until, reason: c.reason.clone() }
                } else if self.secrets_loaded && !has_passkey {
                    AgentState::NoPasskey
                } else if let Some(e) = self.agent_errors.get(id) {
                    AgentState::Error { message: e.clone() }
                } else {
                    AgentState::Idle
                };
                let (last_exit_code, last_log_path) = match self.last_exit.get(id) {
                    Some((c, p)) => (*c, Some(p.clone())),
                    None => (None, None),
                };
                AgentStatus { agent_id: id.clone(), enabled: a.enabled, has_passkey, state, last_exit_code, last_log_path }
            })
            .collect();
        let snap = Snapshot {
            running: self.running,
            server: self.server.clone(),
            instances,
            agents,
            last_errors: self.errors.iter().cloned().collect(),
            secret_store_error: self.secret_error.clone(),
            counters: self.counters.clone(),
            updated_at: now,
        };
        self.snap.send_replace(snap);
    }
}

/// One asker: holds a slot and asks queued pairs in turn. The first answer that needs the loop's decision
/// (start, stop, restart, an error) ends it; `hold` answers are only counted, and it moves on.
async fn asker(client: Arc<PmClient>, queue: Arc<std::sync::Mutex<VecDeque<Pair>>>, tx: mpsc::UnboundedSender<Msg>) {
    let mut holds = 0;
    loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some(pair) = next else {
            let _ = tx.send(Msg::AskerIdle { holds });
            return;
        };
        let result = client.get_agent_action(&pair.0, &pair.1).await;
        if matches!(&result, Ok(a) if !matches!(a.action.as_str(), "start" | "stop" | "restart")) {
            holds += 1;
            continue;
        }
        let _ = tx.send(Msg::Asked { pair, result, holds });
        return;
    }
}

/// Report an exit with whichever tool the server has: current servers know `report_process_exit`,
/// 0.1.x-era servers only `invalidate_session`. The first call tells which; the answer is remembered.
async fn report_exit(client: &PmClient, known: Option<ExitTool>, agent: &str, project: &str, remaining: u64) -> (Result<(), PmError>, Option<ExitTool>) {
    match known {
        Some(ExitTool::InvalidateSession) => (client.invalidate_session(agent, project).await, known),
        Some(ExitTool::ReportProcessExit) => (client.report_process_exit(agent, project, remaining).await, known),
        None => match client.report_process_exit(agent, project, remaining).await {
            Err(e) if e.is_unknown_tool() => (client.invalidate_session(agent, project).await, Some(ExitTool::InvalidateSession)),
            Ok(()) => (Ok(()), Some(ExitTool::ReportProcessExit)),
            Err(e) => (Err(e), None),
        },
    }
}

/// Fetch the agent's profile and write its context dir; failures fall back to the plain working dir.
async fn prepare_context(client: Option<&PmClient>, req: &LaunchRequest) -> Option<PathBuf> {
    let client = client?;
    let profile = match client.get_subordinate_profile(&req.agent_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(agent = %req.agent_id, "get_subordinate_profile failed ({e}); starting without agent context");
            crate::pm::AgentProfile::default()
        }
    };
    let (wd, agent, kind) = (req.working_dir.clone(), req.agent_id.clone(), req.kind.clone());
    match tokio::task::spawn_blocking(move || crate::context::prepare(&wd, &agent, &kind, &profile)).await {
        Ok(Ok(dir)) => Some(dir),
        Ok(Err(e)) => {
            tracing::warn!(agent = %req.agent_id, "agent context not written ({e}); using the working directory");
            None
        }
        Err(_) => None,
    }
}

/// Exponential backoff with ±20 % jitter, from 0.5 s up to the polling interval: a down server is not
/// hammered, and is never checked less often than a healthy one.
fn backoff_delay(streak: u32, interval: Duration) -> Duration {
    let base = 0.5 * 2f64.powi(streak.saturating_sub(1).min(10) as i32);
    let cap = interval.as_secs_f64().max(1.0);
    let d = base.min(cap);
    let jitter = 1.0 + (rand::random::<f64>() - 0.5) * 0.4;
    Duration::from_secs_f64(d * jitter)
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Writes the latest persisted state, coalescing bursts; file I/O stays off the supervisor loop.
async fn state_writer(path: PathBuf, mut rx: watch::Receiver<PersistedState>) {
    while rx.changed().await.is_ok() {
        let st = rx.borrow_and_update().clone();
        let p = path.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = st.save(&p) {
                tracing::warn!("cannot save state to {}: {e}", p.display());
            }
        })
        .await;
    }
}

/// Where and how to upload logs (protocol doc §4.2), when enabled.
#[derive(Clone)]
struct UploadTarget {
    base_url: String,
    token: String,
    max_bytes: u64,
    retries: u32,
    delay: Duration,
}

/// `http://host:8080/mcp` → `http://host:8080`.
fn rest_base(address: &str) -> Option<String> {
    if !(address.starts_with("http://") || address.starts_with("https://")) {
        return None;
    }
    let trimmed = address.trim_end_matches('/');
    Some(trimmed.strip_suffix("/mcp").unwrap_or(trimmed).to_string())
}

/// `register_execution_log_file`, returning the server's execution log id (needed for an upload).
async fn register_log(client: &PmClient, agent: &str, task: &str, path: &Path) -> Option<String> {
    let mut args = serde_json::Map::new();
    args.insert("agent_id".into(), agent.into());
    args.insert("task_id".into(), task.into());
    args.insert("log_file_path".into(), path.display().to_string().into());
    match client.call("register_execution_log_file", args).await {
        Ok(v) if v.get("success").and_then(|s| s.as_bool()).unwrap_or(false) => {
            v.get("execution_log_id").and_then(|x| x.as_str()).map(str::to_string)
        }
        Ok(v) => {
            tracing::debug!(agent, task, "log not registered: {}", v.get("error").and_then(|e| e.as_str()).unwrap_or("no execution log"));
            None
        }
        Err(e) => {
            tracing::debug!("register_execution_log_file: {e}");
            None
        }
    }
}

/// Upload with retries and exponential backoff; on final failure the registered local path stays.
async fn upload_log(t: UploadTarget, execution_log_id: String, info: InstanceInfo) {
    let req = crate::pm::LogUploadRequest {
        execution_log_id,
        agent_id: info.agent_id.clone(),
        task_id: info.task_id.clone().unwrap_or_default(),
        project_id: info.project_id.clone(),
        file: info.log_path.clone(),
    };
    let mut delay = t.delay;
    for attempt in 1..=t.retries.max(1) {
        match crate::pm::rest::upload_log(&t.base_url, &t.token, &req, t.max_bytes, Duration::from_secs(60)).await {
            Ok(path) => {
                tracing::info!(agent = %info.agent_id, "log uploaded to the server ({path})");
                return;
            }
            Err(e) => {
                tracing::warn!(agent = %info.agent_id, attempt, "log upload failed: {e}");
                if attempt < t.retries {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }
    tracing::warn!(agent = %info.agent_id, "log upload gave up; the server keeps the local path {}", info.log_path.display());
}

/// The server's dynamic configuration is fetched again every this many polling intervals (at least 5 s).
const REMOTE_CONFIG_EVERY_TICKS: u32 = 5;

impl Supervisor {
    fn upload_target(&self) -> Option<UploadTarget> {
        let u = &self.settings.log_upload;
        if !u.enabled {
            return None;
        }
        let base = u.server_url.clone().or_else(|| rest_base(&self.settings.server_address()))?;
        Some(UploadTarget {
            base_url: base.trim_end_matches('/').to_string(),
            token: self.token.clone()?,
            max_bytes: u.max_file_size_mb * 1024 * 1024,
            retries: u.retry_count,
            delay: Duration::from_secs_f64(u.retry_delay_secs.max(0.0)),
        })
    }

    /// HTTP servers publish a coordinator configuration (protocol doc §4.3); fetch it now and then.
    fn maybe_fetch_remote_config(&mut self) {
        let Some(base) = rest_base(&self.settings.server_address()) else { return };
        let Some(token) = self.token.clone() else { return };
        let every = (Duration::from_secs(self.settings.polling_interval_secs) * REMOTE_CONFIG_EVERY_TICKS).max(Duration::from_secs(5));
        if self.remote_config_at.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.remote_config_at = Some(Instant::now());
        let root = self.settings.root_agent_id.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let r = crate::pm::rest::fetch_remote_config(&base, &token, root.as_deref(), CALL_TIMEOUT).await;
            let _ = tx.send(Msg::RemoteConfig(r));
        });
    }

    /// Apply the server's configuration live. Rule: a field the user pinned (settings `pinned`; a YAML config
    /// or `import-yaml` pins every field the YAML sets) and any agent or provider already configured locally
    /// win; the server fills in everything else. The server's agents are added only when the local settings
    /// have no agents at all (a server-driven setup): an agent the user removed locally is never re-added.
    /// Passkeys from the server go straight into the secret store, never into settings, and only for agents
    /// that have none stored: a locally stored passkey wins (a differing one is logged once, without values).
    fn remote_config(&mut self, r: Result<crate::pm::RemoteConfig, PmError>) {
        let rc = match r {
            Ok(rc) => rc,
            Err(e) => {
                // Older servers have no such endpoint: that is not an error worth showing.
                tracing::debug!("dynamic configuration not available: {e}");
                return;
            }
        };
        let pinned = |f: &str| self.settings.pinned.iter().any(|p| p == f);
        if let Some(p) = rc.polling_interval.filter(|p| (1..=3600).contains(p)) {
            if !pinned("polling_interval_secs") {
                self.settings.polling_interval_secs = p;
            }
        }
        if let Some(m) = rc.max_concurrent.filter(|m| (1..=256).contains(m)) {
            if !pinned("max_concurrent") {
                self.settings.max_concurrent = m;
            }
        }
        if rc.root_agent_id.is_some() && self.settings.root_agent_id.is_none() && !pinned("root_agent_id") {
            self.settings.root_agent_id = rc.root_agent_id.clone();
        }
        if !pinned("providers") {
            for (name, cmd, args) in &rc.ai_providers {
                if crate::paths::validate_id(name).is_ok() && !cmd.trim().is_empty() && !self.settings.providers.contains_key(name) {
                    self.settings.providers.insert(name.clone(), crate::config::ProviderSettings { command: cmd.clone(), args: args.clone(), model: None, kind: None });
                }
            }
        }
        let conflicts = self.passkey_conflicts.clone();
        let report_conflict = move |id: &str| {
            if conflicts.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string()) {
                tracing::warn!(agent = %id, "the server sends a passkey that differs from the one stored locally; the local one is kept");
            }
        };
        let mut to_store = Vec::new();
        let add_agents = !pinned("agents") && self.settings.agents.is_empty();
        for (id, passkey) in &rc.agents {
            if crate::paths::validate_id(id).is_err() {
                continue;
            }
            if add_agents {
                self.settings.agents.entry(id.clone()).or_default();
            }
            if !self.settings.agents.contains_key(id) {
                continue;
            }
            if let Some(pk) = passkey.as_ref().filter(|p| !p.is_empty()) {
                self.redactor.add(pk);
                crate::redact::global().add(pk);
                match self.passkeys.get(id).cloned().flatten() {
                    Some(local) if local == *pk => {}
                    Some(_) => report_conflict(id),
                    None => to_store.push((id.clone(), pk.clone())),
                }
            }
        }
        if let Some(bp) = rc.agent_base_prompt.filter(|p| !p.trim().is_empty()) {
            self.base_prompt = Some(bp);
        }
        if !to_store.is_empty() {
            let store = self.store.clone();
            let tx = self.tx.clone();
            tokio::task::spawn_blocking(move || {
                for (id, pk) in to_store {
                    // Only when the store has none: a passkey stored locally (perhaps since the last read) wins.
                    let account = secrets::agent_account(&id);
                    match store.get(&account) {
                        Ok(Some(local)) if local == pk => {}
                        Ok(Some(_)) => report_conflict(&id),
                        Ok(None) => {
                            if let Err(e) = store.set(&account, &pk) {
                                tracing::warn!(agent = %id, "cannot store the passkey sent by the server: {e}");
                            }
                        }
                        Err(e) => tracing::warn!(agent = %id, "cannot read the secret store; the server's passkey is not stored: {e}"),
                    }
                }
                let _ = tx.send(Msg::RemotePasskeysStored);
            });
        }
        self.dirty = true;
    }
}
