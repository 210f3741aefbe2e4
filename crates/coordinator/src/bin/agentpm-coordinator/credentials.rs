//! `passkey`, `token` and `import-yaml`: secrets go to the secret store, never to a file or the terminal.

use super::*;

/// A secret from a no-echo prompt on a terminal, or from stdin when piped. Never from argv.
pub(crate) fn read_secret(prompt: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    };
    let value = value.trim_end_matches(['\r', '\n']).to_string();
    let what = if prompt.starts_with("Passkey") {
        "passkey"
    } else {
        "token"
    };
    coordinator::secrets::check_secret(what, &value).map_err(|e| anyhow::anyhow!(e))?;
    Ok(value)
}

pub(crate) fn passkey(cmd: PasskeyCmd) -> Result<ExitCode> {
    let store = platform_store();
    match cmd {
        PasskeyCmd::Set { agent_id } => {
            coordinator::paths::validate_id(&agent_id).map_err(|e| anyhow::anyhow!("agent id {agent_id:?}: {e}"))?;
            let v = read_secret(&format!("Passkey for {agent_id}: "))?;
            store.set(&secrets::agent_account(&agent_id), &v)?;
            println!("stored the passkey of {agent_id} in the secret store");
        }
        PasskeyCmd::Delete { agent_id } => {
            let existed = store.delete(&secrets::agent_account(&agent_id))?;
            println!(
                "{}",
                if existed {
                    format!("deleted the passkey of {agent_id}")
                } else {
                    format!("{agent_id} had no passkey")
                }
            );
        }
        PasskeyCmd::List => {
            let settings = Settings::load(&coordinator::paths::settings_path())?;
            let stored = store.list()?;
            let mut ids: std::collections::BTreeSet<String> = settings.agents.keys().cloned().collect();
            ids.extend(
                stored
                    .iter()
                    .filter_map(|a| a.strip_prefix("agent:").map(str::to_string)),
            );
            for id in ids {
                let present = stored.contains(&secrets::agent_account(&id));
                println!("{id:<32} {}", if present { "passkey present" } else { "no passkey" });
            }
            println!(
                "{:<32} {}",
                "(coordinator token)",
                if stored.iter().any(|a| a == secrets::TOKEN_ACCOUNT) {
                    "present"
                } else {
                    "not set"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn token(cmd: TokenCmd) -> Result<ExitCode> {
    let store = platform_store();
    match cmd {
        TokenCmd::Set => {
            let v = read_secret("Coordinator token: ")?;
            store.set(secrets::TOKEN_ACCOUNT, &v)?;
            println!("stored the coordinator token in the secret store");
        }
        TokenCmd::Delete => {
            let existed = store.delete(secrets::TOKEN_ACCOUNT)?;
            println!(
                "{}",
                if existed {
                    "deleted the coordinator token"
                } else {
                    "no coordinator token was stored"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn import_yaml(file: &Path, scrub: bool, overwrite: bool, keep_backup: bool) -> Result<ExitCode> {
    let store = platform_store();
    let settings_path = coordinator::paths::settings_path();
    let report = coordinator::import::import_yaml(
        file,
        store.as_ref(),
        &settings_path,
        &coordinator::import::ImportOptions {
            scrub,
            overwrite,
            keep_backup,
        },
    )?;
    for w in &report.warnings {
        println!("warning: {w}");
    }
    let list = |v: &Vec<String>| if v.is_empty() { "-".to_string() } else { v.join(", ") };
    println!("moved into the secret store: {}", list(&report.moved));
    println!("already stored (unchanged):  {}", list(&report.unchanged));
    println!("conflicts (not overwritten): {}", list(&report.conflicts));
    println!("no passkey in the YAML:      {}", list(&report.missing));
    if let Some(t) = &report.token {
        println!("coordinator token:           {t}");
    }
    println!("settings written to {}", report.settings_path.display());
    if let Some(b) = &report.backup {
        println!(
            "backup of the original YAML: {} (mode 0600); the YAML no longer contains secrets",
            b.display()
        );
        println!(
            "the backup still holds the passkeys in plain text: once the import is checked, delete it: rm {}",
            shell_words::quote(&b.display().to_string())
        );
    }
    if scrub && report.backup.is_none() && !report.already_scrubbed && !report.has_conflicts() {
        println!(
            "{}: no longer contains secrets; no copy of the original was kept (--keep-backup keeps one)",
            file.display()
        );
    }
    if report.already_scrubbed {
        println!(
            "{}: already scrubbed (no secret left in it); nothing rewritten, no backup written",
            file.display()
        );
    }
    if report.has_conflicts() {
        println!("re-run with --overwrite to replace the conflicting passkeys or token");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}
