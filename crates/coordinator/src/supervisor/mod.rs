//! The supervisor: one task that owns all mutable state and reconciles what the server wants with what runs.
//!
//! Everything slow (server calls, spawning, exit analysis) runs in small tasks that report back as
//! [`Msg`]s, so the loop itself never blocks and reacts to a child's exit at once.
//!
//! Leases: a `start` answer sets `spawn_started_at` on the server (a 120 s lease, cleared when the agent
//! authenticates). So we only ask about a pair when we could start it right now: a free slot is *reserved*
//! for every question in flight, and pairs in cooldown or without a passkey are not asked. A running pair
//! is asked too (holding a slot): the server answers `start` for its other purpose (a chat beside a task),
//! or after the agent logged out but before it exited; either is obeyed as a second instance.
//!
//! This file holds the actor (struct, spawn, select loop, dispatch); each concern's state and handlers live
//! in their own file.

mod credentials;
mod cycle;
mod eligibility;
mod exits;
mod health;
mod log_upload;
pub(crate) mod protocol;
mod publish;
mod remote_config;
mod shutdown;
mod spawning;

pub(crate) use protocol::Command;
use protocol::Msg;
pub use protocol::{EngineConfig, PairKey};

use crate::api::*;
use crate::config::Settings;
use crate::pm::PmClient;
use crate::redact::Redactor;
use crate::secrets::SharedStore;
use crate::state::PersistedState;
use credentials::Credentials;
use cycle::CycleState;
use eligibility::Holds;
use exits::ExitState;
use health::Health;
use publish::Status;
use remote_config::RemoteState;
use spawning::Runs;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// Per-call timeout towards the server.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn spawn(
    cfg: EngineConfig,
    cmd: mpsc::Receiver<Command>,
    snap: watch::Sender<Snapshot>,
    ev: broadcast::Sender<Event>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let persisted = cfg.state_path.as_deref().map(PersistedState::load).unwrap_or_default();
    let (state_tx, state_rx) = watch::channel(persisted.clone());
    if let Some(path) = cfg.state_path.clone() {
        tokio::spawn(publish::state_writer(path, state_rx));
    }
    let server = ServerHealth {
        address: cfg.settings.server_address(),
        ..Default::default()
    };
    // The run history: opening it closes runs a crash left "running" as "interrupted".
    let (run_store, run_store_error) = match cfg.runs_db.as_deref().map(crate::runs::RunStore::open) {
        None => (None, None),
        Some(Ok(s)) => {
            s.prune(cfg.settings.log_retention.max_files_per_agent.max(1000));
            (Some(s), None)
        }
        Some(Err(e)) => {
            tracing::warn!("{e}; runs are not recorded");
            (None, Some(format!("{e}; runs are not recorded")))
        }
    };
    let mut sup = Supervisor {
        running: false,
        autostart: cfg.autostart,
        settings: cfg.settings,
        store: cfg.secrets,
        redactor: cfg.redactor,
        client: None,
        tx,
        ev,
        state_tx,
        secrets: Credentials::default(),
        cycle: CycleState::new(),
        runs: Runs::default(),
        holds: Holds {
            cooldowns: persisted.cooldowns.clone(),
            pairs: HashMap::new(),
            paused: persisted.paused.clone(),
        },
        exits: ExitState {
            pending: persisted
                .pending_exit_reports
                .iter()
                .cloned()
                .map(PairKey::from)
                .collect(),
            ..Default::default()
        },
        health: Health {
            server,
            ..Default::default()
        },
        remote: RemoteState::default(),
        status: Status::new(snap),
        run_store,
    };
    if let Some(e) = run_store_error {
        sup.push_error(None, None, e);
    }
    let orphans = persisted.children;
    tokio::spawn(async move {
        sup.stop_orphans(orphans).await;
        sup.load_secrets();
        sup.run(cmd, rx).await;
    });
}

