//! Platform directories (fixed in docs/product.md), id validation, and safe file writes.

use std::path::{Path, PathBuf};

/// Environment variable that moves the whole data root (tests, portable setups).
pub const DATA_DIR_ENV: &str = "AGENTPM_DATA_DIR";

/// `~/Library/Application Support/AIAgentPM` on macOS, `$XDG_DATA_HOME/AIAgentPM` on Linux.
pub fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    #[cfg(target_os = "macos")]
    {
        if let Some(home) = directories::BaseDirs::new() {
            return home.home_dir().join("Library/Application Support/AIAgentPM");
        }
    }
    if let Some(base) = directories::BaseDirs::new() {
        return base.data_dir().join("AIAgentPM");
    }
    PathBuf::from(".").join("AIAgentPM")
}

pub fn coordinator_dir() -> PathBuf {
    data_root().join("coordinator")
}

pub fn settings_path() -> PathBuf {
    coordinator_dir().join("settings.json")
}

pub fn state_path() -> PathBuf {
    coordinator_dir().join("state.json")
}

pub fn default_log_root() -> PathBuf {
    data_root().join("agent_logs")
}

/// The AI Agent PM server's default socket (the server's own convention, not the Python runner's).
pub fn default_socket() -> PathBuf {
    data_root().join("mcp.sock")
}

/// `~/x` → `$HOME/x`.
pub fn expand_tilde(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(base) = directories::BaseDirs::new() {
            return base.home_dir().join(rest).display().to_string();
        }
    }
    s.to_string()
}

/// Ids from the server or the user become directory names: allow a conservative set only.
/// Returns a human-readable reason on failure.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("an id must not be empty".into());
    }
    if id.len() > 128 {
        return Err(format!("an id must be at most 128 bytes (got {})", id.len()));
    }
    if id == "." || id == ".." {
        return Err("an id must not be `.` or `..`".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
    {
        return Err(format!(
            "an id may contain only letters, digits, `_`, `-`, `.` and `@` (found {c:?})"
        ));
    }
    Ok(())
}

/// Join one validated component under `base`; never escapes `base`.
pub fn join_id(base: &Path, id: &str) -> Result<PathBuf, String> {
    validate_id(id)?;
    Ok(base.join(id))
}

/// Write `bytes` to `path` atomically: an exclusive temp file in the same dir (never a followed link), fsync,
/// rename. Creates parent dirs.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    crate::safe_fs::write_atomic_path(path, bytes, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_ids_are_rejected() {
        for bad in [
            "",
            "..",
            ".",
            "../../etc",
            "/etc/passwd",
            "a/b",
            "a\0b",
            "ü",
            &"x".repeat(200),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["agt_dev", "prj-1", "human.lead", "a@b"] {
            assert!(validate_id(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn atomic_write_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        write_atomic(&p, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
