//! Run logs for the window: listing, and reading only run logs below the log root.
//!
//! The window's input is not trusted (issue 15 item 11): a path from `read_log`/`open_log` is resolved
//! (symlinks followed, `..` removed) and must then be `<log root>/<agent id>/<name>.log`, the shape of a run
//! log; the log root itself may not be a system folder or the home folder, whatever a settings file says.

use super::{AppCore, RunFile};
use crate::error::{AppError, AppResult};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Folders that hold the system or other people's data: never a log root.
const SYSTEM: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/mnt",
    "/media",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/tmp",
    "/Applications",
    "/Library",
    "/System",
    "/Users",
    "/Volumes",
    "/cores",
    "/private",
    "/private/tmp",
    "/private/var",
];
/// Nothing below these is a log root either.
const SYSTEM_TREES: &[&str] = &["/boot", "/dev", "/etc", "/proc", "/sys", "/System", "/private/etc"];

/// `..` and `.` removed without touching the disk (the folder need not exist yet).
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn is_system(p: &Path) -> bool {
    let home = std::env::var_os("HOME").map(|h| lexical(Path::new(&h)));
    SYSTEM.iter().any(|s| p == Path::new(s))
        || SYSTEM_TREES.iter().any(|s| p.starts_with(s))
        || home.is_some_and(|h| p == h)
}

/// May `dir` be the log root? Err is the hint shown under the field. Judged as written and, when it
/// exists, by where it really leads (a symlink to `/etc` is `/etc`).
pub fn check_log_root(dir: &Path) -> Result<(), String> {
    let real = std::fs::canonicalize(dir).ok();
    if !dir.is_absolute() || is_system(&lexical(dir)) || real.as_deref().is_some_and(is_system) {
        return Err(format!(
            "a system folder (or the home folder itself) cannot hold the agents' logs: the window reads run logs below it. Choose a folder of its own, e.g. {}",
            coordinator::paths::default_log_root().display()
        ));
    }
    Ok(())
}

/// What a checked path may be.
#[derive(Clone, Copy, PartialEq)]
pub enum LogTarget {
    RunLog,
    RunLogOrAgentDir,
}

/// The resolved path of a run log (or agent log folder) below `root`, or why not.
pub fn checked_path(root: &Path, path: &Path, target: LogTarget) -> AppResult<PathBuf> {
    check_log_root(root).map_err(|_| {
        AppError::Message(format!(
            "the log folder {} is a system folder: no logs are read from it",
            root.display()
        ))
    })?;
    let root =
        std::fs::canonicalize(root).map_err(|e| AppError::Message(format!("log folder {}: {e}", root.display())))?;
    let p = std::fs::canonicalize(path).map_err(|e| AppError::Message(format!("{}: {e}", path.display())))?;
    let Ok(rel) = p.strip_prefix(&root) else {
        return Err(AppError::Message(format!(
            "{} is not inside the log folder {}",
            path.display(),
            root.display()
        )));
    };
    let parts: Vec<&str> = rel
        .components()
        .filter_map(|c| if let Component::Normal(s) = c { s.to_str() } else { None })
        .collect();
    let agent_ok = parts
        .first()
        .is_some_and(|a| coordinator::paths::validate_id(a).is_ok());
    let ok = match parts.as_slice() {
        // The shape `coordinator::logs::list_runs` lists: a provider's own debug log is not a run log.
        [_, name] => agent_ok && name.ends_with(".log") && !name.ends_with(".debug.log") && p.is_file(),
        [_] => agent_ok && target == LogTarget::RunLogOrAgentDir && p.is_dir(),
        _ => false,
    };
    if !ok {
        return Err(AppError::Message(format!(
            "{} is not a run log in the log folder {}",
            path.display(),
            root.display()
        )));
    }
    Ok(p)
}

