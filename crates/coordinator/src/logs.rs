//! Per-run log files: naming under `<log root>/<agent_id>/`, tails, retention.
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// `<root>/<agent_id>/<YYYYmmdd_HHMMSS_mmm>.log` (local time), made unique if it exists; dirs created (0700).
/// `agent_id` must already be validated.
pub fn new_run_log(root: &Path, agent_id: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir =
        crate::paths::join_id(root, agent_id).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    let stem = chrono::Local::now().format("%Y%m%d_%H%M%S_%3f").to_string();
    for n in 0..1000 {
        let name = if n == 0 {
            format!("{stem}.log")
        } else {
            format!("{stem}-{n}.log")
        };
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("could not find a free log file name"))
}

/// Last `max_bytes` of a file as (lossy) UTF-8; empty when missing.
pub fn read_tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > max_bytes {
        let _ = f.seek(SeekFrom::Start(len - max_bytes));
    }
    let mut buf = Vec::new();
    let _ = f.take(max_bytes).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Run logs of one agent, newest first (names sort by time).
pub fn list_runs(root: &Path, agent_id: &str) -> Vec<PathBuf> {
    let Ok(dir) = crate::paths::join_id(root, agent_id) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log") && !p.to_string_lossy().ends_with(".debug.log"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v
}

/// Delete the oldest logs beyond `max_files` / `max_bytes` (0 = no limit), never one in `keep`.
/// Returns the deleted paths.
pub fn prune(root: &Path, agent_id: &str, max_files: usize, max_bytes: u64, keep: &[PathBuf]) -> Vec<PathBuf> {
    let runs = list_runs(root, agent_id);
    let mut deleted = Vec::new();
    let mut total = 0u64;
    for (i, p) in runs.iter().enumerate() {
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        total += size;
        let over = (max_files > 0 && i >= max_files) || (max_bytes > 0 && total > max_bytes && i > 0);
        if over && !keep.contains(p) && std::fs::remove_file(p).is_ok() {
            let _ = std::fs::remove_file(p.with_extension("debug.log"));
            deleted.push(p.clone());
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_listed_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let a = new_run_log(d.path(), "agt_a").unwrap();
        let b = new_run_log(d.path(), "agt_a").unwrap();
        assert_ne!(a, b);
        assert_eq!(list_runs(d.path(), "agt_a").len(), 2);
        assert!(new_run_log(d.path(), "../etc").is_err());
    }

    #[test]
    fn prune_keeps_running_logs_and_caps() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("agt_a");
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("2026010{i}_000000_000.log")), vec![b'x'; 100]).unwrap();
        }
        let oldest = dir.join("20260100_000000_000.log");
        let deleted = prune(d.path(), "agt_a", 2, 0, std::slice::from_ref(&oldest));
        assert_eq!(deleted.len(), 2);
        assert!(oldest.exists(), "a running instance's log was deleted");
        assert_eq!(list_runs(d.path(), "agt_a").len(), 3);
        let deleted = prune(d.path(), "agt_a", 0, 150, &[]);
        assert_eq!(deleted.len(), 2);
    }

    #[test]
    fn tail_reads_the_end() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, "a".repeat(100) + "END").unwrap();
        assert_eq!(read_tail(&p, 3), "END");
        assert_eq!(read_tail(&d.path().join("missing"), 10), "");
    }
}
