//! `import-yaml`: move passkeys from the Python YAML into the secret store and write settings.json.

use crate::config::{ConfigError, Settings};
use crate::legacy_yaml::{self, PasskeySource};
use crate::secrets::{self, SecretError, SecretStore};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub scrub: bool,
    pub overwrite: bool,
    /// With `scrub`: keep a byte-exact copy of the original (it holds the secrets in plain text) as `<file>.bak`.
    /// Off by default: the scrub only writes once the rewritten file re-parses with no secret left and every
    /// secret is in the store, so no plaintext copy needs to rest on disk.
    pub keep_backup: bool,
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
    /// `--scrub` found no secret left in the YAML (nothing written, no backup).
    pub already_scrubbed: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {message}; nothing was imported")]
    Invalid { file: String, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("secret store: {0}; nothing was scrubbed")]
    Secrets(#[from] SecretError),
    #[error("{file}: {message}")]
    Io { file: String, message: String },
    /// `--scrub` could not blank every secret (e.g. a flow-style `agt_a: {passkey: x}` entry).
    #[error("{file}: cannot remove the secret of {who} automatically{detail}; nothing was imported or scrubbed: move those values to `passkey:` / `coordinator_token:` lines of their own (or remove them by hand) and re-run")]
    ScrubIncomplete { file: String, who: String, detail: String },
}

/// Store one secret unless a different one is there (then report a conflict, unless `overwrite`).
fn store_one(
    store: &dyn SecretStore,
    account: &str,
    value: &str,
    overwrite: bool,
) -> Result<&'static str, SecretError> {
    match store.get(account)? {
        Some(existing) if existing == value => Ok("unchanged"),
        Some(_) if !overwrite => Ok("conflict"),
        _ => {
            store.set(account, value)?;
            Ok("moved")
        }
    }
}

