//! What to run (a pure plan from provider settings + server action) and running it in its own process group.
//! OWNER: process helper. Contract below.
use crate::agent_cli;
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
    let (program, mut args) = match &req.kick_command {
        Some(k) => {
            let parts = shell_words::split(k).map_err(|e| LaunchError::Invalid(format!("the server's kick_command {k:?} cannot be split ({e}: unbalanced quotes?); nothing was started")))?;
            let mut it = parts.into_iter();
            let program = it.next().ok_or_else(|| LaunchError::Invalid("the server sent an empty kick_command; nothing was started".into()))?;
            (program, it.collect::<Vec<_>>())
        }
        None => (req.provider.command.clone(), req.provider.args.clone()),
    };
    if program.trim().is_empty() {
        return Err(LaunchError::Invalid(format!("provider {:?} has an empty command", req.provider_name)));
    }
    let wd = req.working_dir.display().to_string();
    let cwd = req.context_dir.clone().unwrap_or_else(|| req.working_dir.clone());
    // The bridge sends the token only over HTTP (the socket has no Bearer header).
    let has_token = req.coordinator_token.is_some() && is_http(&req.server_address);
    let stem = req.log_path.file_stem().and_then(|s| s.to_str()).unwrap_or("run").to_string();
    let log_dir = req.log_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut files = Vec::new();
    if req.kick_command.is_none() {
        match req.kind.as_str() {
            "claude" => {
                let cfg_path = log_dir.join(format!(".{stem}.mcp.json"));
                let body = serde_json::json!({"mcpServers": {agent_cli::SERVER_NAME: agent_cli::bridge_entry(&req.bridge_command, has_token)}});
                files.push(PlannedFile { path: cfg_path.clone(), contents: serde_json::to_string_pretty(&body).unwrap(), temp: true });
                args.push("--mcp-config".into());
                args.push(cfg_path.display().to_string());
                if let Some(m) = &req.model {
                    args.extend(["--model".to_string(), m.clone()]);
                }
                args.extend(["--add-dir".to_string(), wd.clone()]);
                args.extend(agent_cli::claude_output_args(&args));
                if req.debug {
                    args.extend(["--debug-file".to_string(), log_dir.join(format!("{stem}.debug.log")).display().to_string()]);
                }
                // `-p` with no prompt argument: Claude Code reads the prompt from stdin.
                args.push("-p".into());
            }
            "gemini" => {
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
                let real_wd = req.real_working_dir.as_ref().map_or_else(|| wd.clone(), |p| p.display().to_string());
                let body = serde_json::json!({
                    "mcpServers": {agent_cli::SERVER_NAME: entry},
                    "includeDirectories": [real_wd],
                    "loadMemoryFromIncludeDirectories": true,
                    "experimental": {"skills": true},
                });
                files.push(PlannedFile { path: ctx.join(".gemini/settings.json"), contents: serde_json::to_string_pretty(&body).unwrap(), temp: false });
                if let Some(m) = &req.model {
                    args.extend(["-m".to_string(), m.clone()]);
                }
                args.extend(["--include-directories".to_string(), wd.clone()]);
                if req.debug {
                    args.push("--debug".into());
                }
            }
            "codex" => {
                args.extend(agent_cli::codex_overrides(&req.bridge_command, has_token));
                if let Some(m) = &req.model {
                    args.extend(["--model".to_string(), m.clone()]);
                }
                // `-` = read the prompt from stdin.
                args.push("-".into());
            }
            // Custom commands get exactly their configured argv (plus the environment below).
            _ => {}
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
    if req.kick_command.is_none() {
        env.extend(agent_cli::run_env(&req.kind, req.as_root));
    }
    Ok(LaunchPlan { program, args, env, cwd, stdin: build_prompt(req), files })
}

/// The coordinator's token variables (the legacy YAML's `MCP_COORDINATOR_TOKEN`, its `COORDINATOR_TOKEN`
/// spelling, and our own marker). An agent gets the token only through [`TOKEN_ENV`], set by the plan.
pub const TOKEN_ENV_VARS: &[&str] = &["MCP_COORDINATOR_TOKEN", "COORDINATOR_TOKEN", TOKEN_ENV];

/// Names of inherited environment variables that must not reach an agent: the token variables and every
/// variable whose value contains a known secret (e.g. another agent's passkey, referenced as `${VAR}` in the
/// legacy YAML). The plan's own variables (the agent's `AGENT_PASSKEY`) are set after these are removed.
pub fn env_to_scrub(vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>, redactor: &crate::redact::Redactor) -> Vec<std::ffi::OsString> {
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

/// Usual places for CLIs that an app started from Finder does not have on its PATH.
fn extra_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin"].iter().map(PathBuf::from).collect();
    if let Some(home) = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf()) {
        for d in [".npm-global/bin", ".local/bin", ".cargo/bin", ".bun/bin", ".volta/bin"] {
            v.push(home.join(d));
        }
    }
    v
}

