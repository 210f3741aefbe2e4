//! The Python coordinator's YAML config, read as-is (protocol doc §5.6; 0.1.3 keys too).

use crate::config::{AgentSettings, ConfigError, ProviderSettings, Settings};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub enum PasskeySource {
    Plain(String),
    /// `${VAR}`: `value` is what the variable holds now (None when unset or empty).
    Env {
        var: String,
        value: Option<String>,
    },
    Missing,
}

impl PasskeySource {
    pub fn value(&self) -> Option<String> {
        match self {
            PasskeySource::Plain(v) => Some(v.clone()),
            PasskeySource::Env { value, .. } => value.clone(),
            PasskeySource::Missing => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LegacyConfig {
    pub settings: Settings,
    pub passkeys: BTreeMap<String, PasskeySource>,
    pub token: Option<PasskeySource>,
    pub warnings: Vec<String>,
}

/// `${VAR}` (the whole value) → Env; anything else → Plain; empty → Missing.
fn secret_source(raw: Option<&Value>) -> PasskeySource {
    let s = match raw {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return PasskeySource::Missing,
    };
    if s.is_empty() {
        return PasskeySource::Missing;
    }
    if let Some(var) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        let value = std::env::var(var).ok().filter(|v| !v.is_empty());
        return PasskeySource::Env {
            var: var.to_string(),
            value,
        };
    }
    PasskeySource::Plain(s)
}

/// A value's YAML type, for messages about fields that may hold secrets (never the value itself).
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A secret field (passkey, token) must be a string, a number or empty; the error names its type only.
fn check_secret_type(file: &Path, field: &str, v: Option<&Value>) -> Result<(), ConfigError> {
    match v {
        None | Some(Value::Null | Value::String(_) | Value::Number(_)) => Ok(()),
        Some(other) => Err(ConfigError::invalid(
            file,
            field,
            format!("of type {}", type_name(other)),
            "use a string (the value itself, or ${VAR})",
        )),
    }
}

fn positive(file: &Path, v: &Value, field: &str, max: u64) -> Result<Option<u64>, ConfigError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_u64() {
            Some(n) if n > 0 && n <= max => Ok(Some(n)),
            _ => Err(ConfigError::invalid(
                file,
                field,
                x,
                &format!("must be a whole number from 1 to {max}"),
            )),
        },
    }
}

fn string_list(file: &Path, v: Option<&Value>, field: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(str::to_string).collect()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(ConfigError::invalid(file, field, other, "list items must be strings")),
            })
            .collect(),
        Some(other) => Err(ConfigError::invalid(
            file,
            field,
            other,
            "use a list of strings or one string",
        )),
    }
}

