//! Per-run log files: naming under `<log root>/<agent_id>/`, tails, retention. OWNER: process helper.
use std::path::{Path, PathBuf};

/// `<root>/<agent_id>/<YYYYmmdd_HHMMSS_mmm>.log` (local time), made unique if it exists; dirs created.
/// `agent_id` must already be validated.
pub fn new_run_log(root: &Path, agent_id: &str) -> std::io::Result<PathBuf> {
    let _ = (root, agent_id);
    todo!()
}

/// Last `max_bytes` of a file as (lossy) UTF-8; empty when missing.
pub fn read_tail(path: &Path, max_bytes: u64) -> String {
    let _ = (path, max_bytes);
    todo!()
}

/// Run logs of one agent, newest first.
pub fn list_runs(root: &Path, agent_id: &str) -> Vec<PathBuf> {
    let _ = (root, agent_id);
    todo!()
}

/// Delete the oldest logs beyond `max_files` / `max_bytes` (0 = no limit), never one in `keep`.
/// Returns the deleted paths.
pub fn prune(root: &Path, agent_id: &str, max_files: usize, max_bytes: u64, keep: &[PathBuf]) -> Vec<PathBuf> {
    let _ = (root, agent_id, max_files, max_bytes, keep);
    todo!()
}