/// Find a provider's executable: absolute paths as-is, else PATH, else the usual install locations.
pub fn resolve_command(cmd: &str) -> Result<PathBuf, LaunchError> {
    let p = Path::new(cmd);
    if p.is_absolute() || cmd.contains('/') {
        use std::os::unix::fs::PermissionsExt;
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(p.to_path_buf()),
            _ => Err(LaunchError::NotFound { command: cmd.into(), hint: "the path does not name an executable file".into() }),
        };
    }
    if let Ok(found) = which::which(cmd) {
        return Ok(found);
    }
    let paths = std::env::join_paths(extra_dirs()).unwrap_or_default();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(cmd, Some(paths), cwd).map_err(|_| LaunchError::NotFound {
        command: cmd.into(),
        hint: "install it, or set the provider's command to an absolute path in settings".into(),
    })
}

/// A running child: its own process group (pgid == pid).
pub struct RunningChild {
    pub pid: u32,
    pub child: tokio::process::Child,
    /// Finishes when the child's stdout/stderr are fully copied (redacted) into the log.
    pub log_task: tokio::task::JoinHandle<()>,
}

fn write_private(path: &Path, contents: &str) -> Result<(), LaunchError> {
    crate::paths::write_atomic(path, contents.as_bytes(), 0o600).map_err(|e| LaunchError::Io { path: path.display().to_string(), message: e.to_string() })
}

/// Write the plan's files, spawn with `process_group(0)`, pipe stdout+stderr through the redactor into `log_path`,
/// write the prompt to stdin and close it.
///
/// Output is relayed by the coordinator (that is what keeps secrets out of the log even if an agent prints
/// them). If the coordinator dies the relay dies with it; after a restart the engine stops such orphans
/// (group kill) from the state file, so no run ever continues unlogged.
pub async fn spawn(plan: &LaunchPlan, log_path: &Path, redactor: &crate::redact::Redactor) -> Result<RunningChild, LaunchError> {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let program = resolve_command(&plan.program)?;
    if !plan.cwd.is_dir() {
        std::fs::create_dir_all(&plan.cwd).map_err(|e| LaunchError::Io { path: plan.cwd.display().to_string(), message: e.to_string() })?;
    }
    for f in &plan.files {
        write_private(&f.path, &f.contents)?;
    }
    let io = |e: std::io::Error| LaunchError::Io { path: log_path.display().to_string(), message: e.to_string() };
    let mut log = tokio::fs::OpenOptions::new().create(true).append(true).open(log_path).await.map_err(io)?;
    let mut cmd = tokio::process::Command::new(&program);
    for k in env_to_scrub(std::env::vars_os(), redactor) {
        cmd.env_remove(k);
    }
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .envs(plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LaunchError::NotFound { command: plan.program.clone(), hint: "install it, or set an absolute path in settings".into() },
        _ => LaunchError::Spawn { command: plan.program.clone(), message: e.to_string() },
    })?;
    let pid = child.id().unwrap_or(0);
    let header = format!(
        "[agentpm] {} start pid={pid} cwd={} command={} {}\n",
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f"),
        plan.cwd.display(),
        program.display(),
        shell_words::join(&plan.args)
    );
    let _ = log.write_all(redactor.redact(&header).as_bytes()).await;
    // The prompt goes to stdin from a task: a child that never reads stdin cannot block us.
    if let Some(mut stdin) = child.stdin.take() {
        let prompt = plan.stdin.clone();
        tokio::spawn(async move {
            let _ = stdin.write_all(prompt.as_bytes()).await;
            let _ = stdin.shutdown().await;
        });
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    for pipe in [child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>), child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)].into_iter().flatten() {
        let tx = tx.clone();
        tokio::spawn(relay_lines(pipe, tx));
    }
    drop(tx);
    let redactor = redactor.clone();
    let log_task = tokio::spawn(write_log(rx, log, redactor));
    Ok(RunningChild { pid, child, log_task })
}