/// The actor: every field is owned by the loop; the concern files below each own one group.
struct Supervisor {
    running: bool,
    autostart: bool,
    settings: Settings,
    store: SharedStore,
    redactor: Redactor,
    client: Option<Arc<PmClient>>,
    /// Where the small tasks send their results.
    tx: mpsc::UnboundedSender<Msg>,
    ev: broadcast::Sender<Event>,
    state_tx: watch::Sender<PersistedState>,
    /// Token and passkeys (credentials.rs).
    secrets: Credentials,
    /// The poll cycle: discovery, question queues, reserved slots (cycle.rs).
    cycle: CycleState,
    /// Running instances and their live logs (spawning.rs).
    runs: Runs,
    /// Agent cooldowns and pair holds: what blocks a pair (eligibility.rs).
    holds: Holds,
    /// Exit reports owed to the server (exits.rs).
    exits: ExitState,
    /// Server reachability (health.rs).
    health: Health,
    /// What the server configures: base prompt, dynamic configuration (remote_config.rs).
    remote: RemoteState,
    /// Snapshot inputs and publishing (publish.rs).
    status: Status,
    /// The run history (runs/): every run is recorded off the loop, by its writer thread.
    run_store: Option<crate::runs::RunStore>,
}

impl Supervisor {
    async fn run(&mut self, mut cmd: mpsc::Receiver<Command>, mut rx: mpsc::UnboundedReceiver<Msg>) {
        if self.autostart {
            self.set_running(true);
        }
        loop {
            self.maybe_schedule_publish();
            let cycle_due = self.running && self.secrets.loaded && !self.cycle.discovering;
            let next_cycle = self.cycle.next_at;
            let publish_at = self.status.publish_at;
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
                let found = self.runs.instances.contains_key(&id);
                if found {
                    self.stop_instance_for_user(id);
                }
                let _ = done.send(found);
            }
            Command::PauseAgent {
                agent_id,
                until,
                stop_running,
            } => self.pause_agent(agent_id, until, stop_running),
            Command::ResumeAgent(agent_id) => self.resume_agent(&agent_id),
            Command::RetryAgent(agent_id) => self.retry_agent(&agent_id),
            Command::SecretsChanged => self.load_secrets(),
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
        self.status.dirty = true;
    }

    fn set_running(&mut self, on: bool) {
        if self.running == on {
            return;
        }
        self.running = on;
        self.status.dirty = true;
        if on {
            self.cycle.next_at = Instant::now();
            let _ = self.ev.send(Event::Started);
            tracing::info!("coordinator started ({})", self.health.server.address);
        } else {
            self.queue().clear();
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
            self.health.server = ServerHealth {
                address: self.settings.server_address(),
                ..Default::default()
            };
            self.exits.tool = None;
            self.remote.base_prompt_at = None;
        }
        // Agents may have been enabled or disabled: re-read secrets (once) and rebuild the client.
        self.load_secrets();
        self.cycle.next_at = Instant::now();
        // The new settings lack what the server's dynamic configuration added: fetch and apply it again now.
        self.remote.fetched_at = None;
        tracing::info!("settings reloaded");
    }

    // ----- messages -----

    fn message(&mut self, m: Msg) {
        self.status.dirty = true;
        match m {
            Msg::SecretsLoaded { passkeys, token, error } => self.secrets_loaded_msg(passkeys, token, error),
            Msg::Discovered { cycle, result } => self.discovered(cycle, result),
            Msg::Asked { pair, result, holds } => self.asker_done(Some((pair, result)), holds),
            Msg::AskerIdle { holds } => self.asker_done(None, holds),
            Msg::QuestionDone { pair } => self.flush_deferred_reports(&pair),
            Msg::Spawned {
                pair,
                result,
                asked_at,
                pair_only,
            } => self.spawned(pair, result, asked_at, pair_only),
            Msg::Exited { id, code, summary } => self.exited(id, code, summary),
            Msg::Progress { id, progress } => self.progress(id, progress),
            Msg::Analyzed {
                id,
                code,
                error_line,
                quota_secs,
                server_error,
            } => self.analyzed(id, code, error_line, quota_secs, server_error),
            Msg::Reported {
                pair,
                result,
                exit_tool,
            } => self.reported(pair, result, exit_tool),
            Msg::RemoteConfig(r) => self.remote_config(r),
            Msg::RemotePasskeysStored => self.load_secrets(),
            Msg::PendingFlushed { done, exit_tool } => self.pending_flushed(done, exit_tool),
        }
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
