//! The pure plan: from provider settings and the server's answer to argv, env, stdin and the files to write.
//! No I/O here, so every decision is unit-tested. Contract below.
use crate::agent_cli;
use crate::config::ProviderKind;
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
    pub kind: ProviderKind,
    pub model: Option<String>,
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
    /// `working_dir` with symlinks resolved (upstream's `os.path.realpath`), for Gemini's `includeDirectories`.
    pub real_working_dir: Option<PathBuf>,
    /// The agent's `agent-pm` MCP server: program and args of our stdio bridge (`mcp_bridge::command()`).
    pub bridge_command: Vec<String>,
    /// Whether the coordinator runs as root (Claude Code then needs `IS_SANDBOX=1`).
    pub as_root: bool,
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

/// Marker that MCP config files use instead of the token itself (Claude Code and Gemini CLI expand `${VAR}`).
pub const TOKEN_ENV: &str = "AGENTPM_COORDINATOR_TOKEN";

fn is_http(address: &str) -> bool {
    address.starts_with("http://") || address.starts_with("https://")
}

/// The prompt, in our own words. It never contains a secret, nor tells the model where one is: the MCP
/// bridge fills in `authenticate`'s credentials.
pub fn build_prompt(req: &LaunchRequest) -> String {
    let wd = req.working_dir.display().to_string();
    if let Some(bp) = req.base_prompt.as_ref().filter(|p| !p.trim().is_empty()) {
        return bp.replace("{working_dir}", &wd);
    }
    format!(
        "You are an agent instance started by AI Agent PM's coordinator.\n\
Your working directory is {wd}. Never modify anything under {wd}/.aiagent/.\n\n\
1. Call the `authenticate` tool of the `agent-pm` MCP server with no arguments: the server supplies your\n\
   credentials. Never look for a passkey or token yourself.\n\
2. Keep the session_token it returns and adopt the system_prompt it returns, if any.\n\
3. Then loop: call `get_next_action` with your session_token, do exactly what its `instruction` says, and call\n\
   it again. Do not act on a task description directly; the instructions tell you when to report progress,\n\
   when to create subtasks and when to stop.\n\
4. Other members of the PM team are reached through the PM tools (subtasks, messages), not through local\n\
   sub-agents.\n\
5. When `get_next_action` says to exit (or after `logout`), stop.\n"
    )
}