/// Longest chunk of agent output held in memory: a longer line is forwarded in pieces of at most this size.
pub const MAX_LINE: usize = 64 * 1024;

/// Where to cut a line that reached [`MAX_LINE`] without a newline: after the last whitespace in its second
/// half (a secret never spans a cut there, so masking per chunk still works), else at a UTF-8 boundary.
fn cut_point(line: &[u8]) -> usize {
    if let Some(i) = line[line.len() / 2..].iter().rposition(|b| b.is_ascii_whitespace()) {
        return line.len() / 2 + i + 1;
    }
    let mut end = line.len();
    // Do not split a multi-byte character: back up over continuation bytes (at most 3) to its start.
    for back in 1..=3.min(line.len()) {
        let b = line[line.len() - back];
        if b & 0xC0 != 0x80 {
            if b >= 0xC0 {
                let need = if b >= 0xF0 { 4 } else if b >= 0xE0 { 3 } else { 2 };
                if back < need {
                    end = line.len() - back;
                }
            }
            break;
        }
    }
    if end == 0 {
        line.len()
    } else {
        end
    }
}

/// Reads a pipe line by line and forwards the lines; a line longer than [`MAX_LINE`] is forwarded in pieces
/// (memory stays bounded whatever an agent prints), and a partial last line is flushed at EOF.
async fn relay_lines(pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    use tokio::io::AsyncBufReadExt;
    let mut r = tokio::io::BufReader::with_capacity(16 * 1024, pipe);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (used, complete) = match r.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let room = MAX_LINE - line.len();
                let take = &buf[..buf.len().min(room)];
                match take.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        line.extend_from_slice(&take[..=i]);
                        (i + 1, true)
                    }
                    None => {
                        line.extend_from_slice(take);
                        (take.len(), false)
                    }
                }
            }
        };
        r.consume(used);
        let chunk = if complete {
            std::mem::take(&mut line)
        } else if line.len() >= MAX_LINE {
            let rest = line.split_off(cut_point(&line));
            std::mem::replace(&mut line, rest)
        } else {
            continue;
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if !line.is_empty() {
        let _ = tx.send(line).await;
    }
}

async fn write_log(mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>, mut log: tokio::fs::File, redactor: crate::redact::Redactor) {
    use tokio::io::AsyncWriteExt;
    while let Some(line) = rx.recv().await {
        let text = String::from_utf8_lossy(&line);
        let masked = redactor.redact(&text);
        if log.write_all(masked.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = log.flush().await;
}

fn group_alive(pgid: i32) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None).is_ok()
}

/// SIGTERM the group, wait up to `grace` for the group to be gone, then SIGKILL the group.
pub async fn stop_group(pgid: u32, grace: std::time::Duration) {
    use nix::sys::signal::{killpg, Signal};
    let pg = pgid as i32;
    if pg <= 1 {
        return; // never signal init's group or "every process"
    }
    let pid = nix::unistd::Pid::from_raw(pg);
    if killpg(pid, Signal::SIGTERM).is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !group_alive(pg) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = killpg(pid, Signal::SIGKILL);
}

