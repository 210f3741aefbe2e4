//! Single-instance lock per settings file, with stale-lock takeover. OWNER: process helper.
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
}

impl InstanceLock {
    /// Lock keyed by the canonical path of `config` (the settings file or YAML in use).
    pub fn acquire(config: &Path) -> Result<InstanceLock, LockError> {
        let _ = config;
        todo!()
    }
}
