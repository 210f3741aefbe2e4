//! The engine handle used by the CLI and the app: commands in, snapshots and events out.
//!
//! One supervisor task owns all mutable state; this handle only talks to it through channels.

use crate::api::{Event, Snapshot};
use crate::config::Settings;
use crate::supervisor::protocol::Command;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

// The handle depends on the supervisor's protocol, never the other way round; the public path stays.
pub use crate::supervisor::protocol::EngineConfig;

/// Cheap to clone; every clone talks to the same supervisor.
#[derive(Clone)]
pub struct Engine {
    cmd: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Snapshot>,
    events: broadcast::Sender<Event>,
}

impl Engine {
    /// Spawn the supervisor on the current tokio runtime.
    pub fn launch(cfg: EngineConfig) -> Engine {
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (snap_tx, snap_rx) = watch::channel(Snapshot::default());
        let (ev_tx, _) = broadcast::channel(1024);
        crate::supervisor::spawn(cfg, cmd_rx, snap_tx, ev_tx.clone());
        Engine {
            cmd: cmd_tx,
            snapshot: snap_rx,
            events: ev_tx,
        }
    }

    /// Start coordinating (polling and spawning).
    pub async fn start(&self) {
        let _ = self.cmd.send(Command::Start).await;
    }

    /// Stop coordinating: stop every child cleanly (group TERM, grace, KILL), report their exits.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Apply new settings live (already validated by the caller); running instances keep running.
    pub async fn reload(&self, settings: Settings) {
        let _ = self.cmd.send(Command::Reload(Box::new(settings))).await;
    }

    /// Stop one instance by its engine id. Returns whether it existed.
    pub async fn stop_instance(&self, id: u64) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::StopInstance(id, tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Passkeys or the token changed in the secret store: re-read them once.
    /// Pause an agent: it is not asked or started until `until` (None = until resumed). With `stop_running`
    /// its running instances are stopped too ("Stop and pause": a stopped run is otherwise started again at
    /// once when the server still has work for it). Persisted across restarts.
    pub async fn pause_agent(&self, agent_id: &str, until: Option<crate::api::UnixMs>, stop_running: bool) {
        let _ = self
            .cmd
            .send(Command::PauseAgent {
                agent_id: agent_id.to_string(),
                until,
                stop_running,
            })
            .await;
    }

    pub async fn resume_agent(&self, agent_id: &str) {
        let _ = self.cmd.send(Command::ResumeAgent(agent_id.to_string())).await;
    }

    /// "Retry now": end the agent's cooldowns (a quota that reset early, a cause the user fixed).
    pub async fn retry_agent(&self, agent_id: &str) {
        let _ = self.cmd.send(Command::RetryAgent(agent_id.to_string())).await;
    }

    pub async fn secrets_changed(&self) {
        let _ = self.cmd.send(Command::SecretsChanged).await;
    }

    /// The latest picture.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// Watch the picture change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Stop children, report exits, end the supervisor. Bounded in time.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