/// Decide argv, env, stdin and files for one run. Pure: no I/O.
pub fn plan(req: &LaunchRequest) -> Result<LaunchPlan, LaunchError> {
    // Only what the user configured locally runs: the server can name a provider, never a command.
    let (program, mut args) = (req.provider.command.clone(), req.provider.args.clone());
    if program.trim().is_empty() {
        return Err(LaunchError::Invalid(format!(
            "provider {:?} has an empty command",
            req.provider_name
        )));
    }
    let wd = req.working_dir.display().to_string();
    let cwd = req.context_dir.clone().unwrap_or_else(|| req.working_dir.clone());
    // The bridge sends the token only over HTTP (the socket has no Bearer header).
    let has_token = req.coordinator_token.is_some() && is_http(&req.server_address);
    let stem = req
        .log_path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("run")
        .to_string();
    let log_dir = req.log_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = Vec::new();
    {
        match req.kind {
            ProviderKind::Claude => {
                let cfg_path = log_dir.join(format!(".{stem}.mcp.json"));
                let body = serde_json::json!({"mcpServers": {agent_cli::SERVER_NAME: agent_cli::bridge_entry(&req.bridge_command, has_token)}});
                files.push(PlannedFile {
                    path: cfg_path.clone(),
                    contents: serde_json::to_string_pretty(&body).unwrap(),
                    temp: true,
                });
                args.push("--mcp-config".into());
                args.push(cfg_path.display().to_string());
                if let Some(m) = &req.model {
                    args.extend(["--model".to_string(), m.clone()]);
                }
                args.extend(["--add-dir".to_string(), wd.clone()]);
                args.extend(agent_cli::claude_output_args(&args));
                if req.debug {
                    // Not --debug-file: Claude would write that file itself, bypassing redaction. Debug output on
                    // stderr lands in the masked run log.
                    args.push("--debug".into());
                }
                // `-p` with no prompt argument: Claude Code reads the prompt from stdin.
                args.push("-p".into());
            }
            ProviderKind::Gemini => {
                // Gemini reads its settings from `<cwd>/.gemini/settings.json`. Without an agent context dir
                // the cwd is the project itself: never overwrite the user's own Gemini settings.
                let Some(ctx) = &req.context_dir else {
                    return Err(LaunchError::Invalid(format!(
                        "the agent context directory for {} could not be prepared, and Gemini's settings would otherwise overwrite {}/.gemini/settings.json; nothing was started",
                        req.agent_id, wd
                    )));
                };
                let mut entry = agent_cli::bridge_entry(&req.bridge_command, has_token);
                entry["trust"] = true.into();
                let real_wd = req
                    .real_working_dir
                    .as_ref()
                    .map_or_else(|| wd.clone(), |p| p.display().to_string());
                let body = serde_json::json!({
                    "mcpServers": {agent_cli::SERVER_NAME: entry},
                    "includeDirectories": [real_wd],
                    "loadMemoryFromIncludeDirectories": true,
                    "experimental": {"skills": true},
                });
                files.push(PlannedFile {
                    path: ctx.join(".gemini/settings.json"),
                    contents: serde_json::to_string_pretty(&body).unwrap(),
                    temp: false,
                });
                if let Some(m) = &req.model {
                    args.extend(["-m".to_string(), m.clone()]);
                }
                args.extend(["--include-directories".to_string(), wd.clone()]);
                args.extend(agent_cli::gemini_output_args(&args));
                if req.debug {
                    args.push("--debug".into());
                }
            }
            ProviderKind::Codex => {
                // `codex exec`: the bridge through `-c` overrides (the user's CODEX_HOME stays as it is).
                args.extend(agent_cli::codex_exec_args(&args));
                args.extend(agent_cli::codex_overrides(&req.bridge_command, has_token));
                if let Some(m) = &req.model {
                    args.extend(["--model".to_string(), m.clone()]);
                }
                // `-` = read the prompt from stdin.
                args.push("-".into());
            }
            // Custom commands get exactly their configured argv (plus the environment below).
            ProviderKind::Custom => {}
        }
    }
    let mut env = vec![
        ("AGENT_ID".to_string(), req.agent_id.clone()),
        ("PROJECT_ID".to_string(), req.project_id.clone()),
        ("AGENT_PASSKEY".to_string(), req.passkey.clone()),
        ("WORKING_DIRECTORY".to_string(), wd),
        ("AGENTPM_SERVER".to_string(), req.server_address.clone()),
    ];
    if let Some(m) = &req.model {
        env.push(("AGENTPM_MODEL".to_string(), m.clone()));
    }
    if let Some(t) = &req.task_id {
        env.push(("AGENTPM_TASK_ID".to_string(), t.clone()));
    }
    if let (true, Some(t)) = (is_http(&req.server_address), &req.coordinator_token) {
        env.push((TOKEN_ENV.to_string(), t.clone()));
    }
    env.extend(agent_cli::run_env(req.kind.as_str(), req.as_root));
    Ok(LaunchPlan {
        program,
        args,
        env,
        cwd,
        stdin: build_prompt(req),
        files,
    })
}

/// The coordinator's token variables (the legacy YAML's `MCP_COORDINATOR_TOKEN`, its `COORDINATOR_TOKEN`
/// spelling, and our own marker). An agent gets the token only through [`TOKEN_ENV`], set by the plan.
pub const TOKEN_ENV_VARS: &[&str] = &["MCP_COORDINATOR_TOKEN", "COORDINATOR_TOKEN", TOKEN_ENV];

/// Names of inherited environment variables that must not reach an agent: the token variables and every
/// variable whose value contains a known secret (e.g. another agent's passkey, referenced as `${VAR}` in the
/// legacy YAML). The plan's own variables (the agent's `AGENT_PASSKEY`) are set after these are removed.
pub fn env_to_scrub(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    redactor: &crate::redact::Redactor,
) -> Vec<std::ffi::OsString> {
    vars.into_iter()
        .filter(|(k, v)| {
            if k.to_str().is_some_and(|k| TOKEN_ENV_VARS.contains(&k)) {
                return true;
            }
            let v = v.to_string_lossy();
            !v.is_empty() && redactor.redact(&v) != v
        })
        .map(|(k, _)| k)
        .collect()
}
