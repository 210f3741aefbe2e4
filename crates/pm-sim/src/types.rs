//! The simulator's public knobs and records: workload, scripted answers, faults, violations, counters.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct Workload {
    pub projects: usize,
    pub agents: usize,
    pub items_per_pair: usize,
    /// What `get_agent_action` names as provider (unless an agent has its own, `Simulator::set_agent_provider`).
    pub provider: String,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExitTool {
    /// Only `report_process_exit` (current server).
    Current,
    /// Only `invalidate_session` (0.1.x-era server).
    Legacy,
    Both,
}

/// An agent session's purpose; the server picks it at `authenticate` from the pending work (task first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    Task,
    Chat,
}

/// Told to fake agents in the `authenticate` reply (`sim_behavior`).
#[derive(Debug, Clone, PartialEq)]
pub enum AgentBehavior {
    Succeed,
    Fail {
        message: String,
    },
    Quota {
        message: String,
    },
    /// Claude's usage limit: a `rate_limit_event` (stream-json) and "Claude AI usage limit reached|<reset>"
    /// with the reset this many seconds after the run started.
    QuotaResetsIn {
        secs: u64,
    },
    Hang,
    SpawnGrandchild,
    WorkMs(u64),
    /// Prints its passkey (a misbehaving agent): the coordinator must mask it in the log.
    LeakPasskey,
    /// Works `work_ms`, logs out, then stays alive `linger_ms` before exiting 0 (a real CLI winding down).
    LogoutThenLinger {
        work_ms: u64,
        linger_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum PairScript {
    Default,
    /// Returned verbatim by `get_agent_action` for the pair (the real server never sends stop/restart).
    Action(Value),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay every reply by this much.
    pub delay_ms: u64,
    /// Read requests and never answer (the real server does this for lines it cannot parse).
    pub drop_replies: bool,
    /// Answer with bytes that are not JSON.
    pub garbage_replies: bool,
    /// Write half a reply and close the connection.
    pub close_mid_reply: bool,
    /// The next N uploads get HTTP 500.
    pub upload_failures: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ViolationKind {
    /// An agent of a pair authenticated with no `start` lease outstanding while another process of the
    /// pair was alive: the coordinator spawned without being asked to.
    DoubleSpawn,
    MaxConcurrentExceeded,
    BadCoordinatorToken,
    BadPasskey,
    UnknownTool,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    pub detail: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    pub tool: String,
    /// Arguments with secret values replaced by "<redacted>".
    pub args: Value,
    pub at_ms: i64,
    /// Microseconds since the simulator started (finer than `at_ms`, for benchmarks).
    pub at_us: u64,
    pub transport: &'static str,
}

#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub fields: BTreeMap<String, String>,
    pub file_name: Option<String>,
    pub bytes: usize,
    pub stored_at: Option<PathBuf>,
    /// The `log_file` part's Content-Type.
    pub content_type: Option<String>,
    /// The uploaded bytes themselves.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SimStats {
    pub remaining_items: usize,
    pub completed_items: usize,
    pub start_answers: usize,
    /// `start` answers given while a process of the pair was alive (a second purpose, or after a logout).
    pub starts_beside_live_process: usize,
    pub authentications_ok: usize,
    pub authentications_failed: usize,
    /// `authenticate` refused with "No valid purpose for authentication" (nothing to do for the pair).
    pub authentications_no_purpose: usize,
    pub task_sessions: usize,
    pub chat_sessions: usize,
    /// Spawn leases (`spawn_started_at`) set by a `start` answer.
    pub leases_taken: usize,
    /// Leases ended by an `authenticate` (the spawn happened).
    pub leases_cleared_by_auth: usize,
    /// Leases that ran their full time without an `authenticate`: the pair was blocked for nothing.
    pub leases_expired_unused: usize,
    /// Leases set now and still young.
    pub leases_outstanding: usize,
    pub exit_reports: usize,
    pub log_registrations: usize,
    /// (agent, project, message)
    pub agent_errors: Vec<(String, String, String)>,
    /// Chat messages not yet read by an agent (each is chat work).
    pub unread_chat_messages: usize,
    pub live_processes: usize,
    pub peak_live_processes: usize,
    pub calls: usize,
    /// execution_log_id → its `log_file_path` (set by an upload or `register_execution_log_file`).
    pub execution_log_paths: BTreeMap<String, String>,
    /// `GET /api/coordinator/config` requests received.
    pub remote_config_fetches: usize,
    /// Items added by the refill (continuous work).
    pub refilled_items: usize,
}
