//! The messages between the engine handle and the supervisor, and between the supervisor and its small
//! tasks. The handle (engine.rs) depends on this file, never the other way round.

use super::cycle::Discovery;
use super::exits::ExitTool;
use super::spawning::Spawned;
use crate::config::Settings;
use crate::pm::{AgentAction, PmError};
use crate::redact::Redactor;
use crate::secrets::SharedStore;
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// One (agent, project) pair: what the server is asked about and what runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PairKey {
    pub agent_id: String,
    pub project_id: String,
}

impl PairKey {
    pub fn new(agent_id: impl Into<String>, project_id: impl Into<String>) -> PairKey {
        PairKey {
            agent_id: agent_id.into(),
            project_id: project_id.into(),
        }
    }
}

/// The state file keeps pairs as `[agent_id, project_id]`.
impl From<(String, String)> for PairKey {
    fn from((agent_id, project_id): (String, String)) -> PairKey {
        PairKey { agent_id, project_id }
    }
}

impl From<PairKey> for (String, String) {
    fn from(p: PairKey) -> (String, String) {
        (p.agent_id, p.project_id)
    }
}

/// What the engine needs to run.
pub struct EngineConfig {
    pub settings: Settings,
    /// Where settings live (lock key, messages). Reload does not re-read it: callers pass new settings.
    pub settings_path: PathBuf,
    /// Persisted state (running children, cooldowns). `None` = do not persist (unit tests).
    pub state_path: Option<PathBuf>,
    pub secrets: SharedStore,
    pub redactor: Redactor,
    /// Start coordinating at once (else wait for `start`).
    pub autostart: bool,
    /// The run history database (`runs.db`); `None` = runs are not recorded.
    pub runs_db: Option<PathBuf>,
}

/// What the handle asks of the supervisor.
pub(crate) enum Command {
    Start,
    Stop(oneshot::Sender<()>),
    Reload(Box<Settings>),
    StopInstance(u64, oneshot::Sender<bool>),
    /// Pause an agent (until a time, or until resumed); `stop_running` also stops its instances.
    PauseAgent {
        agent_id: String,
        until: Option<crate::api::UnixMs>,
        stop_running: bool,
    },
    ResumeAgent(String),
    /// "Retry now": lift the agent's cooldowns (quota or failures) at once.
    RetryAgent(String),
    SecretsChanged,
    Shutdown(oneshot::Sender<()>),
}

/// Results of the small tasks, sent back to the loop.
pub(super) enum Msg {
    SecretsLoaded {
        passkeys: HashMap<String, Option<String>>,
        token: Option<String>,
        error: Option<String>,
    },
    Discovered {
        cycle: u64,
        result: Result<Discovery, PmError>,
    },
    /// From an asker: `last` means the asker ended and its slot comes back to the loop.
    Asked {
        pair: PairKey,
        result: Result<AgentAction, PmError>,
        holds: u64,
    },
    AskerIdle {
        holds: u64,
    },
    /// A question about a pair whose exit report waits for it was answered with a no-op.
    QuestionDone {
        pair: PairKey,
    },
    // Boxed: the largest message by far, and every message in the channel is as big as the largest.
    /// `pair_only`: the failure concerns this (agent, project) pair only (its working dir, its task id), so
    /// only the pair is held; the agent keeps running in its other projects.
    Spawned {
        pair: PairKey,
        result: Result<Box<Spawned>, String>,
        asked_at: Instant,
        pair_only: bool,
    },
    /// `summary`: what the log relay parsed of the whole output (None when its copy was cut short).
    Exited {
        id: u64,
        code: Option<i32>,
        summary: Option<Box<crate::runs::Summarizer>>,
    },
    /// A running instance's live fields moved (at most once a second per instance, from its relay).
    Progress {
        id: u64,
        progress: crate::runs::RunProgress,
    },
    /// A run's log was read (`error_line`: the upstream error line, if any) and, for a failed run, the
    /// server probed (`server_error`: it is down now).
    Analyzed {
        id: u64,
        code: Option<i32>,
        error_line: Option<String>,
        quota_secs: Option<u64>,
        server_error: Option<PmError>,
    },
    Reported {
        pair: PairKey,
        result: Result<(), PmError>,
        exit_tool: Option<ExitTool>,
    },
    PendingFlushed {
        done: Vec<PairKey>,
        exit_tool: Option<ExitTool>,
    },
    RemoteConfig(Result<crate::pm::RemoteConfig, PmError>),
    RemotePasskeysStored,
}
