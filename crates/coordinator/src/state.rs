//! Persisted engine state (`state.json`): running children (for orphan recovery after a crash) and
//! cooldowns (which survive a restart). OWNER: process helper.
use crate::api::UnixMs;
use crate::exit::Cooldowns;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChildRecord {
    pub pid: u32,
    pub pgid: u32,
    pub agent_id: String,
    pub project_id: String,
    pub task_id: Option<String>,
    pub started_at: UnixMs,
    pub log_path: PathBuf,
    /// Process start time from /proc (Linux) or ps, to tell a recycled pid from our child.
    pub proc_start: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct PersistedState {
    pub children: Vec<ChildRecord>,
    pub cooldowns: Cooldowns,
    /// Exits not yet reported to the server (server was down): (agent_id, project_id).
    pub pending_exit_reports: Vec<(String, String)>,
    /// Agents the user paused: agent id → until (None = until resumed). Absent in older state files.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub paused: std::collections::BTreeMap<String, Option<crate::api::UnixMs>>,
}

impl PersistedState {
    /// Missing or unreadable file → default (a corrupt file is moved aside to `state.json.corrupt`).
    pub fn load(path: &Path) -> PersistedState {
        match std::fs::read_to_string(path) {
            Ok(text) => match serde_json::from_str(&text) {
                Ok(s) => s,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::warn!(
                        "{} is corrupt ({e}); moved to {} and starting fresh",
                        path.display(),
                        aside.display()
                    );
                    let _ = std::fs::rename(path, &aside);
                    PersistedState::default()
                }
            },
            Err(_) => PersistedState::default(),
        }
    }
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::paths::write_atomic(path, serde_json::to_string_pretty(self).unwrap().as_bytes(), 0o600)
    }
}

/// Start time of a process (Linux: field 22 of /proc/<pid>/stat), None if it is gone.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may itself contain spaces and parentheses.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// True when `rec` still names a live process of ours (pid alive and start time matches when known).
pub fn is_alive(rec: &ChildRecord) -> bool {
    if rec.pid <= 1 || nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid as i32), None).is_err() {
        return false;
    }
    if is_zombie(rec.pid) {
        return false;
    }
    match (rec.proc_start, process_start_time(rec.pid)) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// True when the process group `rec` started is still ours to stop, whether or not its leader lives: an agent
/// killed by a broken pipe leaves its background children running in the group. The kernel never hands out a
/// pid that is still some group's id, so a live group whose leader is gone is the group we started; a live
/// leader must also match the recorded start time (a recycled pid is someone else's).
pub fn group_is_ours(rec: &ChildRecord) -> bool {
    if rec.pgid <= 1 {
        return false;
    }
    let leader = ChildRecord {
        pid: rec.pgid,
        ..rec.clone()
    };
    let leader_exists =
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pgid as i32), None).is_ok() && !is_zombie(rec.pgid);
    if leader_exists {
        return rec.pgid != rec.pid || is_alive(&leader);
    }
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(rec.pgid as i32), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_state_is_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        std::fs::write(&p, "{not json").unwrap();
        assert_eq!(PersistedState::load(&p), PersistedState::default());
        assert!(d.path().join("state.json.corrupt").exists());
    }

    #[test]
    fn liveness_checks_start_time() {
        let me = std::process::id();
        let start = process_start_time(me);
        assert!(start.is_some());
        let rec = ChildRecord {
            pid: me,
            pgid: me,
            agent_id: "a".into(),
            project_id: "p".into(),
            task_id: None,
            started_at: 0,
            log_path: PathBuf::new(),
            proc_start: start,
        };
        assert!(is_alive(&rec));
        assert!(
            !is_alive(&ChildRecord {
                proc_start: start.map(|s| s + 1),
                ..rec.clone()
            }),
            "recycled pid taken for ours"
        );
        assert!(!is_alive(&ChildRecord {
            pid: 999_999_999,
            ..rec
        }));
    }

    #[tokio::test]
    async fn a_group_whose_leader_died_is_still_stopped() {
        use std::os::unix::process::CommandExt;
        // The leader starts a background sleeper in its group and exits at once, as an agent killed by SIGPIPE.
        let mut leader = std::process::Command::new("sh");
        leader
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .process_group(0)
            .stdout(std::process::Stdio::piped());
        let child = leader.spawn().unwrap();
        let (pgid, start) = (child.id(), process_start_time(child.id()));
        let out = child.wait_with_output().unwrap();
        let sleeper: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let rec = ChildRecord {
            pid: pgid,
            pgid,
            agent_id: "a".into(),
            project_id: "p".into(),
            task_id: None,
            started_at: 0,
            log_path: PathBuf::new(),
            proc_start: start,
        };
        assert!(!is_alive(&rec), "the leader is gone");
        assert!(group_is_ours(&rec), "its group lives on");
        crate::launch::stop_group(pgid, std::time::Duration::from_secs(2)).await;
        let gone = (0..50).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleeper), None).is_err() || is_zombie(sleeper as u32)
        });
        assert!(gone, "the background child survived");
        assert!(!group_is_ours(&rec));
        // A live process with a different start time at the recorded pid is not ours.
        let me = std::process::id();
        let other = ChildRecord {
            pid: me,
            pgid: me,
            proc_start: process_start_time(me).map(|s| s + 7),
            ..rec
        };
        assert!(!group_is_ours(&other));
    }
}
