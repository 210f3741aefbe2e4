//! `status`: what a running `agentpm-coordinator run` is doing, and what needs you. The running coordinator
//! publishes its snapshot (redacted, no secret in it) to a file beside its state file at most once a second;
//! `status` reads that file and checks that its writer is still alive.

use super::*;
use coordinator::api::Snapshot;

/// How often `run` rewrites the status file at most.
pub(crate) const WRITE_EVERY: Duration = Duration::from_secs(1);

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StatusFile {
    pub pid: u32,
    pub snapshot: Snapshot,
}

pub(crate) fn status_path_for(config: &Path) -> PathBuf {
    state_path_for(config).with_extension("status.json")
}

/// Written by `run` (atomic, 0600): the latest snapshot and who wrote it.
pub(crate) fn write_status(path: &Path, snapshot: &Snapshot) {
    let body = serde_json::to_vec_pretty(&StatusFile {
        pid: std::process::id(),
        snapshot: snapshot.clone(),
    })
    .unwrap_or_default();
    if let Err(e) = coordinator::paths::write_atomic(path, &body, 0o600) {
        tracing::debug!("status file {} not written: {e}", path.display());
    }
}

pub(crate) fn status(config: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let config = config.unwrap_or_else(coordinator::paths::settings_path);
    let path = status_path_for(&config);
    let file: Option<StatusFile> = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let Some(f) = file.filter(|f| alive(f.pid)) else {
        if json {
            println!("{}", serde_json::json!({"running": false, "config": config}));
        } else {
            println!(
                "no coordinator is running for {} (start one with `agentpm-coordinator run`)",
                config.display()
            );
        }
        return Ok(ExitCode::from(3));
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&f.snapshot)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &f.snapshot;
    let age = (coordinator::api::now_ms() - s.updated_at).max(0) / 1000;
    println!(
        "coordinator pid {} for {} · {} (updated {age} s ago)",
        f.pid,
        config.display(),
        s.summary()
    );
    for i in &s.instances {
        let what = i.last_activity.as_deref().unwrap_or("starting…");
        let secs = (coordinator::api::now_ms() - i.started_at).max(0) / 1000;
        println!(
            "  running  {} · {} · {} · {} s · {what}",
            i.agent_id,
            i.project_name.as_deref().unwrap_or(&i.project_id),
            i.task_id.as_deref().unwrap_or("chat"),
            secs
        );
    }
    if s.attention.is_empty() {
        println!("nothing needs you");
    } else {
        println!("needs you:");
        for a in &s.attention {
            let cmd = a
                .action
                .and_then(|x| x.cli_command(a.agent_id.as_deref()))
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default();
            println!("  - {} {}{cmd}", a.reason, a.fix);
        }
    }
    Ok(if s.attention.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Whether a process with this pid exists (EPERM: it does, owned by someone else).
fn alive(pid: u32) -> bool {
    use nix::errno::Errno;
    matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None),
        Ok(()) | Err(Errno::EPERM)
    )
}
