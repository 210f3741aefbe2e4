//! What the outside sees: the persisted state file, coalesced snapshots, the recent errors.

use super::Supervisor;
use crate::api::*;
use crate::state::{ChildRecord, PersistedState};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How many recent errors the snapshot keeps.
const MAX_ERRORS: usize = 50;
/// Snapshots are coalesced to at most one per this interval.
const PUBLISH_EVERY: Duration = Duration::from_millis(50);

pub(super) struct Status {
    pub(super) snap: watch::Sender<Snapshot>,
    pub(super) errors: VecDeque<ErrorEntry>,
    /// Last spawn or run error per agent, shown until a clean run.
    pub(super) agent_errors: HashMap<String, String>,
    pub(super) counters: Counters,
    /// Agent-wide problems only the user can fix (set by a spawn failure, cleared by a spawn).
    pub(super) local_problems: HashMap<String, String>,
    /// The attention list of the last snapshot (events are sent for what changes).
    pub(super) attention: Vec<Attention>,
    /// Something changed since the last snapshot.
    pub(super) dirty: bool,
    pub(super) publish_at: Option<Instant>,
}

impl Status {
    pub(super) fn new(snap: watch::Sender<Snapshot>) -> Status {
        Status {
            snap,
            errors: VecDeque::new(),
            agent_errors: HashMap::new(),
            counters: Counters::default(),
            local_problems: HashMap::new(),
            attention: Vec::new(),
            dirty: true,
            publish_at: None,
        }
    }
}

impl Supervisor {
    pub(super) fn persist(&mut self) {
        let children = self
            .runs
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
        let now = now_ms();
        self.holds.paused.retain(|_, until| until.is_none_or(|t| t > now));
        let st = PersistedState {
            children,
            cooldowns: self.holds.cooldowns.clone(),
            pending_exit_reports: self
                .exits
                .pending
                .iter()
                .cloned()
                .map(<(String, String)>::from)
                .collect(),
            paused: self.holds.paused.clone(),
        };
        let _ = self.state_tx.send(st);
    }

    // ----- snapshot -----

    pub(super) fn push_error(&mut self, agent: Option<&str>, project: Option<&str>, message: String) {
        let message = self.redactor.redact(&message);
        self.status.errors.push_back(ErrorEntry {
            at: now_ms(),
            agent_id: agent.map(str::to_string),
            project_id: project.map(str::to_string),
            message,
        });
        while self.status.errors.len() > MAX_ERRORS {
            self.status.errors.pop_front();
        }
        self.status.dirty = true;
    }

    pub(super) fn maybe_schedule_publish(&mut self) {
        if self.status.dirty && self.status.publish_at.is_none() {
            self.status.publish_at = Some(Instant::now() + PUBLISH_EVERY);
        }
    }

    pub(super) fn publish(&mut self) {
        self.status.publish_at = None;
        self.status.dirty = false;
        let now = now_ms();
        let mut instances: Vec<InstanceInfo> = self.runs.instances.values().map(|i| i.info.clone()).collect();
        for i in &mut instances {
            i.project_name = self
                .cycle
                .projects
                .get(&i.project_id)
                .map(|p| p.project_name.clone())
                .filter(|n| !n.is_empty());
        }
        instances.sort_by_key(|i| i.id);
        let agents = self
            .settings
            .agents
            .iter()
            .map(|(id, a)| {
                let has_passkey = self.secrets.passkeys.get(id).cloned().flatten().is_some();
                let running = instances.iter().filter(|i| &i.agent_id == id).count();
                // A run goes on after its agent is disabled (it is not killed mid-task): shown as running, never hidden.
                let state = if running > 0 {
                    AgentState::Running { instances: running }
                } else if !a.enabled {
                    AgentState::Disabled
                } else if let Some(until) = self.holds.paused_now(id, now) {
                    AgentState::Paused { until }
                } else if let Some((c, pairs)) = self.holds.cooldowns.active_for_agent(id, now) {
                    let reason = match (&c.cause, pairs) {
                        (Some(cause), _) => format!("{} ({cause})", c.reason),
                        (None, 0) => c.reason.to_string(),
                        (None, n) => format!("{} in {n} project{}", c.reason, if n == 1 { "" } else { "s" }),
                    };
                    AgentState::Cooldown { until: c.until, reason }
                } else if self.secrets.loaded && !has_passkey {
                    AgentState::NoPasskey
                } else if let Some(e) = self.status.agent_errors.get(id) {
                    AgentState::Error { message: e.clone() }
                } else if self.running
                    && (!self.health.server.reachable || self.health.server.token_rejected)
                    && self.health.server.last_error.is_some()
                {
                    AgentState::WaitingForServer
                } else {
                    AgentState::Idle
                };
                let (last_exit_code, last_log_path) = match self.exits.last_exit.get(id) {
                    Some((c, p)) => (*c, Some(p.clone())),
                    None => (None, None),
                };
                AgentStatus {
                    agent_id: id.clone(),
                    enabled: a.enabled,
                    has_passkey,
                    state,
                    last_exit_code,
                    last_log_path,
                }
            })
            .collect();
        let mut snap = Snapshot {
            attention: Vec::new(),
            running: self.running,
            server: self.health.server.clone(),
            instances,
            agents,
            last_errors: self.status.errors.iter().cloned().collect(),
            secret_store_error: self.secrets.error.clone(),
            counters: self.status.counters.clone(),
            updated_at: now,
        };
        snap.attention = crate::attention::list(&snap, &self.attention_facts());
        let (started, ended) = crate::attention::diff(&self.status.attention, &snap.attention);
        for a in started {
            tracing::warn!("needs you: {} {}", a.reason, a.fix);
            let _ = self.ev.send(Event::AttentionStarted { item: a.clone() });
        }
        for a in ended {
            let _ = self.ev.send(Event::AttentionEnded { key: a.key.clone() });
        }
        self.status.attention = snap.attention.clone();
        self.status.snap.send_replace(snap);
    }

    fn attention_facts(&self) -> crate::attention::Facts {
        let mut failures: HashMap<String, u32> = HashMap::new();
        let cd = &self.holds.cooldowns;
        let errors = cd
            .agents
            .iter()
            .filter(|(_, c)| c.reason == crate::exit::CooldownReason::Error)
            .map(|(a, c)| (a, c.consecutive_failures));
        let pairs = cd
            .pairs
            .iter()
            .flat_map(|(a, m)| m.values().map(move |c| (a, c.consecutive_failures)));
        for (agent, n) in errors.chain(pairs) {
            let e = failures.entry(agent.clone()).or_default();
            *e = (*e).max(n);
        }
        crate::attention::Facts {
            failures_in_a_row: failures,
            local_problems: self.status.local_problems.clone(),
        }
    }
}

/// Writes the latest persisted state, coalescing bursts; file I/O stays off the supervisor loop.
pub(super) async fn state_writer(path: PathBuf, mut rx: watch::Receiver<PersistedState>) {
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
