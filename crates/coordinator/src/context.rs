//! Agent context directory (protocol doc §5.4): the provider's instruction file from the agent's system
//! prompt, and its skills from zip archives, under `<working_dir>/.aiagent/agents/<agent_id>/`.

use crate::pm::AgentProfile;
use crate::safe_fs::{SafeDir, SafeFsError};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Caps for one skill archive: a hostile or broken archive cannot fill the disk.
const MAX_SKILL_BYTES: u64 = 50 * 1024 * 1024;
const MAX_SKILL_ENTRIES: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

impl From<SafeFsError> for ContextError {
    fn from(e: SafeFsError) -> Self {
        match e {
            SafeFsError::Io { path, message } => ContextError::Io { path, message },
            other => ContextError::Invalid(other.to_string()),
        }
    }
}

/// Write the context for claude/gemini and return the directory the agent should run in; other providers
/// run in the working directory itself. Everything below `working_dir` is written without following
/// symlinks (a cloned repository may carry hostile links in `.aiagent/`): a link on the way is an error.
pub fn prepare(
    working_dir: &Path,
    agent_id: &str,
    kind: &str,
    profile: &AgentProfile,
) -> Result<PathBuf, ContextError> {
    let config_name = match kind {
        "claude" => ".claude",
        "gemini" => ".gemini",
        _ => return Ok(working_dir.to_path_buf()),
    };
    crate::paths::validate_id(agent_id).map_err(|e| ContextError::Invalid(format!("agent id {agent_id:?}: {e}")))?;
    let root = SafeDir::open(working_dir)?;
    let aiagent = root.subdir(".aiagent")?;
    ensure_gitignore(&aiagent)?;
    let ctx = aiagent.subdir("agents")?.subdir(agent_id)?;
    let cfg = ctx.subdir(config_name)?;
    let wd = working_dir.display();
    let prompt = if profile.system_prompt.trim().is_empty() {
        "(no system prompt is set for this agent)"
    } else {
        profile.system_prompt.trim()
    };
    let instructions = format!(
        "# Agent Context\n\n{prompt}\n\n---\n\n## Working directory\n\nThe project lives in `{wd}`. Work there, using absolute paths.\n\n## Restrictions\n\nDo not create, change or delete anything under `{wd}/.aiagent/`: it belongs to the coordinator.\n"
    );
    cfg.write(
        if kind == "claude" { "CLAUDE.md" } else { "GEMINI.md" },
        instructions.as_bytes(),
        0o644,
    )?;
    if kind == "claude" {
        let settings = serde_json::json!({"permissions": {"additionalDirectories": [wd.to_string()]}});
        cfg.write(
            "settings.json",
            serde_json::to_string_pretty(&settings).unwrap_or_default().as_bytes(),
            0o644,
        )?;
    }
    write_skills(&cfg, profile)?;
    Ok(ctx.path().to_path_buf())
}

fn ensure_gitignore(aiagent: &SafeDir) -> Result<(), ContextError> {
    let existing = String::from_utf8_lossy(&aiagent.read(".gitignore")?.unwrap_or_default()).into_owned();
    let missing: Vec<&str> = ["logs/", "agents/"]
        .into_iter()
        .filter(|l| !existing.lines().any(|x| x.trim() == *l))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# AI Agent PM - auto-generated\n");
    for m in missing {
        text.push_str(m);
        text.push('\n');
    }
    Ok(aiagent.write(".gitignore", text.as_bytes(), 0o644)?)
}

/// Regenerate `skills/` from the profile: wiped first, removed when there are no skills.
fn write_skills(cfg: &SafeDir, profile: &AgentProfile) -> Result<(), ContextError> {
    cfg.remove_all("skills")?;
    if profile.skills.is_empty() {
        return Ok(());
    }
    let dir = cfg.subdir("skills")?;
    for skill in &profile.skills {
        if crate::paths::validate_id(&skill.directory_name).is_err() {
            tracing::warn!(
                "skipping skill {:?}: unsafe directory name {:?}",
                skill.name,
                skill.directory_name
            );
            continue;
        }
        if let Err(e) = extract_skill(&dir, &skill.directory_name, &skill.archive_base64) {
            tracing::warn!("skill {:?} not installed: {e}", skill.name);
            let _ = dir.remove_all(&skill.directory_name);
            if let Ok(d) = dir.subdir(&skill.directory_name) {
                let _ = d.write(
                    "EXTRACTION_ERROR.txt",
                    format!("This skill could not be installed: {e}\n").as_bytes(),
                    0o644,
                );
            }
        }
    }
    Ok(())
}

