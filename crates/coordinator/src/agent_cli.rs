//! What each real agent CLI needs from a launch, as seen running Claude Code 2.1.197, Gemini CLI 0.61 and
//! Codex 0.171 against a scripted model (scripts/real-agents): how it gets the `agent-pm` MCP server (always
//! our stdio bridge, so no secret is in a config file or the conversation), which flags and variables make it
//! run headless. Pure functions; `launch::plan` calls them.
use serde_json::{json, Value};

/// The MCP server name every CLI sees; Claude names its tools `mcp__agent-pm__<tool>`.
pub const SERVER_NAME: &str = "agent-pm";

/// The variables the bridge reads that are set for this run. A config names only these: Claude Code
/// refuses a config that references an unset `${VAR}`.
pub fn bridge_vars(has_token: bool) -> Vec<&'static str> {
    crate::mcp_bridge::ENV_VARS
        .iter()
        .copied()
        .filter(|v| has_token || *v != crate::launch::TOKEN_ENV)
        .collect()
}

/// The `agent-pm` entry for Claude's `--mcp-config` and Gemini's settings: the bridge, with its variables
/// passed by reference (`${VAR}`, expanded by the CLI from its own environment; the values are never written).
pub fn bridge_entry(bridge: &[String], has_token: bool) -> Value {
    let (cmd, args) = bridge
        .split_first()
        .map(|(c, a)| (c.clone(), a.to_vec()))
        .unwrap_or_default();
    let env: serde_json::Map<String, Value> = bridge_vars(has_token)
        .into_iter()
        .map(|v| (v.to_string(), format!("${{{v}}}").into()))
        .collect();
    json!({"command": cmd, "args": args, "env": env})
}

/// Codex reads MCP servers from `config.toml`; `-c` overrides add ours without touching the user's
/// `$CODEX_HOME` (their model provider and login stay as they are). Codex starts MCP servers with a minimal
/// environment, so the bridge's variables are named in `env_vars` (names only, no values). Only this
/// server's tools are pre-approved (see below); the user's approval settings for everything else stay.
pub fn codex_overrides(bridge: &[String], has_token: bool) -> Vec<String> {
    let toml_str = |s: &str| serde_json::to_string(s).expect("string");
    let (cmd, args) = bridge.split_first().map(|(c, a)| (c.as_str(), a)).unwrap_or(("", &[]));
    let list =
        |items: &mut dyn Iterator<Item = &str>| format!("[{}]", items.map(toml_str).collect::<Vec<_>>().join(", "));
    let key = format!("mcp_servers.{SERVER_NAME}");
    let mut out = Vec::new();
    for kv in [
        format!("{key}.command={}", toml_str(cmd)),
        format!("{key}.args={}", list(&mut args.iter().map(String::as_str))),
        format!("{key}.env_vars={}", list(&mut bridge_vars(has_token).into_iter())),
        // Codex 0.171 asks before every MCP tool call, and `codex exec` answers "never": the call fails with
        // "MCP tool call requires approval, but approval policy is never". Our own PM tools are approved.
        format!("{key}.default_tools_approval_mode=\"approve\""),
    ] {
        out.push("-c".to_string());
        out.push(kv);
    }
    out
}

/// Claude Code prints structured events (`system`/`init`, `assistant`, `user`, `result`) only with
/// `--output-format stream-json`, which in `-p` mode also needs `--verbose`. Added unless configured.
pub fn claude_output_args(configured: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if !configured
        .iter()
        .any(|a| a == "--output-format" || a.starts_with("--output-format="))
    {
        out.extend(["--output-format".to_string(), "stream-json".to_string()]);
    }
    if !configured.iter().any(|a| a == "--verbose") {
        out.push("--verbose".to_string());
    }
    out
}

/// `codex exec` refuses to run outside a Git repository it trusts ("Not inside a trusted directory");
/// a project folder need not be one. Added for `exec` unless configured.
pub fn codex_exec_args(configured: &[String]) -> Vec<String> {
    let exec = configured.first().is_some_and(|a| a == "exec");
    let mut out = Vec::new();
    if exec && !configured.iter().any(|a| a == "--skip-git-repo-check") {
        out.push("--skip-git-repo-check".to_string());
    }
    // JSON events (thread, turns, items, usage) for the run record; the log keeps them, redacted.
    if exec && !configured.iter().any(|a| a == "--json") {
        out.push("--json".to_string());
    }
    out
}