pub fn parse(text: &str, file: &Path) -> Result<LegacyConfig, ConfigError> {
    let v: Value = if text.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.display().to_string(),
            message: e.to_string(),
        })?
    };
    if !v.is_object() {
        return Err(ConfigError::Parse {
            file: file.display().to_string(),
            message: "the top level must be a mapping of keys".into(),
        });
    }
    let mut s = Settings::default();
    let mut warnings = Vec::new();
    if let Some(n) = positive(file, &v, "polling_interval", 3600)? {
        s.polling_interval_secs = n;
    }
    if let Some(n) = positive(file, &v, "max_concurrent", 256)? {
        s.max_concurrent = n as usize;
    }
    let str_of = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let server_url = str_of("server_url");
    s.server = match (str_of("mcp_socket_path"), &server_url) {
        (Some(p), _) => Some(p),
        // HEAD: when server_url is set, MCP goes to {server_url}/mcp.
        (None, Some(u)) => Some(format!("{}/mcp", u.trim_end_matches('/'))),
        (None, None) => None,
    };
    s.root_agent_id = str_of("root_agent_id");
    if let Some(d) = str_of("log_directory") {
        // Relative to the current directory, as the Python coordinator reads it (settings need absolute paths).
        let p = std::path::PathBuf::from(crate::paths::expand_tilde(&d));
        s.log_dir = Some(std::path::absolute(&p).unwrap_or(p));
    }
    if let Some(d) = v.get("debug_mode") {
        s.debug = d
            .as_bool()
            .ok_or_else(|| ConfigError::invalid(file, "debug_mode", d, "use true or false"))?;
    }
    if let Some(p) = v.get("ai_providers").filter(|p| !p.is_null()) {
        let map = p
            .as_object()
            .ok_or_else(|| ConfigError::invalid(file, "ai_providers", p, "must be a mapping of provider names"))?;
        for (name, cfg) in map {
            crate::paths::validate_id(name)
                .map_err(|e| ConfigError::invalid(file, &format!("ai_providers.{name}"), format!("{name:?}"), &e))?;
            let command = cfg
                .get("cli_command")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_string();
            let args = string_list(file, cfg.get("cli_args"), &format!("ai_providers.{name}.cli_args"))?;
            let kind = matches!(name.as_str(), "claude" | "gemini" | "codex")
                .then(|| name.clone())
                .or(Some("custom".into()));
            s.providers.insert(
                name.clone(),
                ProviderSettings {
                    command,
                    args,
                    model: None,
                    kind,
                },
            );
        }
    }
    let mut passkeys = BTreeMap::new();
    if let Some(a) = v.get("agents").filter(|a| !a.is_null()) {
        // Never print the value: it may hold passkeys, and none is registered for masking yet.
        let map = a.as_object().ok_or_else(|| {
            ConfigError::invalid(
                file,
                "agents",
                format!("of type {}", type_name(a)),
                "must be a mapping of agent ids",
            )
        })?;
        for (id, cfg) in map {
            crate::paths::validate_id(id)
                .map_err(|e| ConfigError::invalid(file, &format!("agents.{id}"), format!("{id:?}"), &e))?;
            if !(cfg.is_object() || cfg.is_null()) {
                return Err(ConfigError::invalid(
                    file,
                    &format!("agents.{id}"),
                    format!("of type {}", type_name(cfg)),
                    "must be a mapping such as `passkey: ${VAR}`",
                ));
            }
            check_secret_type(file, &format!("agents.{id}.passkey"), cfg.get("passkey"))?;
            let src = secret_source(cfg.get("passkey"));
            match &src {
                PasskeySource::Plain(_) => warnings.push(format!(
                    "{}: agents.{id}.passkey is written in plain text; move it into the secret store with `agentpm-coordinator import-yaml {} --scrub`",
                    file.display(),
                    file.display()
                )),
                PasskeySource::Env { var, value: None } => warnings.push(format!("{}: agents.{id}.passkey names ${{{var}}}, which is not set; {id} will not be started", file.display())),
                _ => {}
            }
            s.agents.insert(id.clone(), AgentSettings::default());
            passkeys.insert(id.clone(), src);
        }
    }
    check_secret_type(file, "coordinator_token", v.get("coordinator_token"))?;
    let token = match v.get("coordinator_token") {
        Some(t) if !t.is_null() => Some(secret_source(Some(t))),
        _ => std::env::var("MCP_COORDINATOR_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| PasskeySource::Env {
                var: "MCP_COORDINATOR_TOKEN".into(),
                value: Some(t),
            }),
    };
    if let Some(ep) = v.get("error_protection").and_then(Value::as_object) {
        let b = |k: &str, d: bool| ep.get(k).and_then(Value::as_bool).unwrap_or(d);
        let n = |k: &str, d: u64| ep.get(k).and_then(Value::as_u64).unwrap_or(d);
        s.error_protection.enabled = b("enabled", true);
        s.error_protection.default_cooldown_secs = n("default_cooldown_seconds", 60);
        s.error_protection.max_cooldown_secs = n("max_cooldown_seconds", 3600);
        s.error_protection.quota_detection = b("quota_detection_enabled", true);
        s.error_protection.quota_margin_percent = n("quota_margin_percent", 10) as u32;
    }
    if let Some(lu) = v.get("log_upload").and_then(Value::as_object) {
        s.log_upload.enabled = lu.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        s.log_upload.server_url = server_url.clone();
        if let Some(n) = lu.get("max_file_size_mb").and_then(Value::as_u64) {
            s.log_upload.max_file_size_mb = n;
        }
        if let Some(n) = lu.get("retry_count").and_then(Value::as_u64) {
            s.log_upload.retry_count = n as u32;
        }
        if let Some(n) = lu.get("retry_delay_seconds").and_then(Value::as_f64) {
            s.log_upload.retry_delay_secs = n;
        }
    }
    // Fields the YAML sets explicitly are pinned: they win over the server's dynamic configuration.
    let explicit = [
        ("polling_interval", "polling_interval_secs"),
        ("max_concurrent", "max_concurrent"),
        ("root_agent_id", "root_agent_id"),
        ("log_directory", "log_dir"),
        ("debug_mode", "debug"),
        ("error_protection", "error_protection"),
        ("log_upload", "log_upload"),
    ];
    s.pinned = explicit
        .iter()
        .filter(|(k, _)| v.get(*k).is_some_and(|x| !x.is_null()))
        .map(|(_, f)| f.to_string())
        .collect();
    if s.server.is_some() {
        s.pinned.push("server".into());
    }
    s.validate(file)?;
    Ok(LegacyConfig {
        settings: s,
        passkeys,
        token,
        warnings,
    })
}