/// A zip entry's path as plain relative components (no absolute paths, no `..`), `None` when unsafe.
fn safe_entry_path(name: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The server stores archives with `SKILL.md` at the root (it strips a top folder on import, §5.4); older
/// archives carry one top folder. Strip that folder only when every entry is under it and the root has no
/// `SKILL.md`; the result is installed under `skills/<directory_name>/`.
fn strip_common_top(paths: &mut [PathBuf]) {
    if paths.iter().any(|p| p == Path::new("SKILL.md")) {
        return;
    }
    let Some(top) = paths
        .first()
        .and_then(|p| p.components().next())
        .map(|c| c.as_os_str().to_owned())
    else {
        return;
    };
    let all_under = paths
        .iter()
        .all(|p| p.components().next().map(|c| c.as_os_str() == top).unwrap_or(false));
    if all_under && paths.iter().any(|p| p.components().count() > 1) {
        for p in paths.iter_mut() {
            *p = p.components().skip(1).collect();
        }
    }
}

/// Extract one skill archive into `skills/<top>/`; returns the files written (relative to `dir`).
pub fn extract_skill(dir: &SafeDir, top: &str, archive_base64: &str) -> Result<Vec<PathBuf>, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(archive_base64.trim())
        .map_err(|e| format!("archive is not base64: {e}"))?;
    let mut zip =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("archive is not a zip: {e}"))?;
    if zip.len() > MAX_SKILL_ENTRIES {
        return Err(format!("archive has {} entries (limit {MAX_SKILL_ENTRIES})", zip.len()));
    }
    // Check every entry before writing anything: a bad archive installs nothing.
    let mut plan = Vec::new();
    let mut rels = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let f = zip.by_index(i).map_err(|e| e.to_string())?;
        let name = f.name().to_string();
        if f.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000) {
            return Err(format!("entry {name:?} is a symbolic link"));
        }
        let rel = safe_entry_path(&name).ok_or_else(|| format!("entry {name:?} would be written outside {top}/"))?;
        total += f.size();
        if total > MAX_SKILL_BYTES {
            return Err(format!(
                "archive unpacks to more than {} MiB",
                MAX_SKILL_BYTES / 1024 / 1024
            ));
        }
        plan.push((i, f.is_dir()));
        rels.push(rel);
    }
    strip_common_top(&mut rels);
    if !rels.iter().any(|p| p == Path::new("SKILL.md")) {
        return Err("archive has no SKILL.md at its root (nor under one top folder)".into());
    }
    let plan = plan
        .into_iter()
        .zip(rels)
        .filter(|(_, rel)| rel.components().next().is_some())
        .map(|((i, d), rel)| (i, rel, d))
        .collect();
    // Declared sizes may lie: read everything first, counting the bytes actually read, then write.
    let contents = read_entries(&mut zip, plan, MAX_SKILL_BYTES)?;
    let skill = dir.subdir(top).map_err(|e| e.to_string())?;
    let mut written = Vec::new();
    for (rel, body) in contents {
        let Some(body) = body else {
            skill.subdirs(&rel).map_err(|e| e.to_string())?;
            continue;
        };
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("entry {:?} has no file name", rel))?;
        let parent = match rel.parent().filter(|p| p.components().next().is_some()) {
            Some(p) => skill.subdirs(p).map_err(|e| e.to_string())?,
            None => SafeDir::open(skill.path()).map_err(|e| e.to_string())?,
        };
        parent.write(name, &body, 0o644).map_err(|e| e.to_string())?;
        written.push(Path::new(top).join(&rel));
    }
    Ok(written)
}

/// Entry paths with their bytes (`None` for directories).
type EntryContents = Vec<(PathBuf, Option<Vec<u8>>)>;

