//! What to run (a pure plan from provider settings + server action) and running it in its own process group.
//! OWNER: process helper. Contract below.
use std::path::{Path, PathBuf};

/// Everything needed to decide argv/env/stdin/files for one agent run.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    pub agent_id: String,
    pub project_id: String,
    /// The project's working directory (must exist).
    pub working_dir: PathBuf,
    /// Provider name (key in settings.providers) and its resolved settings.
    pub provider_name: String,
    pub provider: crate::config::ProviderSettings,
    /// "claude" | "gemini" | "codex" | "custom"
    pub kind: String,
    pub model: Option<String>,
    /// Server-sent command line (split with shell-words); overrides the provider.
    pub kick_command: Option<String>,
    /// Unix socket path or http(s) URL of the PM server, for the agent's MCP config.
    pub server_address: String,
    pub passkey: String,
    pub coordinator_token: Option<String>,
    pub task_id: Option<String>,
    pub debug: bool,
    /// The run's log file; debug files go beside it.
    pub log_path: PathBuf,
    /// Agent context dir prepared by `context` (claude/gemini), if any; becomes cwd.
    pub context_dir: Option<PathBuf>,
    /// Server's `agent_base_prompt`, if any (`{working_dir}` substituted).
    pub base_prompt: Option<String>,
}

/// The pure result: what to exec, with which env and stdin, and which files to write first.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchPlan {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Written to the child's stdin, then stdin is closed.
    pub stdin: String,
    /// (path, contents) written before the spawn, mode 0600; removed after the run when `temp` is true.
    pub files: Vec<PlannedFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub contents: String,
    pub temp: bool,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LaunchError {
    #[error("{0}")]
    Invalid(String),
    #[error("provider command `{command}` not found on PATH ({hint})")]
    NotFound { command: String, hint: String },
    #[error("cannot spawn `{command}`: {message}")]
    Spawn { command: String, message: String },
    #[error("cannot write {path}: {message}")]
    Io { path: String, message: String },
}

pub fn plan(req: &LaunchRequest) -> Result<LaunchPlan, LaunchError> {
    let _ = req;
    todo!()
}

/// A running child: its own process group (pgid == pid).
pub struct RunningChild {
    pub pid: u32,
    pub child: tokio::process::Child,
    /// Finishes when the child's stdout/stderr are fully copied (redacted) into the log.
    pub log_task: tokio::task::JoinHandle<()>,
}

/// Write the plan's files, spawn with `process_group(0)`, pipe stdout+stderr through the redactor into `log_path`,
/// write the prompt to stdin and close it.
pub async fn spawn(plan: &LaunchPlan, log_path: &Path, redactor: &crate::redact::Redactor) -> Result<RunningChild, LaunchError> {
    let _ = (plan, log_path, redactor);
    todo!()
}

/// SIGTERM the group, wait up to `grace` for the group to be gone, then SIGKILL the group.
pub async fn stop_group(pgid: u32, grace: std::time::Duration) {
    let _ = (pgid, grace);
    todo!()
}

/// Remove the plan's temp files after a run.
pub fn cleanup(plan: &LaunchPlan) {
    for f in plan.files.iter().filter(|f| f.temp) {
        let _ = std::fs::remove_file(&f.path);
    }
}
