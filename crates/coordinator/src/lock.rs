//! Single-instance lock per settings file, with stale-lock takeover.
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another coordinator is already running for {config} (pid {pid} on {host}, since {started}); stop it first")]
    Held { config: String, pid: u32, host: String, started: String },
    #[error("cannot create lock file {path}: {message}")]
    Io { path: String, message: String },
}

/// Held for the life of the process; released (file lock dropped, files removed) on drop.
pub struct InstanceLock {
    pub path: PathBuf,
    /// Set when a stale lock (dead pid) was taken over: a message naming the old pid/host.
    pub took_over: Option<String>,
    file: Option<std::fs::File>,
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Info {
    pid: u32,
    host: String,
    started: String,
    config: String,
}

fn runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("agentpm-coordinator"),
        None => std::env::temp_dir().join(format!("agentpm-coordinator-{}", nix::unistd::getuid())),
    }
}

/// FNV-1a: a stable, dependency-free name for the lock of one config path.
/// The nearest existing ancestor made canonical, plus the rest: the same path before and after the file (and
/// its folder) exist — the app may lock a settings.json it has not written yet, and the CLI lock it later by
/// another spelling of the path. Also keys the CLI's state file, so every spelling shares one.
pub fn canonical_config_path(config: &Path) -> PathBuf {
    let mut existing = config.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            return rest.iter().rev().fold(c, |acc: PathBuf, part| acc.join(part));
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                // A relative path with one component has the parent "": resolve it against the cwd.
                existing = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent.to_path_buf() };
            }
            _ => return config.to_path_buf(),
        }
    }
}

fn key(config: &Path) -> String {
    let canon = canonical_config_path(config);
    let mut h: u64 = 0xcbf29ce484222325;
    for b in canon.to_string_lossy().bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

impl InstanceLock {
    /// Lock keyed by the canonical path of `config` (the settings file or YAML in use).
    pub fn acquire(config: &Path) -> Result<InstanceLock, LockError> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = runtime_dir();
        let io = |p: &Path, e: std::io::Error| LockError::Io { path: p.display().to_string(), message: e.to_string() };
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(format!("coordinator-{}.lock", key(config)));
        let info_path = path.with_extension("info");
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| io(&path, e))?;
        let old: Option<Info> = std::fs::read_to_string(&info_path).ok().and_then(|t| serde_json::from_str(&t).ok());
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let i = old.unwrap_or_default();
                return Err(LockError::Held { config: config.display().to_string(), pid: i.pid, host: i.host, started: i.started });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        // The OS lock died with its holder; an info file left behind names who that was.
        let took_over = old.map(|i| format!("took over a stale lock from pid {} on {} (started {}); that coordinator did not exit cleanly", i.pid, i.host, i.started));
        let info = Info {
            pid: std::process::id(),
            host: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            started: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            config: config.display().to_string(),
        };
        let mut f = std::fs::File::create(&info_path).map_err(|e| io(&info_path, e))?;
        let _ = f.write_all(serde_json::to_string(&info).unwrap_or_default().as_bytes());
        Ok(InstanceLock { path, took_over, file: Some(file) })
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.with_extension("info"));
        if let Some(f) = self.file.take() {
            let _ = f.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_and_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("settings.json");
        std::fs::write(&cfg, "{}").unwrap();
        let first = InstanceLock::acquire(&cfg).unwrap();
        match InstanceLock::acquire(&cfg) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("expected Held, got {:?}", other.map(|_| ())),
        }
        let other_cfg = d.path().join("other.json");
        std::fs::write(&other_cfg, "{}").unwrap();
        assert!(InstanceLock::acquire(&other_cfg).is_ok(), "different configs must not conflict");
        drop(first);
        assert!(InstanceLock::acquire(&cfg).is_ok());
    }

    #[test]
    fn key_is_the_same_before_and_after_the_file_exists_and_through_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, d.path().join("link")).unwrap();
        let deep = key(&real.join("not-yet/settings.json"));
        std::fs::create_dir(real.join("not-yet")).unwrap();
        assert_eq!(deep, key(&d.path().join("link/not-yet/settings.json")));
        let before = key(&real.join("settings.json"));
        std::fs::write(real.join("settings.json"), "{}").unwrap();
        assert_eq!(before, key(&real.join("settings.json")));
        assert_eq!(before, key(&d.path().join("link/settings.json")));
    }

    #[test]
    fn stale_info_is_reported_on_takeover() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("s.json");
        std::fs::write(&cfg, "{}").unwrap();
        let l = InstanceLock::acquire(&cfg).unwrap();
        let info = l.path.with_extension("info");
        let saved = std::fs::read_to_string(&info).unwrap().replace(&format!("\"pid\":{}", std::process::id()), "\"pid\":4242");
        drop(l);
        std::fs::write(&info, saved).unwrap();
        let l = InstanceLock::acquire(&cfg).unwrap();
        assert!(l.took_over.as_deref().unwrap_or("").contains("4242"), "{:?}", l.took_over);
    }
}