pub fn load(path: &Path) -> Result<LegacyConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        file: path.display().to_string(),
        message: e.to_string(),
    })?;
    parse(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_python_yaml_with_plain_env_and_missing_passkeys() {
        std::env::set_var("LEGACY_TEST_PK", "from-env-123");
        std::env::remove_var("LEGACY_TEST_UNSET");
        let y = "polling_interval: 5\nmax_concurrent: 2\nmcp_socket_path: /tmp/x.sock\ncoordinator_token: ${LEGACY_TEST_PK}\nai_providers:\n  claude:\n    cli_command: claude\n    cli_args: --a --b\n  mine:\n    cli_command: /bin/mine\n    cli_args: [x]\nagents:\n  agt_a:\n    passkey: plain-1\n  agt_b:\n    passkey: ${LEGACY_TEST_PK}\n  agt_c:\n    passkey: ${LEGACY_TEST_UNSET}\n  agt_d: {}\n";
        let c = parse(y, Path::new("c.yaml")).unwrap();
        assert_eq!(c.settings.polling_interval_secs, 5);
        assert_eq!(c.settings.server.as_deref(), Some("/tmp/x.sock"));
        assert_eq!(c.settings.providers["claude"].args, vec!["--a", "--b"]);
        assert_eq!(c.settings.provider_kind("mine"), "custom");
        assert_eq!(c.passkeys["agt_a"], PasskeySource::Plain("plain-1".into()));
        assert_eq!(c.passkeys["agt_b"].value().as_deref(), Some("from-env-123"));
        assert_eq!(
            c.passkeys["agt_c"],
            PasskeySource::Env {
                var: "LEGACY_TEST_UNSET".into(),
                value: None
            }
        );
        assert_eq!(c.passkeys["agt_d"], PasskeySource::Missing);
        assert_eq!(c.token.unwrap().value().as_deref(), Some("from-env-123"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("agt_a") && w.contains("import-yaml")));
    }

    #[test]
    fn bad_values_name_field_and_value() {
        let e = parse("polling_interval: -5\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("polling_interval") && e.contains("-5") && e.contains("c.yaml"),
            "{e}"
        );
        let e = parse("agents:\n  ../etc:\n    passkey: x\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("agents.../etc"), "{e}");
        let e = parse("max_concurrent: lots\n", Path::new("c.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_concurrent") && e.contains("lots"), "{e}");
        assert!(parse("agents: [1, 2\n", Path::new("c.yaml")).is_err());
    }

    #[test]
    fn malformed_secret_fields_name_the_type_never_the_value() {
        let cases = [
            ("agents: [agt_a, pk-secret-111]\n", "`agents`", "a list"),
            ("agents: pk-secret-111\n", "`agents`", "a string"),
            ("agents:\n  agt_a: pk-secret-111\n", "`agents.agt_a`", "a string"),
            (
                "agents:\n  agt_a:\n    passkey: [pk-secret-111]\n",
                "`agents.agt_a.passkey`",
                "a list",
            ),
            (
                "agents:\n  agt_a:\n    passkey: {v: pk-secret-111}\n",
                "`agents.agt_a.passkey`",
                "a mapping",
            ),
            ("coordinator_token: [pk-secret-111]\n", "`coordinator_token`", "a list"),
        ];
        for (y, field, ty) in cases {
            let e = parse(y, Path::new("/cfg/c.yaml")).unwrap_err().to_string();
            assert!(
                e.contains("/cfg/c.yaml") && e.contains(field) && e.contains(ty),
                "{y}: {e}"
            );
            assert!(!e.contains("pk-secret-111"), "secret in the error: {e}");
        }
    }

    #[test]
    fn explicit_fields_are_pinned() {
        let c = parse("max_concurrent: 8\nagents:\n  agt_a: {}\n", Path::new("c.yaml")).unwrap();
        assert_eq!(c.settings.pinned, vec!["max_concurrent"]);
        let c = parse(
            "polling_interval: 4\ndebug_mode: true\nmcp_socket_path: /x.sock\n",
            Path::new("c.yaml"),
        )
        .unwrap();
        assert_eq!(c.settings.pinned, vec!["polling_interval_secs", "debug", "server"]);
    }
}