/// The last `max_bytes` of a checked run log. Opened without following a symlink and checked to be the very
/// file that was checked, so a path swapped in between cannot lead elsewhere.
fn read_tail(p: &Path, max_bytes: u64) -> AppResult<String> {
    let io = |e: std::io::Error| AppError::Message(format!("{}: {e}", p.display()));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(p)
        .map_err(io)?;
    let (opened, checked) = (f.metadata().map_err(io)?, std::fs::symlink_metadata(p).map_err(io)?);
    if !opened.is_file() || (opened.dev(), opened.ino()) != (checked.dev(), checked.ino()) {
        return Err(AppError::Message(format!(
            "{} changed while it was opened",
            p.display()
        )));
    }
    if opened.len() > max_bytes {
        f.seek(SeekFrom::Start(opened.len() - max_bytes)).map_err(io)?;
    }
    let mut buf = Vec::new();
    f.take(max_bytes).read_to_end(&mut buf).map_err(io)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

impl AppCore {
    async fn log_root(&self) -> PathBuf {
        Self::effective(&*self.inner.lock().await).log_root()
    }

    /// Run logs of an agent, newest first.
    pub async fn list_runs(&self, agent_id: &str) -> Vec<RunFile> {
        coordinator::logs::list_runs(&self.log_root().await, agent_id)
            .into_iter()
            .map(|p| RunFile {
                name: p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0),
                path: p,
            })
            .collect()
    }

    /// A path the window may open or reveal: see `checked_path`.
    pub async fn checked_log_path(&self, path: &Path, target: LogTarget) -> AppResult<PathBuf> {
        checked_path(&self.log_root().await, path, target)
    }

    pub async fn read_log(&self, path: &Path, max_bytes: u64) -> AppResult<String> {
        let p = self.checked_log_path(path, LogTarget::RunLog).await?;
        read_tail(&p, max_bytes.clamp(1024, 4 * 1024 * 1024))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use super::*;

    #[tokio::test]
    async fn logs_outside_the_log_folder_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.log_dir = Some(d.path().join("logs"));
        c.save_settings(s).await.unwrap();
        std::fs::create_dir_all(d.path().join("logs/agt_a")).unwrap();
        std::fs::write(d.path().join("logs/agt_a/1.log"), "hello").unwrap();
        assert_eq!(
            c.read_log(&d.path().join("logs/agt_a/1.log"), 10).await.unwrap(),
            "hello"
        );
        assert!(c.read_log(&d.path().join("settings.json"), 10).await.is_err());
        assert!(c.read_log(&d.path().join("logs/../settings.json"), 10).await.is_err());
        assert_eq!(c.list_runs("agt_a").await.len(), 1);
    }

    #[test]
    fn only_run_logs_below_the_root_are_readable_and_symlinks_do_not_escape() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("logs");
        std::fs::create_dir_all(root.join("agt_a")).unwrap();
        std::fs::write(root.join("agt_a/1.log"), "run").unwrap();
        std::fs::write(root.join("agt_a/1.debug.log"), "raw").unwrap();
        std::fs::write(root.join("agt_a/notes.txt"), "x").unwrap();
        std::fs::write(root.join("top.log"), "x").unwrap();
        let secret = d.path().join("secret.log");
        std::fs::write(&secret, "secret").unwrap();
        std::os::unix::fs::symlink(&secret, root.join("agt_a/2.log")).unwrap();
        std::os::unix::fs::symlink(d.path(), root.join("agt_b")).unwrap();

        let run = checked_path(&root, &root.join("agt_a/1.log"), LogTarget::RunLog).unwrap();
        assert_eq!(read_tail(&run, 1024).unwrap(), "run");
        for bad in [
            "agt_a/1.debug.log",
            "agt_a/notes.txt",
            "top.log",
            "agt_a/2.log",
            "agt_b/secret.log",
            "agt_a/../../secret.log",
            "agt_a",
        ] {
            assert!(
                checked_path(&root, &root.join(bad), LogTarget::RunLog).is_err(),
                "{bad} was allowed"
            );
        }
        // An agent's folder may be revealed, not read.
        assert!(checked_path(&root, &root.join("agt_a"), LogTarget::RunLogOrAgentDir).is_ok());
        // A root that leads to a system folder reads nothing, even if a settings file says so.
        assert!(
            checked_path(Path::new("/"), Path::new("/etc/passwd"), LogTarget::RunLog)
                .unwrap_err()
                .to_string()
                .contains("system folder")
        );
        let link = d.path().join("root-link");
        std::os::unix::fs::symlink("/", &link).unwrap();
        assert!(checked_path(&link, &link.join("etc/passwd"), LogTarget::RunLog).is_err());
    }

    #[test]
    fn system_folders_and_home_are_not_log_roots() {
        for bad in [
            "/",
            "/etc",
            "/etc/ssh",
            "/usr",
            "/var/log",
            "/tmp/../etc",
            "/System/Library",
            "relative/logs",
        ] {
            assert!(check_log_root(Path::new(bad)).is_err(), "{bad} accepted");
        }
        if let Some(home) = std::env::var_os("HOME") {
            assert!(
                check_log_root(Path::new(&home)).is_err(),
                "the home folder was accepted"
            );
            assert!(check_log_root(&Path::new(&home).join(".local/share/agentpm/agent_logs")).is_ok());
        }
        assert!(check_log_root(Path::new("/var/log/agentpm")).is_ok());
        assert!(check_log_root(&coordinator::paths::default_log_root()).is_ok());
    }

    #[test]
    fn a_file_swapped_for_a_symlink_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
        assert!(read_tail(&p, 1024).is_err(), "read_tail followed a symlink");
    }
}