/// Gemini CLI's structured events (`init`, messages, tool calls, `result` with stats) for the run record.
pub fn gemini_output_args(configured: &[String]) -> Vec<String> {
    if configured
        .iter()
        .any(|a| a == "--output-format" || a == "-o" || a.starts_with("--output-format="))
    {
        vec![]
    } else {
        vec!["--output-format".to_string(), "stream-json".to_string()]
    }
}

/// Variables a CLI needs for a headless run in a folder it has never seen.
/// - Claude Code refuses `--dangerously-skip-permissions` as root unless `IS_SANDBOX=1` (CI runs as root;
///   on a user's Mac the flag works as is, so the variable is not set there).
/// - Gemini CLI refuses to run headless in an untrusted folder; trusting it for this run only.
pub fn run_env(kind: &str, as_root: bool) -> Vec<(String, String)> {
    match kind {
        "claude" if as_root => vec![("IS_SANDBOX".into(), "1".into())],
        "gemini" => vec![("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into())],
        _ => vec![],
    }
}

/// Whether this process runs as root (decides `IS_SANDBOX`).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge() -> Vec<String> {
        vec!["/opt/My Apps/agentpm-coordinator".into(), "mcp-bridge".into()]
    }

    #[test]
    fn entry_references_variables_and_names_the_token_only_when_there_is_one() {
        let e = bridge_entry(&bridge(), false);
        assert_eq!(e["command"], "/opt/My Apps/agentpm-coordinator");
        assert_eq!(e["args"], json!(["mcp-bridge"]));
        assert_eq!(e["env"]["AGENT_PASSKEY"], "${AGENT_PASSKEY}");
        assert!(e["env"].get(crate::launch::TOKEN_ENV).is_none());
        let e = bridge_entry(&bridge(), true);
        assert_eq!(
            e["env"][crate::launch::TOKEN_ENV],
            format!("${{{}}}", crate::launch::TOKEN_ENV)
        );
    }

    #[test]
    fn codex_overrides_are_toml_values() {
        let o = codex_overrides(&bridge(), false);
        assert_eq!(o.iter().filter(|a| *a == "-c").count(), 4);
        assert!(
            o.contains(&"mcp_servers.agent-pm.default_tools_approval_mode=\"approve\"".to_string()),
            "{o:?}"
        );
        assert!(
            o.contains(&"mcp_servers.agent-pm.command=\"/opt/My Apps/agentpm-coordinator\"".to_string()),
            "{o:?}"
        );
        assert!(
            o.contains(&"mcp_servers.agent-pm.args=[\"mcp-bridge\"]".to_string()),
            "{o:?}"
        );
        let vars = o.iter().find(|a| a.contains("env_vars")).unwrap();
        assert!(
            vars.contains("\"AGENT_PASSKEY\"") && !vars.contains(crate::launch::TOKEN_ENV),
            "{vars}"
        );
    }

    #[test]
    fn claude_output_flags_are_added_once() {
        assert_eq!(
            claude_output_args(&[]),
            vec!["--output-format", "stream-json", "--verbose"]
        );
        assert!(claude_output_args(&["--verbose".into(), "--output-format=json".into()]).is_empty());
    }

    #[test]
    fn codex_exec_skips_the_git_check_once() {
        assert_eq!(
            codex_exec_args(&["exec".into(), "--sandbox".into(), "workspace-write".into()]),
            vec!["--skip-git-repo-check", "--json"]
        );
        assert!(codex_exec_args(&["exec".into(), "--skip-git-repo-check".into(), "--json".into()]).is_empty());
        assert_eq!(gemini_output_args(&[]), vec!["--output-format", "stream-json"]);
        assert!(gemini_output_args(&["-o".into(), "json".into()]).is_empty());
        // Not `codex exec` (a wrapper script, another subcommand): left as configured.
        assert!(codex_exec_args(&["--foo".into()]).is_empty());
    }

    #[test]
    fn sandbox_only_as_root_and_trust_only_for_gemini() {
        assert!(run_env("claude", false).is_empty());
        assert_eq!(
            run_env("claude", true),
            vec![("IS_SANDBOX".to_string(), "1".to_string())]
        );
        assert_eq!(run_env("gemini", false)[0].0, "GEMINI_CLI_TRUST_WORKSPACE");
        assert!(run_env("codex", true).is_empty());
    }
}
