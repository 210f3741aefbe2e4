//! Where the settings, the secrets and the state file come from: a settings file or a Python-style YAML.

use super::*;

pub(crate) fn platform_store() -> SharedStore {
    Arc::new(secrets::KeyringStore::new())
}

/// Settings plus the store to read secrets from. YAML configs carry their own passkeys (plain or `${ENV}`);
/// those live only in memory, with a warning that says how to move them into the secret store.
pub(crate) fn load_config(config: Option<PathBuf>) -> Result<(Settings, PathBuf, SharedStore)> {
    let path = config.unwrap_or_else(coordinator::paths::settings_path);
    let is_yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if !is_yaml {
        if !path.exists() && path != coordinator::paths::settings_path() {
            anyhow::bail!("config file {} does not exist", path.display());
        }
        let settings = Settings::load(&path)?;
        return Ok((settings, path, platform_store()));
    }
    let legacy = coordinator::legacy_yaml::load(&path)?;
    for w in &legacy.warnings {
        tracing::warn!("{w}");
    }
    let mem = secrets::MemoryStore::new();
    let platform = platform_store();
    use coordinator::legacy_yaml::PasskeySource;
    for (id, src) in &legacy.passkeys {
        let value = match src {
            PasskeySource::Plain(v) => Some(v.clone()),
            PasskeySource::Env { value, .. } => value.clone(),
            PasskeySource::Missing => None,
        };
        // Fall back to the secret store for agents whose YAML has no passkey.
        let value = value.or_else(|| platform.get(&secrets::agent_account(id)).ok().flatten());
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            mem.set(&secrets::agent_account(id), &v)?;
        }
    }
    let token = match &legacy.token {
        Some(PasskeySource::Plain(v)) => Some(v.clone()),
        Some(PasskeySource::Env { value, .. }) => value.clone(),
        _ => None,
    }
    .or_else(|| platform.get(secrets::TOKEN_ACCOUNT).ok().flatten());
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        mem.set(secrets::TOKEN_ACCOUNT, &t)?;
    }
    Ok((legacy.settings, path, Arc::new(mem)))
}

/// The settings file's own state file; a YAML config keeps its state beside our settings, keyed by name and
/// by the same canonical path as the instance lock (so every spelling of one file shares one state file).
pub(crate) fn state_path_for(config: &Path) -> PathBuf {
    let config = coordinator::lock::canonical_config_path(config);
    if config == coordinator::lock::canonical_config_path(&coordinator::paths::settings_path()) {
        return coordinator::paths::state_path();
    }
    let name = config.file_stem().and_then(|s| s.to_str()).unwrap_or("config");
    let mut h: u64 = 1469598103934665603;
    for b in config.display().to_string().bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    coordinator::paths::coordinator_dir().join(format!("state-{name}-{:08x}.json", h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_config_shares_one_state_file() {
        let d = tempfile::tempdir().unwrap();
        let abs = std::fs::canonicalize(d.path()).unwrap();
        std::fs::create_dir(abs.join("sub")).unwrap();
        std::fs::write(abs.join("s.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&abs, abs.join("link")).unwrap();
        // A relative spelling of the same file, from the current directory.
        let cwd = std::env::current_dir().unwrap();
        let ups = cwd.components().count() - 1;
        let rel = PathBuf::from("../".repeat(ups))
            .join(abs.strip_prefix("/").unwrap())
            .join("s.json");
        let want = state_path_for(&abs.join("s.json"));
        for p in [
            rel,
            abs.join("sub/../s.json"),
            abs.join("link/s.json"),
            abs.join("./s.json"),
        ] {
            assert_eq!(state_path_for(&p), want, "{}", p.display());
        }
        // Not created yet: still the same before and after the file exists.
        let later = abs.join("new/later.json");
        let before = state_path_for(&abs.join("link/new/later.json"));
        std::fs::create_dir(abs.join("new")).unwrap();
        std::fs::write(&later, "{}").unwrap();
        assert_eq!(state_path_for(&later), before);
        assert_ne!(state_path_for(&later), want);
    }
}
