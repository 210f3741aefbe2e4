//! Agent context directory (CLAUDE.md / GEMINI.md from the profile's system prompt, skills from zip archives).
//! OWNER: process helper (issue 8).

/// Placeholder until the context module lands.
pub fn prepare(working_dir: &std::path::Path, agent_id: &str, kind: &str, profile: &crate::pm::AgentProfile) -> Result<std::path::PathBuf, String> {
    let _ = (agent_id, kind, profile);
    Ok(working_dir.to_path_buf())
}