pub fn import_yaml(
    yaml: &Path,
    store: &dyn SecretStore,
    settings_path: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let original = std::fs::read(yaml).map_err(|e| ImportError::Io {
        file: yaml.display().to_string(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8(original.clone()).map_err(|_| ImportError::Io {
        file: yaml.display().to_string(),
        message: "not UTF-8 text".into(),
    })?;
    let legacy = legacy_yaml::parse(&text, yaml)?;
    // Plan the scrub first: when it cannot remove every secret, nothing is imported, stored or written.
    let has_plain = legacy.passkeys.values().any(|p| matches!(p, PasskeySource::Plain(_)))
        || matches!(legacy.token, Some(PasskeySource::Plain(_)));
    let scrubbed = if opts.scrub && has_plain {
        Some(scrubbed_text(yaml, &text)?)
    } else {
        None
    };
    // A secret too short to be real (or to be masked in logs) stops the import before anything is stored.
    let short = legacy
        .passkeys
        .iter()
        .filter_map(|(id, src)| {
            src.value()
                .and_then(|v| secrets::check_secret(&format!("passkey of {id}"), &v).err())
        })
        .chain(
            legacy
                .token
                .as_ref()
                .and_then(PasskeySource::value)
                .and_then(|v| secrets::check_secret("coordinator_token", &v).err()),
        )
        .collect::<Vec<_>>();
    if !short.is_empty() {
        return Err(ImportError::Invalid {
            file: yaml.display().to_string(),
            message: short.join("; "),
        });
    }
    let mut report = ImportReport {
        settings_path: settings_path.to_path_buf(),
        warnings: Vec::new(),
        ..Default::default()
    };
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
    // Only what the YAML sets explicitly replaces existing settings (and is pinned: it wins over the
    // server's dynamic configuration); everything else keeps its settings.json value.
    let set = |f: &str| y.pinned.iter().any(|p| p == f);
    if set("polling_interval_secs") {
        settings.polling_interval_secs = y.polling_interval_secs;
    }
    if set("max_concurrent") {
        settings.max_concurrent = y.max_concurrent;
    }
    if set("debug") {
        settings.debug = y.debug;
    }
    if set("log_dir") {
        settings.log_dir = y.log_dir.clone();
    }
    if set("error_protection") {
        settings.error_protection = y.error_protection.clone();
    }
    if set("log_upload") && y.log_upload.enabled {
        settings.log_upload = y.log_upload.clone();
    }
    for f in &y.pinned {
        if !settings.pinned.contains(f) {
            settings.pinned.push(f.clone());
        }
    }
    settings.save(settings_path)?;

    if opts.scrub {
        if report.has_conflicts() {
            report
                .warnings
                .push("not scrubbed: some secrets conflict with stored ones (re-run with --overwrite)".into());
        } else if let Some(out) = scrubbed {
            report.backup = scrub(yaml, &original, &out, opts.keep_backup)?;
        } else {
            report.already_scrubbed = true;
        }
    }
    report
        .warnings
        .extend(legacy.warnings.into_iter().filter(|w| !w.contains("plain text")));
    Ok(report)
}

impl ImportReport {
    /// A passkey or the coordinator token differs from the stored one (not overwritten).
    pub fn has_conflicts(&self) -> bool {
        !self.conflicts.is_empty() || self.token.as_deref() == Some("conflict")
    }
}

/// The value part of a `key: value  # comment` line, unquoted.
fn line_value(rest: &str) -> String {
    let v = rest.trim();
    if let Some(q) = v.chars().next().filter(|c| *c == '"' || *c == '\'') {
        return match v[1..].find(q) {
            Some(end) => v[1..1 + end].trim().to_string(),
            None => v.to_string(),
        };
    }
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    v.trim().to_string()
}

/// The YAML with every secret value blanked, keeping comments, `${VAR}` references and the rest of each line.
/// The result is parsed again: if any passkey or the token is still a plain value, this fails naming them.
fn scrubbed_text(yaml: &Path, text: &str) -> Result<String, ImportError> {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let key = ["passkey:", "coordinator_token:"]
            .into_iter()
            .find(|k| trimmed.starts_with(k));
        match key {
            Some(k) => {
                let value = line_value(&trimmed[k.len()..]);
                let is_ref = value.starts_with("${") && value.ends_with('}');
                if value.is_empty() || is_ref {
                    out.push_str(line);
                    continue;
                }
                let indent = &line[..line.len() - trimmed.len()];
                let nl = if line.ends_with('\n') { "\n" } else { "" };
                out.push_str(&format!(
                    "{indent}{k} \"\"  # moved to the secret store by agentpm-coordinator{nl}"
                ));
            }
            None => out.push_str(line),
        }
    }
    let incomplete = |who: String, detail: String| ImportError::ScrubIncomplete {
        file: yaml.display().to_string(),
        who,
        detail,
    };
    let check = legacy_yaml::parse(&out, yaml)
        .map_err(|_| incomplete("some entries".into(), " (the rewritten file would not parse)".into()))?;
    let mut left: Vec<String> = check
        .passkeys
        .iter()
        .filter(|(_, p)| matches!(p, PasskeySource::Plain(_)))
        .map(|(id, _)| id.clone())
        .collect();
    if matches!(check.token, Some(PasskeySource::Plain(_))) {
        left.push("coordinator_token".into());
    }
    if !left.is_empty() {
        return Err(incomplete(left.join(", "), String::new()));
    }
    Ok(out)
}

/// Write the scrubbed YAML, atomically. With `keep_backup`, a backup first (byte-exact, 0600; an existing
/// backup is never overwritten: `.bak.1`, `.bak.2`, …).
fn scrub(yaml: &Path, original: &[u8], out: &str, keep_backup: bool) -> Result<Option<PathBuf>, ImportError> {
    let io = |p: &Path, e: std::io::Error| ImportError::Io {
        file: p.display().to_string(),
        message: e.to_string(),
    };
    let name = |suffix: String| {
        let mut b = yaml.as_os_str().to_owned();
        b.push(suffix);
        PathBuf::from(b)
    };
    let mut backup = None;
    if keep_backup {
        let mut bak = name(".bak".into());
        let mut n = 1;
        while bak.symlink_metadata().is_ok() {
            bak = name(format!(".bak.{n}"));
            n += 1;
        }
        crate::paths::write_atomic(&bak, original, 0o600).map_err(|e| io(&bak, e))?;
        backup = Some(bak);
    }
    let mode = std::fs::metadata(yaml)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o600);
    crate::paths::write_atomic(yaml, out.as_bytes(), mode).map_err(|e| io(yaml, e))?;
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;

    const YAML: &str = "# export\npolling_interval: 7\ncoordinator_token: tok-abcdef\nagents:\n  agt_a:\n    passkey: pk-aaaa1111   # inline comment\n  agt_b:\n    passkey: ${IMPORT_UNIT_UNSET}\n";

    /// A temp dir holding `YAML` as c.yaml, the settings path beside it, and an empty store.
    fn fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, MemoryStore) {
        std::env::remove_var("IMPORT_UNIT_UNSET");
        let d = tempfile::tempdir().unwrap();
        let yaml = d.path().join("c.yaml");
        std::fs::write(&yaml, YAML).unwrap();
        let settings = d.path().join("settings.json");
        (d, yaml, settings, MemoryStore::new())
    }

    #[test]
    fn import_is_idempotent_reports_conflicts_and_scrubs_with_backup() {
        let (_dir, yaml, settings, store) = fixture();
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.moved, vec!["agt_a"]);
        assert_eq!(r.missing, vec!["agt_b"]);
        assert_eq!(r.token.as_deref(), Some("moved"));
        assert_eq!(std::fs::read_to_string(&yaml).unwrap(), YAML);
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.unchanged, vec!["agt_a"]);
        store.set("agent:agt_a", "different").unwrap();
        let r = import_yaml(
            &yaml,
            &store,
            &settings,
            &ImportOptions {
                scrub: true,
                overwrite: false,
                keep_backup: true,
            },
        )
        .unwrap();
        assert_eq!(r.conflicts, vec!["agt_a"]);
        assert!(r.backup.is_none(), "scrubbed despite a conflict");
        let r = import_yaml(
            &yaml,
            &store,
            &settings,
            &ImportOptions {
                scrub: true,
                overwrite: true,
                keep_backup: true,
            },
        )
        .unwrap();
        assert_eq!(store.get("agent:agt_a").unwrap().as_deref(), Some("pk-aaaa1111"));
        let bak = r.backup.unwrap();
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), YAML);
        let scrubbed = std::fs::read_to_string(&yaml).unwrap();
        assert!(
            !scrubbed.contains("pk-aaaa1111") && !scrubbed.contains("tok-abcdef"),
            "{scrubbed}"
        );
        assert!(scrubbed.contains("# export") && scrubbed.contains("polling_interval: 7"));
        let s = std::fs::read_to_string(&settings).unwrap();
        assert!(s.contains("agt_a") && !s.contains("pk-aaaa1111"));
        // Re-importing the scrubbed file loses nothing.
        let r = import_yaml(&yaml, &store, &settings, &ImportOptions::default()).unwrap();
        assert_eq!(r.missing.len(), 2);
        assert_eq!(store.get("agent:agt_a").unwrap().as_deref(), Some("pk-aaaa1111"));
    }

    #[test]
    fn scrub_twice_keeps_the_backup_and_env_references() {
        let (d, yaml, settings, store) = fixture();
        let scrub = ImportOptions {
            scrub: true,
            overwrite: false,
            keep_backup: true,
        };
        let r = import_yaml(&yaml, &store, &settings, &scrub).unwrap();
        let bak = r.backup.unwrap();
        assert_eq!(bak, d.path().join("c.yaml.bak"));
        let scrubbed = std::fs::read_to_string(&yaml).unwrap();
        assert!(
            scrubbed.contains("passkey: ${IMPORT_UNIT_UNSET}"),
            "unset ${{VAR}} blanked: {scrubbed}"
        );
        // Second scrub: nothing left to scrub, the backup (the only copy of the original) is untouched.
        let r = import_yaml(&yaml, &store, &settings, &scrub).unwrap();
        assert!(r.already_scrubbed && r.backup.is_none());
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), YAML);
        assert_eq!(std::fs::read_to_string(&yaml).unwrap(), scrubbed);
        // A secret is written back into the file: a new numbered backup, never an overwrite.
        let again = scrubbed.replace("coordinator_token: \"\"", "coordinator_token: tok-abcdef");
        std::fs::write(&yaml, &again).unwrap();
        let r = import_yaml(&yaml, &store, &settings, &scrub).unwrap();
        assert_eq!(r.backup.as_deref(), Some(d.path().join("c.yaml.bak.1").as_path()));
        assert_eq!(std::fs::read_to_string(&bak).unwrap(), YAML);
        assert_eq!(std::fs::read_to_string(d.path().join("c.yaml.bak.1")).unwrap(), again);
        assert!(!std::fs::read_to_string(&yaml).unwrap().contains("tok-abcdef"));
    }

    #[test]
    fn token_conflict_blocks_the_scrub() {
        let d = tempfile::tempdir().unwrap();
        let yaml = d.path().join("c.yaml");
        std::fs::write(&yaml, YAML).unwrap();
        let store = MemoryStore::new();
        store.set(crate::secrets::TOKEN_ACCOUNT, "another-token").unwrap();
        let r = import_yaml(
            &yaml,
            &store,
            &d.path().join("s.json"),
            &ImportOptions {
                scrub: true,
                overwrite: false,
                keep_backup: true,
            },
        )
        .unwrap();
        assert_eq!(r.token.as_deref(), Some("conflict"));
        assert!(r.has_conflicts() && r.backup.is_none());
        assert_eq!(std::fs::read_to_string(&yaml).unwrap(), YAML);
    }

    #[test]
    fn a_short_passkey_stops_the_import_and_names_the_agent_not_the_value() {
        let d = tempfile::tempdir().unwrap();
        let yaml = d.path().join("c.yaml");
        std::fs::write(&yaml, "coordinator_token: tok-abcdef\nagents:\n  agt_a:\n    passkey: pk-long-enough\n  agt_b:\n    passkey: abc\n").unwrap();
        let settings = d.path().join("s.json");
        let store = MemoryStore::new();
        let e = import_yaml(&yaml, &store, &settings, &ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.yaml") && e.contains("agt_b") && e.contains("3 characters") && !e.contains("abc\""),
            "{e}"
        );
        assert!(store.list().unwrap().is_empty() && !settings.exists());
    }

    #[test]
    fn scrub_that_cannot_remove_a_secret_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        let yaml = d.path().join("c.yaml");
        let text = "coordinator_token: tok-1\nagents:\n  agt_a: {passkey: pk-flow-1}\n  agt_b:\n    passkey: pk-b\n";
        std::fs::write(&yaml, text).unwrap();
        let settings = d.path().join("s.json");
        let store = MemoryStore::new();
        let e = import_yaml(
            &yaml,
            &store,
            &settings,
            &ImportOptions {
                scrub: true,
                overwrite: false,
                keep_backup: true,
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("c.yaml") && e.contains("agt_a") && !e.contains("agt_b") && !e.contains("pk-flow-1"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&yaml).unwrap(), text);
        assert!(!d.path().join("c.yaml.bak").exists() && !settings.exists());
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn import_keeps_settings_the_yaml_does_not_set_and_pins_the_ones_it_does() {
        let d = tempfile::tempdir().unwrap();
        let settings = d.path().join("s.json");
        let mut s = Settings {
            polling_interval_secs: 42,
            debug: true,
            ..Settings::default()
        };
        s.pinned.push("debug".into());
        s.save(&settings).unwrap();
        let yaml = d.path().join("c.yaml");
        std::fs::write(&yaml, "max_concurrent: 8\n").unwrap();
        import_yaml(&yaml, &MemoryStore::new(), &settings, &ImportOptions::default()).unwrap();
        let s = Settings::load(&settings).unwrap();
        assert_eq!((s.max_concurrent, s.polling_interval_secs, s.debug), (8, 42, true));
        assert_eq!(s.pinned, vec!["debug", "max_concurrent"]);
    }
}
