//! Single-instance lock per settings file, with stale-lock takeover.
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another coordinator is already running for {config} (pid {pid} on {host}, since {started}); stop it first"
    )]
    Held {
        config: String,
        pid: u32,
        host: String,
        started: String,
    },
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

/// Where locks live: the per-user runtime folder, else a per-user folder in the temp dir. Either must be a real
/// folder (not a symlink) owned by us and closed to others; `/tmp` is shared, so another user may have created
/// (or planted a link at) our name first — then we fall back to a folder under our own data root.
fn lock_dir() -> Result<PathBuf, LockError> {
    let preferred = match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("agentpm-coordinator"),
        None => std::env::temp_dir().join(format!("agentpm-coordinator-{}", nix::unistd::getuid())),
    };
    pick_dir(preferred, crate::paths::coordinator_dir().join("locks"))
}

fn pick_dir(preferred: PathBuf, fallback: PathBuf) -> Result<PathBuf, LockError> {
    match private_dir(&preferred) {
        Ok(()) => Ok(preferred),
        Err(why) => {
            tracing::warn!(
                "lock folder {} is unsafe ({why}); using {}",
                preferred.display(),
                fallback.display()
            );
            private_dir(&fallback).map_err(|message| LockError::Io {
                path: fallback.display().to_string(),
                message,
            })?;
            Ok(fallback)
        }
    }
}

/// Create `dir` (0700) if missing, then check with lstat that it is a folder we own that nobody else can enter.
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.to_string()),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err("it is a symlink or not a folder".into());
    }
    if meta.uid() != nix::unistd::getuid().as_raw() {
        return Err(format!("it belongs to uid {}, not to us", meta.uid()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        // Ours but open to others (e.g. an old version's umask): close it rather than give up.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    }
    Ok(())
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
                existing = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
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
        Self::acquire_in(&lock_dir()?, config)
    }

    fn acquire_in(dir: &Path, config: &Path) -> Result<InstanceLock, LockError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |p: &Path, e: std::io::Error| LockError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        let path = dir.join(format!("coordinator-{}.lock", key(config)));
        let info_path = path.with_extension("info");
        // O_NOFOLLOW: a link planted at the lock's name fails instead of truncating or locking its target.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc_o_nofollow())
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let old: Option<Info> = read_no_follow(&info_path).and_then(|t| serde_json::from_slice(&t).ok());
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let i = old.unwrap_or_default();
                return Err(LockError::Held {
                    config: config.display().to_string(),
                    pid: i.pid,
                    host: i.host,
                    started: i.started,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, e)),
        }
        // The OS lock died with its holder; an info file left behind names who that was.
        let took_over = old.map(|i| {
            format!(
                "took over a stale lock from pid {} on {} (started {}); that coordinator did not exit cleanly",
                i.pid, i.host, i.started
            )
        });
        let info = Info {
            pid: std::process::id(),
            host: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            config: config.display().to_string(),
        };
        // Temp file + rename: a planted link at the info name is replaced, never followed.
        crate::safe_fs::write_atomic_path(
            &info_path,
            serde_json::to_string(&info).unwrap_or_default().as_bytes(),
            0o600,
        )
        .map_err(|e| io(&info_path, e))?;
        Ok(InstanceLock {
            path,
            took_over,
            file: Some(file),
        })
    }
}

fn libc_o_nofollow() -> i32 {
    rustix::fs::OFlags::NOFOLLOW.bits() as i32
}

/// The info file's bytes, or `None` when missing, unreadable or not a regular file (a link is not read).
fn read_no_follow(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.by_ref().take(64 * 1024).read_to_end(&mut buf).ok()?;
    Some(buf)
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
        assert!(
            InstanceLock::acquire(&other_cfg).is_ok(),
            "different configs must not conflict"
        );
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
        let saved = std::fs::read_to_string(&info)
            .unwrap()
            .replace(&format!("\"pid\":{}", std::process::id()), "\"pid\":4242");
        drop(l);
        std::fs::write(&info, saved).unwrap();
        let l = InstanceLock::acquire(&cfg).unwrap();
        assert!(
            l.took_over.as_deref().unwrap_or("").contains("4242"),
            "{:?}",
            l.took_over
        );
    }

    #[test]
    fn a_folder_of_another_user_or_a_link_is_not_used_for_locks() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let planted = d.path().join("planted");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let fallback = d.path().join("data/locks");
        assert_eq!(pick_dir(planted.clone(), fallback.clone()).unwrap(), fallback);
        // A folder open to others that is ours gets closed, then used.
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(pick_dir(open.clone(), fallback.clone()).unwrap(), open);
        assert_eq!(std::fs::metadata(&open).unwrap().permissions().mode() & 0o777, 0o700);
        if nix::unistd::getuid().is_root() {
            let theirs = d.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            nix::unistd::chown(&theirs, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert_eq!(pick_dir(theirs, fallback.clone()).unwrap(), fallback);
        }
    }

    #[test]
    fn planted_links_at_the_lock_and_info_names_are_never_followed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("locks");
        std::fs::create_dir(&dir).unwrap();
        let cfg = d.path().join("s.json");
        std::fs::write(&cfg, "{}").unwrap();
        let victim = d.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let lock = dir.join(format!("coordinator-{}.lock", key(&cfg)));
        std::os::unix::fs::symlink(&victim, lock.with_extension("info")).unwrap();
        let l = InstanceLock::acquire_in(&dir, &cfg).unwrap();
        assert!(l.took_over.is_none(), "a link is not read as a stale holder");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!std::fs::symlink_metadata(lock.with_extension("info"))
            .unwrap()
            .file_type()
            .is_symlink());
        drop(l);
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        assert!(matches!(
            InstanceLock::acquire_in(&dir, &cfg),
            Err(LockError::Io { .. })
        ));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }
}
