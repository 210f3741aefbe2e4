//! What the engine shows the outside world: snapshots (the latest picture) and events (discrete facts).
//!
//! These types are the contract with the CLI status view and the Tauri app; they never contain a secret.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Unix time in milliseconds (UTC). Used everywhere in the API so JS and JSON consumers need no parsing.
pub type UnixMs = i64;

pub fn now_ms() -> UnixMs {
    chrono::Utc::now().timestamp_millis()
}

/// One running agent process.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InstanceInfo {
    /// Engine-local id, unique for the life of the engine; used by `stop_instance`.
    pub id: u64,
    pub agent_id: String,
    pub project_id: String,
    pub pid: u32,
    pub started_at: UnixMs,
    pub provider: String,
    pub model: Option<String>,
    pub task_id: Option<String>,
    pub log_path: PathBuf,
    /// Milliseconds from the server's `start` answer to the child running.
    #[serde(default)]
    pub spawn_ms: f64,
    /// The project's name as the server lists it (filled in when the snapshot is published).
    #[serde(default)]
    pub project_name: Option<String>,
    /// Its row in the run history.
    #[serde(default)]
    pub run_id: Option<String>,
    /// Live, from its output so far (updated at most once a second): the last assistant text or
    /// "tool: <name>" (redacted, at most 160 bytes) and when it was seen.
    #[serde(default)]
    pub last_activity: Option<String>,
    #[serde(default)]
    pub last_activity_at: Option<UnixMs>,
    #[serde(default)]
    pub tokens: crate::runs::events::TokenUsage,
    /// The CLI's own cost once it stated one, else tokens × the price table (`cost_estimated`).
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub cost_estimated: bool,
}