/// Read the planned entries (index, path, is_dir) into memory; fails once more than `limit` bytes in total
/// have actually been read, whatever the entries declare. Directories come back as `None`.
fn read_entries<R: std::io::Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    plan: Vec<(usize, PathBuf, bool)>,
    limit: u64,
) -> Result<EntryContents, String> {
    let mut out = Vec::new();
    let mut total = 0u64;
    for (i, rel, is_dir) in plan {
        if is_dir {
            out.push((rel, None));
            continue;
        }
        let f = zip.by_index(i).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        // At most one byte past what is left of the budget: enough to know it was exceeded.
        f.take(limit - total + 1)
            .read_to_end(&mut buf)
            .map_err(|e| e.to_string())?;
        total += buf.len() as u64;
        if total > limit {
            return Err(format!(
                "archive unpacks to more than {} bytes ({} MiB)",
                limit,
                limit / 1024 / 1024
            ));
        }
        out.push((rel, Some(buf)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pm::Skill;
    use std::io::Write;

    pub fn zip_of(entries: &[(&str, &str)], symlink: Option<&str>) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        for (name, body) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(body.as_bytes()).unwrap();
        }
        if let Some(s) = symlink {
            w.add_symlink(s, "/etc/passwd", opts).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn b64(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    fn skill(dir: &str, zip: &[u8]) -> Skill {
        Skill {
            id: "s".into(),
            name: dir.into(),
            directory_name: dir.into(),
            archive_base64: b64(zip),
        }
    }

    #[test]
    fn writes_instructions_settings_and_skills() {
        let d = tempfile::tempdir().unwrap();
        let profile = AgentProfile {
            id: "agt_a".into(),
            name: "A".into(),
            system_prompt: "You are the tester.".into(),
            skills: vec![
                skill(
                    "webapp-testing",
                    &zip_of(
                        &[
                            ("webapp-testing/SKILL.md", "# Web"),
                            ("webapp-testing/scripts/run.sh", "echo"),
                        ],
                        None,
                    ),
                ),
                skill("docs", &zip_of(&[("docs/SKILL.md", "# Docs")], None)),
            ],
        };
        let ctx = prepare(d.path(), "agt_a", "claude", &profile).unwrap();
        assert_eq!(ctx, d.path().join(".aiagent/agents/agt_a"));
        let md = std::fs::read_to_string(ctx.join(".claude/CLAUDE.md")).unwrap();
        assert!(md.contains("You are the tester.") && md.contains(".aiagent/"));
        assert!(ctx.join(".claude/skills/webapp-testing/scripts/run.sh").exists());
        assert!(ctx.join(".claude/skills/docs/SKILL.md").exists());
        let gi = std::fs::read_to_string(d.path().join(".aiagent/.gitignore")).unwrap();
        assert!(gi.contains("logs/") && gi.contains("agents/"));
        // Regenerated every spawn: no skills → no skills dir; other files survive.
        prepare(d.path(), "agt_a", "claude", &AgentProfile::default()).unwrap();
        assert!(!ctx.join(".claude/skills").exists());
        assert!(ctx.join(".claude/settings.json").exists());
        assert_eq!(prepare(d.path(), "agt_a", "custom", &profile).unwrap(), d.path());
    }

    #[test]
    fn bytes_actually_read_are_capped_in_total() {
        let z = zip_of(
            &[
                ("s/a", &"a".repeat(400)),
                ("s/b", &"b".repeat(400)),
                ("s/c", &"c".repeat(400)),
            ],
            None,
        );
        let plan = |n: usize| {
            (0..n)
                .map(|i| (i, PathBuf::from(format!("s/{i}")), false))
                .collect::<Vec<_>>()
        };
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        // Each entry is well under the limit; the running total is not.
        let e = read_entries(&mut zip, plan(3), 1000).unwrap_err();
        assert!(e.contains("more than 1000 bytes"), "{e}");
        let ok = read_entries(&mut zip, plan(2), 1000).unwrap();
        assert_eq!(ok.iter().map(|(_, b)| b.as_ref().unwrap().len()).sum::<usize>(), 800);
        assert_eq!(read_entries(&mut zip, plan(3), 1200).unwrap().len(), 3);
    }

    #[test]
    fn hostile_archives_write_nothing_outside() {
        let d = tempfile::tempdir().unwrap();
        let bad = [
            zip_of(&[("evil/SKILL.md", "ok"), ("evil/../../escaped.txt", "x")], None),
            zip_of(&[("/tmp/abs-escape.txt", "x")], None),
            zip_of(&[("evil/SKILL.md", "ok")], Some("evil/link")),
            zip_of(&[("other-dir/README.md", "x")], None),
        ];
        for z in &bad {
            let profile = AgentProfile {
                skills: vec![skill("evil", z)],
                ..Default::default()
            };
            let ctx = prepare(d.path(), "agt_a", "claude", &profile).unwrap();
            let skills = ctx.join(".claude/skills");
            assert!(skills.join("evil/EXTRACTION_ERROR.txt").exists());
            assert!(
                !skills.join("evil/SKILL.md").exists(),
                "partial install of a bad archive"
            );
        }
        assert!(!d.path().join(".aiagent/agents/escaped.txt").exists());
        assert!(!d.path().join("escaped.txt").exists());
        assert!(!Path::new("/tmp/abs-escape.txt").exists());
        // Unsafe names never become directories.
        let profile = AgentProfile {
            skills: vec![skill("../up", &zip_of(&[("../up/x", "x")], None))],
            ..Default::default()
        };
        prepare(d.path(), "agt_a", "gemini", &profile).unwrap();
        assert!(!d.path().join(".aiagent/agents/agt_a/up").exists());
        assert!(prepare(d.path(), "../../etc", "claude", &profile).is_err());
    }

    #[test]
    fn root_level_archives_install_under_the_directory_name() {
        let d = tempfile::tempdir().unwrap();
        // As the server stores them: SKILL.md at the root. And the older layout with one top folder.
        let root = zip_of(&[("SKILL.md", "# Root"), ("scripts/run.sh", "echo")], None);
        let topped = zip_of(&[("packed/SKILL.md", "# Top"), ("packed/ref/a.md", "a")], None);
        for kind in ["claude", "gemini"] {
            let profile = AgentProfile {
                skills: vec![skill("root-skill", &root), skill("top-skill", &topped)],
                ..Default::default()
            };
            let ctx = prepare(d.path(), "agt_a", kind, &profile).unwrap();
            let skills = ctx.join(format!(".{kind}/skills"));
            assert_eq!(
                std::fs::read_to_string(skills.join("root-skill/SKILL.md")).unwrap(),
                "# Root"
            );
            assert!(skills.join("root-skill/scripts/run.sh").exists());
            assert_eq!(
                std::fs::read_to_string(skills.join("top-skill/SKILL.md")).unwrap(),
                "# Top"
            );
            assert!(skills.join("top-skill/ref/a.md").exists());
            assert!(!skills.join("root-skill/EXTRACTION_ERROR.txt").exists());
        }
    }

    #[test]
    fn symlinks_planted_in_aiagent_are_refused_and_victims_untouched() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir_all(victim.join("skills/mine")).unwrap();
        std::fs::write(victim.join("CLAUDE.md"), "victim").unwrap();
        std::fs::write(t.path().join("victim-file"), "keep").unwrap();
        let wd = t.path().join("proj");
        std::fs::create_dir_all(wd.join(".aiagent/agents/agt_a")).unwrap();
        symlink(&victim, wd.join(".aiagent/agents/agt_a/.claude")).unwrap();
        symlink(t.path().join("victim-file"), wd.join(".aiagent/.gitignore")).unwrap();
        let profile = AgentProfile {
            skills: vec![skill("s", &zip_of(&[("SKILL.md", "x")], None))],
            ..Default::default()
        };
        let e = prepare(&wd, "agt_a", "claude", &profile).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(victim.join("CLAUDE.md")).unwrap(), "victim");
        assert!(victim.join("skills/mine").is_dir());
        assert_eq!(std::fs::read_to_string(t.path().join("victim-file")).unwrap(), "keep");
    }
}
