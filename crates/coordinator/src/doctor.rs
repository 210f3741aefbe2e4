//! `doctor`: server reachable, provider CLIs found, passkeys present, dirs writable — each line OK/FAIL + fix hint.
use crate::config::Settings;
use crate::secrets::{self, SecretStore};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// What was found (plain words; never a secret).
    pub detail: String,
    /// How to fix it when not ok.
    pub hint: Option<String>,
}

fn check(name: &str, ok: bool, detail: impl Into<String>, hint: impl Into<String>) -> Check {
    let hint = hint.into();
    Check {
        name: name.to_string(),
        ok,
        detail: detail.into(),
        hint: (!ok && !hint.is_empty()).then_some(hint),
    }
}

/// Run every check (bounded in time: the server check has a short timeout).
pub async fn run(settings: &Settings, store: &dyn SecretStore) -> Vec<Check> {
    let mut out = Vec::new();
    let address = settings.server_address();
    let is_http = address.starts_with("http://") || address.starts_with("https://");

    // Secret store and token first: the server check needs the token.
    let token = match store.get(secrets::TOKEN_ACCOUNT) {
        Ok(t) => {
            out.push(check("secret store", true, "available", ""));
            out.push(check(
                "coordinator token",
                t.is_some(),
                if t.is_some() {
                    "present in the secret store"
                } else {
                    "not set"
                },
                "run `agentpm-coordinator token set` (AI Agent PM shows the token in its coordinator settings)",
            ));
            t
        }
        Err(e) => {
            out.push(check("secret store", false, crate::redact::global().redact(&e.to_string()), "unlock the Keychain (macOS) or start a Secret Service such as gnome-keyring (Linux); secrets are never written to files instead"));
            None
        }
    };

    let server = match crate::pm::PmClient::with_options(
        &address,
        token,
        Duration::from_secs(3),
        settings.allow_insecure_http,
    ) {
        Ok(client) => match client.health_check().await {
            Ok(h) if h.status == "ok" => check("PM server", true, format!("{address} answers (status ok)"), ""),
            Ok(h) => check(
                "PM server",
                false,
                format!("{address} answers with status {:?}", h.status),
                "check AI Agent PM's logs",
            ),
            Err(e) => {
                let hint = if e.is_auth() {
                    "the coordinator token was refused: set the token shown by AI Agent PM with `agentpm-coordinator token set`".to_string()
                } else if is_http {
                    format!(
                        "start AI Agent PM's REST server on that host, or fix `server` in {}",
                        crate::paths::settings_path().display()
                    )
                } else {
                    format!("start AI Agent PM (its MCP daemon creates {address}), or set `server` in settings to its socket path or http(s)://host:port/mcp URL")
                };
                // Plain words first for the usual case (the app is not running); the technical reason after.
                let detail = crate::redact::global().redact(&e.to_string());
                let detail = if !is_http && !std::path::Path::new(&address).exists() {
                    format!("AI Agent PM is not running (no server socket at {address})")
                } else {
                    detail
                };
                check("PM server", false, detail, hint)
            }
        },
        Err(e) => check("PM server", false, e.to_string(), "fix `server` in settings"),
    };
    out.push(server);

    // Agents reach the server through this program's `mcp-bridge` (no `nc` needed any more).
    let (bridge, _) = crate::mcp_bridge::command();
    let bridge_ok = std::path::Path::new(&bridge).is_file();
    out.push(check(
        "MCP bridge for agents",
        bridge_ok,
        format!("{bridge} mcp-bridge"),
        "reinstall the coordinator, or set AGENTPM_MCP_BRIDGE to the agentpm-coordinator binary",
    ));

    // Providers that enabled agents would use (plus the built-in default).
    let mut used: std::collections::BTreeSet<String> = settings
        .agents
        .values()
        .filter(|a| a.enabled)
        .filter_map(|a| a.provider.clone())
        .collect();
    used.insert("claude".to_string());
    for name in used {
        let Some(p) = settings.providers.get(&name) else {
            out.push(check(
                &format!("provider {name}"),
                false,
                "not configured",
                "add it under `providers` in settings",
            ));
            continue;
        };
        let found = crate::launch::resolve_command(&p.command);
        out.push(check(
            &format!("provider {name}"),
            found.is_ok(),
            match &found {
                Ok(path) => format!("{} found at {}", p.command, path.display()),
                Err(_) => format!("{} not found on PATH", p.command),
            },
            "install the CLI, or set an absolute path as the provider's command (apps started from Finder do not see your shell's PATH)",
        ));
    }

    let mut enabled = 0;
    for (id, a) in &settings.agents {
        if !a.enabled {
            continue;
        }
        enabled += 1;
        let present = store.get(&secrets::agent_account(id));
        out.push(match present {
            Ok(Some(_)) => check(&format!("passkey {id}"), true, "present", ""),
            Ok(None) => check(
                &format!("passkey {id}"),
                false,
                "missing",
                format!("run `agentpm-coordinator passkey set {id}`"),
            ),
            Err(e) => check(
                &format!("passkey {id}"),
                false,
                e.to_string(),
                "see the secret store line above",
            ),
        });
    }
    if enabled == 0 {
        out.push(check("agents", false, "no enabled agent", "import AI Agent PM's exported configuration (`agentpm-coordinator import-yaml FILE`) or add agents to settings"));
    }

    out.push(writable("log folder", &settings.log_root()));
    out.push(writable("settings folder", &crate::paths::coordinator_dir()));
    out
}

fn writable(name: &str, dir: &Path) -> Check {
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let r = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&probe, b"ok"))
        .and_then(|_| std::fs::remove_file(&probe));
    match r {
        Ok(()) => check(name, true, format!("{} is writable", dir.display()), ""),
        Err(e) => check(
            name,
            false,
            format!("{}: {e}", dir.display()),
            "choose another folder in settings (`log_dir`) or fix its permissions",
        ),
    }
}