/// Per-agent state, as a user wants to read it at a glance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentState {
    /// Enabled, passkey present, nothing running.
    Idle,
    /// At least one instance running.
    Running { instances: usize },
    /// Waiting out a quota or a failure backoff.
    Cooldown { until: UnixMs, reason: String },
    /// Enabled but no passkey in the secret store.
    NoPasskey,
    /// Disabled in settings.
    Disabled,
    /// Last run or spawn failed (message is redacted).
    Error { message: String },
    /// Paused by the user (until a time, or until resumed): not asked, not started.
    Paused { until: Option<UnixMs> },
    /// Nothing running and the server cannot be asked (unreachable, or it refuses our token): not "idle".
    WaitingForServer,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentStatus {
    pub agent_id: String,
    pub enabled: bool,
    pub has_passkey: bool,
    pub state: AgentState,
    pub last_exit_code: Option<i32>,
    pub last_log_path: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ServerHealth {
    pub address: String,
    pub reachable: bool,
    /// Set while the server is unreachable: since when.
    pub unreachable_since: Option<UnixMs>,
    pub last_error: Option<String>,
    /// Which exit-report tool the server has: "report_process_exit" or "invalidate_session".
    pub exit_report_tool: Option<String>,
    /// The server answers but refuses our coordinator token: not an outage (no backoff as for one, no
    /// "unreachable"); the user has to set the new token.
    #[serde(default)]
    pub token_rejected: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorEntry {
    pub at: UnixMs,
    pub agent_id: Option<String>,
    pub project_id: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Counters {
    pub spawns: u64,
    pub exits_ok: u64,
    pub exits_failed: u64,
    pub ticks: u64,
    /// `get_agent_action` questions answered with hold (or another no-op).
    pub asked: u64,
    /// `start` answers not obeyed (the pair became ineligible while asked, or we were stopped): each
    /// blocks the pair on the server for up to 120 s, so each is also shown in `last_errors` with its cause.
    #[serde(default)]
    pub leases_lost: u64,
    /// Duration of the last full reconcile cycle, milliseconds.
    pub last_cycle_ms: f64,
}

/// The latest picture of the engine (sent on a `watch` channel).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Snapshot {
    /// Coordinating (polling and spawning) or stopped.
    pub running: bool,
    pub server: ServerHealth,
    pub instances: Vec<InstanceInfo>,
    pub agents: Vec<AgentStatus>,
    /// Most recent errors, newest last, bounded.
    pub last_errors: Vec<ErrorEntry>,
    /// Secret store problem (locked, unavailable, access denied), if any.
    pub secret_store_error: Option<String>,
    pub counters: Counters,
    pub updated_at: UnixMs,
    /// What needs the user now (see `attention.rs`), most pressing first.
    #[serde(default)]
    pub attention: Vec<Attention>,
}

/// One thing the user has to act on: why, and what fixes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Attention {
    /// Stable while the state lasts (e.g. `server:token`, `agent:agt_a:passkey`).
    pub key: String,
    pub agent_id: Option<String>,
    pub reason: String,
    /// What fixes it, in words for the window and the tray (the CLI adds its command from `action`).
    pub fix: String,
    /// The one action that fixes it, for a button (window, tray) or a command (CLI).
    #[serde(default)]
    pub action: Option<AttentionAction>,
    /// When it ends by itself (a quota's reset): for a countdown.
    #[serde(default)]
    pub until: Option<UnixMs>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttentionAction {
    SetToken,
    CheckServer,
    UnlockSecrets,
    SetPasskey,
    FixProvider,
    ChooseLogFolder,
    OpenLastRun,
    /// End a cooldown now (the quota reset early, the cause is fixed).
    RetryNow,
}

impl AttentionAction {
    /// The CLI's way to do it, when it has one.
    pub fn cli_command(self, agent_id: Option<&str>) -> Option<String> {
        let agent = agent_id.unwrap_or("<agent>");
        Some(match self {
            AttentionAction::SetToken => "agentpm-coordinator token set".into(),
            AttentionAction::SetPasskey => format!("agentpm-coordinator passkey set {agent}"),
            AttentionAction::OpenLastRun => format!("agentpm-coordinator runs --agent {agent} --failed"),
            AttentionAction::CheckServer
            | AttentionAction::FixProvider
            | AttentionAction::UnlockSecrets
            | AttentionAction::ChooseLogFolder => "agentpm-coordinator doctor".into(),
            AttentionAction::RetryNow => return None,
        })
    }
}

impl Snapshot {
    /// One-line summary for a tray or a terminal, e.g. "3 running · 1 cooling down · server OK".
    pub fn summary(&self) -> String {
        let cooling = self
            .agents
            .iter()
            .filter(|a| matches!(a.state, AgentState::Cooldown { .. }))
            .count();
        let mut parts = vec![format!("{} running", self.instances.len())];
        if cooling > 0 {
            parts.push(format!("{cooling} cooling down"));
        }
        let no_key = self.agents.iter().filter(|a| a.state == AgentState::NoPasskey).count();
        if no_key > 0 {
            parts.push(format!("{no_key} without passkey"));
        }
        parts.push(if !self.running {
            "stopped".to_string()
        } else if self.server.token_rejected {
            "token rejected — set the new one".to_string()
        } else if self.server.reachable {
            "server OK".to_string()
        } else {
            "server unreachable".to_string()
        });
        parts.join(" · ")
    }
}

/// Discrete things that happened (sent on a `broadcast` channel; notifications are built from these).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    InstanceStarted {
        instance: InstanceInfo,
    },
    InstanceExited {
        instance: InstanceInfo,
        exit_code: Option<i32>,
        error: Option<String>,
    },
    SpawnFailed {
        agent_id: String,
        project_id: String,
        error: String,
    },
    CooldownStarted {
        agent_id: String,
        until: UnixMs,
        reason: String,
    },
    ServerUnreachable {
        since: UnixMs,
        error: String,
    },
    ServerReachable {
        after_ms: i64,
    },
    /// The server refused the coordinator token (once per change of state).
    TokenRejected {
        error: String,
    },
    /// Something started to need the user, or stopped needing them.
    AttentionStarted {
        item: Attention,
    },
    AttentionEnded {
        key: String,
    },
    PasskeyMissing {
        agent_id: String,
    },
    Started,
    Stopped,
}
