//! Running a plan: resolve the command, write its files, spawn it in its own process group with a scrubbed
//! environment, and stop the group later.
use super::output::{relay_lines, write_log, LiveProgress, Recorder};
use super::plan::{env_to_scrub, LaunchError, LaunchPlan};
use std::path::{Path, PathBuf};

/// Find a provider's executable: absolute paths as-is, else the PATH the user's login shell has plus the
/// usual install folders (`shell_path`): an app started from Finder has only the system folders.
pub fn resolve_command(cmd: &str) -> Result<PathBuf, LaunchError> {
    let p = Path::new(cmd);
    if p.is_absolute() || cmd.contains('/') {
        use std::os::unix::fs::PermissionsExt;
        return match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(p.to_path_buf()),
            _ => Err(LaunchError::NotFound {
                command: cmd.into(),
                hint: "the path does not name an executable file".into(),
            }),
        };
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    which::which_in(cmd, Some(crate::shell_path::effective_path()), cwd).map_err(|_| LaunchError::NotFound {
        command: cmd.into(),
        hint: "not in your login shell's PATH nor the usual folders: install it, or set the provider's command to an absolute path in settings".into(),
    })
}

/// Run `<cmd> --version` (the providers page's "Test", doctor): where the CLI was found and the version it
/// reports (first non-empty line), bounded by `timeout`. No secret is in its environment.
pub fn probe_version(cmd: &str, timeout: std::time::Duration) -> Result<(PathBuf, String), LaunchError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let program = resolve_command(cmd)?;
    let mut c = Command::new(&program);
    for k in super::plan::TOKEN_ENV_VARS.iter().chain(["AGENT_PASSKEY"].iter()) {
        c.env_remove(k);
    }
    let spawn_err = |e: std::io::Error| LaunchError::Spawn {
        command: program.display().to_string(),
        message: crate::io_words::io_words(&e),
    };
    let mut child = c
        .arg("--version")
        .env("PATH", crate::shell_path::effective_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(spawn_err)?;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let reader = std::thread::spawn(move || {
        let (mut a, mut b) = (String::new(), String::new());
        let _ = out.read_to_string(&mut a);
        let _ = err.read_to_string(&mut b);
        a + &b
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait().map_err(spawn_err)? {
            Some(st) => break st,
            None if std::time::Instant::now() > deadline => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = child.wait();
                return Err(LaunchError::Spawn {
                    command: program.display().to_string(),
                    message: format!("`--version` did not answer within {timeout:?}"),
                });
            }
            None => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    };
    let text = reader.join().unwrap_or_default();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    if !status.success() {
        // Found and runnable, just without a `--version`: say so instead of calling it missing.
        return Ok((
            program,
            format!("no version (`--version` exited with {status}: {line})"),
        ));
    }
    Ok((program, line))
}

/// A running child: its own process group (pgid == pid).
pub struct RunningChild {
    pub pid: u32,
    pub child: tokio::process::Child,
    /// Finishes when the child's stdout/stderr are fully copied (redacted) into the log; with a
    /// [`Recorder`], yields the summarizer fed with the whole (redacted) output.
    pub log_task: tokio::task::JoinHandle<Option<Box<crate::runs::Summarizer>>>,
    /// The live fields of the run (tokens, cost, last activity so far), when recorded; updated at most
    /// once per [`PUBLISH_EVERY`](super::output::PUBLISH_EVERY).
    pub live: LiveProgress,
}

fn write_private(path: &Path, contents: &str) -> Result<(), LaunchError> {
    crate::paths::write_atomic(path, contents.as_bytes(), 0o600).map_err(|e| LaunchError::Io {
        path: path.display().to_string(),
        message: crate::io_words::io_words(&e),
    })
}

/// Write the plan's files, spawn with `process_group(0)`, pipe stdout+stderr through the redactor into `log_path`,
/// write the prompt to stdin and close it.
///
/// Output is relayed by the coordinator (that is what keeps secrets out of the log even if an agent prints
/// them). If the coordinator dies the relay dies with it; after a restart the engine stops such orphans
/// (group kill) from the state file, so no run ever continues unlogged.
pub async fn spawn(
    plan: &LaunchPlan,
    log_path: &Path,
    redactor: &crate::redact::Redactor,
) -> Result<RunningChild, LaunchError> {
    spawn_recorded(plan, log_path, redactor, None).await
}

/// [`spawn`], with the output parsed as it is relayed (see [`Recorder`]).
pub async fn spawn_recorded(
    plan: &LaunchPlan,
    log_path: &Path,
    redactor: &crate::redact::Redactor,
    rec: Option<Recorder>,
) -> Result<RunningChild, LaunchError> {
    use std::process::Stdio;
    use tokio::io::AsyncWriteExt;
    let program = resolve_command(&plan.program)?;
    if !plan.cwd.is_dir() {
        std::fs::create_dir_all(&plan.cwd).map_err(|e| LaunchError::Io {
            path: plan.cwd.display().to_string(),
            message: crate::io_words::io_words(&e),
        })?;
    }
    for f in &plan.files {
        write_private(&f.path, &f.contents)?;
    }
    let io = |e: std::io::Error| LaunchError::Io {
        path: log_path.display().to_string(),
        message: crate::io_words::io_words(&e),
    };
    let mut log = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .await
        .map_err(io)?;
    let mut cmd = tokio::process::Command::new(&program);
    for k in env_to_scrub(std::env::vars_os(), redactor) {
        cmd.env_remove(k);
    }
    // The agent's own lookups (`node` for an npm CLI, git, the shell tools it runs) see the same PATH.
    cmd.env("PATH", crate::shell_path::effective_path());
    cmd.args(&plan.args)
        .current_dir(&plan.cwd)
        .envs(plan.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LaunchError::NotFound {
            command: plan.program.clone(),
            hint: "install it, or set an absolute path in settings".into(),
        },
        _ => LaunchError::Spawn {
            command: plan.program.clone(),
            message: crate::io_words::io_words(&e),
        },
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
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        tokio::spawn(relay_lines(pipe, tx));
    }
    drop(tx);
    let redactor = redactor.clone();
    let (live_tx, live) = tokio::sync::watch::channel(None);
    let log_task = tokio::spawn(write_log(rx, log, redactor, rec, live_tx));
    Ok(RunningChild {
        pid,
        child,
        log_task,
        live,
    })
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
