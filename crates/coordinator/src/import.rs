//! `import-yaml`: move passkeys from the Python YAML into the secret store and write settings.json.

use crate::config::{ConfigError, Settings};
use crate::legacy_yaml::{self, PasskeySource};
use crate::secrets::{self, SecretError, SecretStore};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub scrub: bool,
    pub overwrite: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Agents whose passkey was stored.
    pub moved: Vec<String>,
    /// Same value already stored.
    pub unchanged: Vec<String>,
    /// A different value is stored and was not overwritten.
    pub conflicts: Vec<String>,
    /// No passkey in the YAML (empty, or an unset `${VAR}`).
    pub missing: Vec<String>,
    /// "moved" / "unchanged" / "conflict" / "missing"
    pub token: Option<String>,
    pub settings_path: PathBuf,
    pub backup: Option<PathBuf>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("secret store: {0}; nothing was scrubbed")]
    Secrets(#[from] SecretError),
    #[error("{file}: {message}")]
    Io { file: String, message: String },
}

/// Store one secret unless a different one is there (then report a conflict, unless `overwrite`).
fn store_one(store: &dyn SecretStore, account: &str, value: &str, overwrite: bool) -> Result<&'static str, SecretError> {
    match store.get(account)? {
        Some(existing) if existing == value => Ok("unchanged"),
        Some(_) if !overwrite => Ok("conflict"),
        _ => {
            store.set(account, value)?;
            Ok("moved")
        }
    }
}

pub fn import_yaml(yaml: &Path, store: &dyn SecretStore, settings_path: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let original = std::fs::read(yaml).map_err(|e| ImportError::Io { file: yaml.display().to_string(), message: e.to_string() })?;
    let text = String::from_utf8(original.clone()).map_err(|_| ImportError::Io { file: yaml.display().to_string(), message: "not UTF-8 text".into() })?;
    let legacy = legacy_yaml::parse(&text, yaml)?;
    let mut report = ImportReport { settings_path: settings_path.to_path_buf(), warnings: Vec::new(), ..Default::default() };
    for (id, src) in &legacy.passkeys {
        match src.value() {
            None => report.missing.push(id.clone()),
            Some(v) => {
                crate::redact::global().add(&v);
                match store_one(store, &secrets::agent_account(id), &v, opts.overwrite)? {
                    "moved" => report.moved.push(id.clone()),
                    "unchanged" => report.unchanged.push(id.clone()),
                    _ => report.conflicts.push(id.clone()),
                }
            }
        }
    }
    report.token = Some(match legacy.token.as_ref().and_then(PasskeySource::value) {
        None => "missing".to_string(),
        Some(t) => {
            crate::redact::global().add(&t);
            store_one(store, secrets::TOKEN_ACCOUNT, &t, opts.overwrite)?.to_string()
        }
    });

    // Merge into existing settings: agents and providers are added or updated, everything else from the YAML.
    let mut settings = Settings::load(settings_path)?;
    let y = legacy.settings;
    for (id, a) in y.agents {
        settings.agents.entry(id).or_insert(a);
    }
    for (name, p) in y.providers {
        if !crate::config::builtin_providers().get(&name).is_some_and(|b| *b == p) {
            settings.providers.insert(name, p);
        }
    }
    settings.server = y.server.or(settings.server);
    settings.root_agent_id = y.root_agent_id.or(settings.root_agent_id);
    settings.polling_interval_secs = y.polling_interval_secs;
    settings.max_concurrent = y.max_concurrent;
    settings.debug = y.debug;
    settings.error_protection = y.error_protection;
    if y.log_upload.enabled {
        settings.log_upload = y.log_upload;
    }
    settings.save(settings_path)?;

    if opts.scrub {
        if !report.conflicts.is_empty() {
            report.warnings.push("not scrubbed: some passkeys conflict with stored ones (re-run with --overwrite)".into());
        } else {
            report.backup = Some(scrub(yaml, &original, &text)?);
        }
    }
    report.warnings.extend(legacy.warnings.into_iter().filter(|w| !w.contains("plain text")));
    Ok(report)
}

/// Backup first (byte-exact, 0600), then rewrite the YAML with every secret value blanked, keeping
/// comments and the rest of each line.
fn scrub(yaml: &Path, original: &[u8], text: &str) -> Result<PathBuf, ImportError> {
    let io = |p: &Path, e: std::io::Error| ImportError::Io { file: p.display().to_string(), message: e.to_string() };
    let mut bak = yaml.as_os_str().to_owned();
    bak.push(".bak");
    let bak = PathBuf::from(bak);
    crate::paths::write_atomic(&bak, original, 0o600).map_err(|e| io(&bak, e))?;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let key = ["passkey:", "coordinator_token:"].into_iter().find(|k| trimmed.starts_with(k));
        match key {
            Some(k) => {
                let indent = &line[..line.len() - trimmed.len()];
                let nl = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&format!("{indent}{k} \"\"  # moved to the secret store by agentpm-coordinator{nl}"));
            }
            None => out.push_str(line),
        }
    }
    let mode = std::fs::metadata(yaml).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777).unwrap_or(0o600);
    crate::paths::write_atomic(yaml, out.as_bytes(), mode).map_err(|e| io(yaml, e))?;
    Ok(bak)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;

    const YAML: &str = "# export\npolling_interval: 7\ncoordinator_token: tok-abcdef\nagents:\n  agt_a:\n    passkey: pk-aaaa1111   # inline comment\n  agt_b:\n    passkey: ${IMPORT_UNIT_UNSET}\n";

    #[test]
    fn import_is_idempotent_reports_conflicts_and_scrubs_with_backup() {
        std::env::remove_var("IMPORT_UNIT_UNSET");
        let d = tempfile::tempdir().unwrap();
        let yaml = d.path().join("c.yaml");
        std::fs::write(&yaml, YAML).unwrap();
        let settings = d.path().join("settings.json");
        let store = MemoryStore::new();
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.moved, vec!["agt_a"]);
        assert_eq!(r.missing, vec!["agt_b"]);
        assert_eq!(r.token.as_deref(), Some("moved"));
        assert_eq!(std::fs::read_to_string(&yaml).unwrap(), YAML);
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.unchanged, vec!["agt_a"]);
        store.set("agent:agt_a", "different").unwrap();
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions { scrub: true, overwrite: false }).unwrap();
        assert_eq!(r.conflicts, vec!["agt_a"]);
        assert!(r.backup.is_none(), "scrubbed despite a conflict");
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions { scrub: true, overwrite: true }).unwrap();
        assert_eq!(store.get("agent:agt_a").unwrap().as_deref(), Some("pk-aaaa1111"));
        let bak = r.backup.unwrap();
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), YAML);
        let scrubbed = std::fs::read_to_string(&yaml).unwrap();
        assert!(!scrubbed.contains("pk-aaaa1111") && !scrubbed.contains("tok-abcdef"), "{scrubbed}");
        assert!(scrubbed.contains("# export") && scrubbed.contains("polling_interval: 7"));
        let s = std::fs::read_to_string(&settings).unwrap();
        assert!(s.contains("agt_a") && !s.contains("pk-aaaa1111"));
        // Re-importing the scrubbed file loses nothing.
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.missing.len(), 2);
        assert_eq!(store.get("agent:agt_a").unwrap().as_deref(), Some("pk-aaaa1111"));
    }
}