/// Remove the plan's temp files after a run.
pub fn cleanup(plan: &LaunchPlan) {
    for f in plan.files.iter().filter(|f| f.temp) {
        let _ = std::fs::remove_file(&f.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderSettings;

    fn req(kind: &str, address: &str) -> LaunchRequest {
        LaunchRequest {
            agent_id: "agt_a".into(),
            project_id: "prj_1".into(),
            working_dir: PathBuf::from("/work/p"),
            provider_name: kind.into(),
            provider: ProviderSettings { command: kind.into(), args: vec!["--x".into()], model: None, kind: Some(kind.into()) },
            kind: kind.into(),
            model: Some("m-1".into()),
            kick_command: None,
            server_address: address.into(),
            passkey: "PASSKEY-123456".into(),
            coordinator_token: Some("TOKEN-abcdef".into()),
            task_id: Some("tsk_1".into()),
            debug: true,
            log_path: PathBuf::from("/logs/agt_a/20260101_000000_000.log"),
            context_dir: (kind == "gemini").then(|| PathBuf::from("/ctx/agt_a")),
            base_prompt: None,
            real_working_dir: None,
            bridge_command: vec!["/app/agentpm-coordinator".into(), "mcp-bridge".into()],
            as_root: false,
        }
    }

    #[test]
    fn no_secret_in_argv_files_or_prompt_for_any_kind_or_transport() {
        for kind in ["claude", "gemini", "codex", "custom"] {
            for addr in ["/tmp/mcp.sock", "http://pm:8080/mcp"] {
                let p = plan(&req(kind, addr)).unwrap();
                for secret in ["PASSKEY-123456", "TOKEN-abcdef"] {
                    assert!(!p.program.contains(secret) && p.args.iter().all(|a| !a.contains(secret)), "{kind} {addr}: {p:?}");
                    assert!(p.files.iter().all(|f| !f.contents.contains(secret)), "{kind} {addr}: {:?}", p.files);
                    assert!(!p.stdin.contains(secret));
                }
                assert!(p.env.iter().any(|(k, v)| k == "AGENT_PASSKEY" && v == "PASSKEY-123456"));
                let token_in_env = p.env.iter().any(|(k, _)| k == TOKEN_ENV);
                assert_eq!(token_in_env, addr.starts_with("http"), "{kind} {addr}");
            }
        }
    }

    #[test]
    fn claude_gets_mcp_config_model_and_stdin_prompt() {
        let p = plan(&req("claude", "/tmp/mcp.sock")).unwrap();
        let i = p.args.iter().position(|a| a == "--mcp-config").unwrap();
        assert!(p.args[i + 1].ends_with(".mcp.json"));
        let cfg: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
        assert_eq!(cfg["mcpServers"]["agent-pm"]["command"], "/app/agentpm-coordinator");
        assert_eq!(cfg["mcpServers"]["agent-pm"]["args"], serde_json::json!(["mcp-bridge"]));
        assert!(p.args.windows(2).any(|w| w == ["--output-format", "stream-json"]));
        assert!(p.args.windows(2).any(|w| w == ["--model", "m-1"]));
        assert_eq!(p.args.last().unwrap(), "-p");
        assert!(p.stdin.contains("get_next_action"));
        let h = plan(&req("claude", "http://pm:8080/mcp")).unwrap();
        assert!(h.files[0].contents.contains("${AGENTPM_COORDINATOR_TOKEN}"));
        assert!(!p.files[0].contents.contains("AGENTPM_COORDINATOR_TOKEN"), "no token on the socket");
        assert!(!p.stdin.contains("AGENT_PASSKEY"), "the prompt points the model at no secret");
    }

    #[test]
    fn gemini_uses_settings_file_and_short_model_flag() {
        let p = plan(&req("gemini", "/tmp/mcp.sock")).unwrap();
        assert!(p.files[0].path.ends_with(".gemini/settings.json"));
        assert!(p.args.windows(2).any(|w| w == ["-m", "m-1"]));
        assert!(p.args.contains(&"--include-directories".to_string()));
        assert!(p.env.contains(&("GEMINI_CLI_TRUST_WORKSPACE".to_string(), "true".to_string())));
        let v: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
        assert_eq!(v["mcpServers"]["agent-pm"]["args"], serde_json::json!(["mcp-bridge"]));
        assert_eq!(v["mcpServers"]["agent-pm"]["env"]["AGENT_PASSKEY"], "${AGENT_PASSKEY}");
    }

    #[test]
    fn codex_gets_the_bridge_through_config_overrides_and_claude_as_root_the_sandbox_flag() {
        let p = plan(&req("codex", "/tmp/mcp.sock")).unwrap();
        assert!(p.args.iter().any(|a| a == "mcp_servers.agent-pm.command=\"/app/agentpm-coordinator\""), "{:?}", p.args);
        assert_eq!(p.args.last().unwrap(), "-");
        let mut r = req("claude", "/tmp/mcp.sock");
        assert!(!plan(&r).unwrap().env.iter().any(|(k, _)| k == "IS_SANDBOX"));
        r.as_root = true;
        assert!(plan(&r).unwrap().env.contains(&("IS_SANDBOX".to_string(), "1".to_string())));
    }

    #[test]
    fn gemini_settings_enable_skills_use_the_real_dir_and_never_the_projects_own_gemini_dir() {
        let mut r = req("gemini", "/tmp/mcp.sock");
        r.real_working_dir = Some(PathBuf::from("/private/work/p"));
        let p = plan(&r).unwrap();
        assert_eq!(p.files[0].path, PathBuf::from("/ctx/agt_a/.gemini/settings.json"));
        let v: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
        assert_eq!(v["experimental"]["skills"], serde_json::json!(true));
        assert_eq!(v["includeDirectories"], serde_json::json!(["/private/work/p"]));
        assert_eq!(v["loadMemoryFromIncludeDirectories"], serde_json::json!(true));
        // No context dir: refusing beats overwriting <project>/.gemini/settings.json.
        r.context_dir = None;
        let e = plan(&r).unwrap_err().to_string();
        assert!(e.contains("context directory") && e.contains("/work/p/.gemini/settings.json"), "{e}");
    }

    #[test]
    fn token_vars_and_vars_holding_known_secrets_are_scrubbed() {
        let r = crate::redact::Redactor::default();
        r.add("OTHER-AGENT-PASSKEY-9");
        let vars = [("HOME", "/root"), ("MCP_COORDINATOR_TOKEN", "t0k3n"), ("COORDINATOR_TOKEN", "x"), ("AGENT_B_PASSKEY", "OTHER-AGENT-PASSKEY-9"), ("WRAPPED", "pre OTHER-AGENT-PASSKEY-9 post"), ("EMPTY", ""), ("PATH", "/usr/bin")];
        let gone = env_to_scrub(vars.iter().map(|(k, v)| (k.into(), v.into())), &r);
        let gone: Vec<String> = gone.into_iter().map(|k| k.into_string().unwrap()).collect();
        assert_eq!(gone, vec!["MCP_COORDINATOR_TOKEN", "COORDINATOR_TOKEN", "AGENT_B_PASSKEY", "WRAPPED"]);
    }

    #[tokio::test]
    async fn child_does_not_inherit_secret_env_but_gets_its_own_passkey() {
        std::env::set_var("AGENTPM_LAUNCH_TEST_OTHER_PK", "PASSKEY-of-another-agent-77");
        std::env::set_var("COORDINATOR_TOKEN", "launch-test-token-88");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let r = crate::redact::Redactor::default();
        r.add("PASSKEY-of-another-agent-77");
        let p = LaunchPlan {
            program: "sh".into(),
            args: vec!["-c".into(), "echo \"other=${AGENTPM_LAUNCH_TEST_OTHER_PK:-unset} token=${COORDINATOR_TOKEN:-unset} own=$AGENT_PASSKEY\"".into()],
            env: vec![("AGENT_PASSKEY".into(), "own-passkey-1".into())],
            cwd: dir.path().into(),
            stdin: String::new(),
            files: vec![],
        };
        let mut c = spawn(&p, &log, &r).await.unwrap();
        c.child.wait().await.unwrap();
        c.log_task.await.unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("other=unset token=unset own=own-passkey-1"), "{text}");
    }

    #[tokio::test]
    async fn long_lines_are_forwarded_in_bounded_pieces() {
        let secret = "SECRET-abcdef-123456";
        let mut input = Vec::new();
        input.extend_from_slice(b"short\n");
        for i in 0..20_000 {
            input.extend_from_slice(format!("w{i} {secret} ").as_bytes());
        }
        input.extend_from_slice("é".repeat(70_000).as_bytes());
        input.extend_from_slice(b"\nend");
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(std::io::Cursor::new(input.clone()));
        let relay = tokio::spawn(relay_lines(reader, tx));
        let mut chunks = Vec::new();
        while let Some(c) = rx.recv().await {
            chunks.push(c);
        }
        relay.await.unwrap();
        assert!(chunks.iter().all(|c| c.len() <= MAX_LINE), "a chunk exceeds the cap");
        assert!(chunks.len() > 4, "{}", chunks.len());
        assert_eq!(chunks.concat(), input, "output lost or reordered");
        assert_eq!(chunks[0], b"short\n");
        assert_eq!(chunks.last().unwrap(), b"end", "partial last line not flushed");
        // Every piece is valid UTF-8 and masking per piece still catches every secret.
        let r = crate::redact::Redactor::default();
        r.add(secret);
        for c in &chunks {
            let t = std::str::from_utf8(c).expect("a character was split");
            assert!(!r.redact(t).contains(secret));
        }
        let masked: usize = chunks.iter().map(|c| r.redact(std::str::from_utf8(c).unwrap()).matches(crate::redact::MASK).count()).sum();
        assert_eq!(masked, 20_000);
    }

    #[test]
    fn kick_command_is_split_and_bad_quotes_refused() {
        let mut r = req("claude", "/tmp/mcp.sock");
        r.kick_command = Some("my-agent --flag 'two words'".into());
        let p = plan(&r).unwrap();
        assert_eq!(p.program, "my-agent");
        assert_eq!(p.args, vec!["--flag", "two words"]);
        r.kick_command = Some("my-agent 'oops".into());
        let e = plan(&r).unwrap_err().to_string();
        assert!(e.contains("unbalanced quotes"), "{e}");
    }

    #[test]
    fn base_prompt_substitutes_working_dir() {
        let mut r = req("custom", "/tmp/mcp.sock");
        r.base_prompt = Some("work in {working_dir}".into());
        assert_eq!(plan(&r).unwrap().stdin, "work in /work/p");
    }

    #[test]
    fn missing_command_is_a_clear_error() {
        let e = resolve_command("surely-not-a-real-command-xyz").unwrap_err();
        assert!(matches!(e, LaunchError::NotFound { .. }));
    }

    #[tokio::test]
    async fn stop_group_kills_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let p = LaunchPlan {
            program: "sh".into(),
            args: vec!["-c".into(), "sleep 600 & echo grandchild $!; sleep 600".into()],
            env: vec![],
            cwd: dir.path().into(),
            stdin: String::new(),
            files: vec![],
        };
        let mut child = spawn(&p, &log, &crate::redact::Redactor::default()).await.unwrap();
        let mut gc = 0;
        for _ in 0..100 {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(n) = text.lines().find_map(|l| l.strip_prefix("grandchild ")).and_then(|n| n.trim().parse::<i32>().ok()) {
                gc = n;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(gc > 0, "no grandchild pid");
        stop_group(child.pid, std::time::Duration::from_secs(2)).await;
        let _ = child.child.wait().await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let alive = std::fs::read_to_string(format!("/proc/{gc}/stat")).map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z')).unwrap_or(false);
        assert!(!alive, "grandchild {gc} survived");
    }

    #[tokio::test]
    async fn output_is_redacted_into_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        let r = crate::redact::Redactor::default();
        r.add("PASSKEY-123456");
        let p = LaunchPlan {
            program: "sh".into(),
            args: vec!["-c".into(), "read line; echo \"got $line and $AGENT_PASSKEY\"; echo err $AGENT_PASSKEY >&2".into()],
            env: vec![("AGENT_PASSKEY".into(), "PASSKEY-123456".into())],
            cwd: dir.path().into(),
            stdin: "hello\n".into(),
            files: vec![],
        };
        let mut c = spawn(&p, &log, &r).await.unwrap();
        c.child.wait().await.unwrap();
        c.log_task.await.unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("got hello and ********"), "{text}");
        assert!(!text.contains("PASSKEY-123456"), "{text}");
    }
}
