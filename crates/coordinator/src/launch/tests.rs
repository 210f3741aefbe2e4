use super::output::relay_lines;
use super::*;
use crate::config::ProviderSettings;
use std::path::PathBuf;

fn req(kind: &str, address: &str) -> LaunchRequest {
    LaunchRequest {
        agent_id: "agt_a".into(),
        project_id: "prj_1".into(),
        working_dir: PathBuf::from("/work/p"),
        provider_name: kind.into(),
        provider: ProviderSettings {
            command: kind.into(),
            args: vec!["--x".into()],
            model: None,
            kind: Some(kind.into()),
        },
        kind: kind.into(),
        model: Some("m-1".into()),
        server_address: address.into(),
        passkey: "PASSKEY-123456".into(),
        coordinator_token: Some("TOKEN-abcdef".into()),
        task_id: Some("tsk_1".into()),
        debug: true,
        log_path: PathBuf::from("/logs/agt_a/20260101_000000_000.log"),
        context_dir: (kind == "gemini").then(|| PathBuf::from("/ctx/agt_a")),
        base_prompt: None,
        real_working_dir: None,
        bridge_command: vec!["/app/agentpm-coordinator".into(), "mcp-bridge".into()],
        as_root: false,
    }
}

#[test]
fn no_secret_in_argv_files_or_prompt_for_any_kind_or_transport() {
    for kind in ["claude", "gemini", "codex", "custom"] {
        for addr in ["/tmp/mcp.sock", "http://pm:8080/mcp"] {
            let p = plan(&req(kind, addr)).unwrap();
            for secret in ["PASSKEY-123456", "TOKEN-abcdef"] {
                assert!(
                    !p.program.contains(secret) && p.args.iter().all(|a| !a.contains(secret)),
                    "{kind} {addr}: {p:?}"
                );
                assert!(
                    p.files.iter().all(|f| !f.contents.contains(secret)),
                    "{kind} {addr}: {:?}",
                    p.files
                );
                assert!(!p.stdin.contains(secret));
            }
            assert!(p.env.iter().any(|(k, v)| k == "AGENT_PASSKEY" && v == "PASSKEY-123456"));
            let token_in_env = p.env.iter().any(|(k, _)| k == TOKEN_ENV);
            assert_eq!(token_in_env, addr.starts_with("http"), "{kind} {addr}");
        }
    }
}

#[test]
fn claude_gets_mcp_config_model_and_stdin_prompt() {
    let p = plan(&req("claude", "/tmp/mcp.sock")).unwrap();
    let i = p.args.iter().position(|a| a == "--mcp-config").unwrap();
    assert!(p.args[i + 1].ends_with(".mcp.json"));
    let cfg: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
    assert_eq!(cfg["mcpServers"]["agent-pm"]["command"], "/app/agentpm-coordinator");
    assert_eq!(cfg["mcpServers"]["agent-pm"]["args"], serde_json::json!(["mcp-bridge"]));
    assert!(p.args.windows(2).any(|w| w == ["--output-format", "stream-json"]));
    assert!(p.args.windows(2).any(|w| w == ["--model", "m-1"]));
    assert_eq!(p.args.last().unwrap(), "-p");
    assert!(p.stdin.contains("get_next_action"));
    let h = plan(&req("claude", "http://pm:8080/mcp")).unwrap();
    assert!(h.files[0].contents.contains("${AGENTPM_COORDINATOR_TOKEN}"));
    assert!(
        !p.files[0].contents.contains("AGENTPM_COORDINATOR_TOKEN"),
        "no token on the socket"
    );
    assert!(
        !p.stdin.contains("AGENT_PASSKEY"),
        "the prompt points the model at no secret"
    );
}

#[test]
fn gemini_uses_settings_file_and_short_model_flag() {
    let p = plan(&req("gemini", "/tmp/mcp.sock")).unwrap();
    assert!(p.files[0].path.ends_with(".gemini/settings.json"));
    assert!(p.args.windows(2).any(|w| w == ["-m", "m-1"]));
    assert!(p.args.contains(&"--include-directories".to_string()));
    assert!(p
        .env
        .contains(&("GEMINI_CLI_TRUST_WORKSPACE".to_string(), "true".to_string())));
    let v: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
    assert_eq!(v["mcpServers"]["agent-pm"]["args"], serde_json::json!(["mcp-bridge"]));
    assert_eq!(v["mcpServers"]["agent-pm"]["env"]["AGENT_PASSKEY"], "${AGENT_PASSKEY}");
}

#[test]
fn codex_gets_the_bridge_through_config_overrides_and_claude_as_root_the_sandbox_flag() {
    let p = plan(&req("codex", "/tmp/mcp.sock")).unwrap();
    assert!(
        p.args
            .iter()
            .any(|a| a == "mcp_servers.agent-pm.command=\"/app/agentpm-coordinator\""),
        "{:?}",
        p.args
    );
    assert_eq!(p.args.last().unwrap(), "-");
    let mut r = req("claude", "/tmp/mcp.sock");
    assert!(!plan(&r).unwrap().env.iter().any(|(k, _)| k == "IS_SANDBOX"));
    r.as_root = true;
    assert!(plan(&r)
        .unwrap()
        .env
        .contains(&("IS_SANDBOX".to_string(), "1".to_string())));
}

#[test]
fn codex_preset_runs_exec_outside_a_git_repo_without_removed_flags() {
    let mut r = req("codex", "/tmp/mcp.sock");
    r.provider = crate::config::builtin_providers()["codex"].clone();
    let p = plan(&r).unwrap();
    assert_eq!(
        &p.args[..5],
        [
            "exec",
            "--sandbox",
            "workspace-write",
            "--skip-git-repo-check",
            "--json"
        ],
        "{:?}",
        p.args
    );
    assert!(
        !p.args.iter().any(|a| a == "--full-auto"),
        "Codex 0.171 rejects --full-auto: {:?}",
        p.args
    );
}

#[test]
fn gemini_settings_enable_skills_use_the_real_dir_and_never_the_projects_own_gemini_dir() {
    let mut r = req("gemini", "/tmp/mcp.sock");
    r.real_working_dir = Some(PathBuf::from("/private/work/p"));
    let p = plan(&r).unwrap();
    assert_eq!(p.files[0].path, PathBuf::from("/ctx/agt_a/.gemini/settings.json"));
    let v: serde_json::Value = serde_json::from_str(&p.files[0].contents).unwrap();
    assert_eq!(v["experimental"]["skills"], serde_json::json!(true));
    assert_eq!(v["includeDirectories"], serde_json::json!(["/private/work/p"]));
    assert_eq!(v["loadMemoryFromIncludeDirectories"], serde_json::json!(true));
    // No context dir: refusing beats overwriting <project>/.gemini/settings.json.
    r.context_dir = None;
    let e = plan(&r).unwrap_err().to_string();
    assert!(
        e.contains("context directory") && e.contains("/work/p/.gemini/settings.json"),
        "{e}"
    );
}

#[test]
fn token_vars_and_vars_holding_known_secrets_are_scrubbed() {
    let r = crate::redact::Redactor::default();
    r.add("OTHER-AGENT-PASSKEY-9");
    let vars = [
        ("HOME", "/root"),
        ("MCP_COORDINATOR_TOKEN", "t0k3n"),
        ("COORDINATOR_TOKEN", "x"),
        ("AGENT_B_PASSKEY", "OTHER-AGENT-PASSKEY-9"),
        ("WRAPPED", "pre OTHER-AGENT-PASSKEY-9 post"),
        ("EMPTY", ""),
        ("PATH", "/usr/bin"),
    ];
    let gone = env_to_scrub(vars.iter().map(|(k, v)| (k.into(), v.into())), &r);
    let gone: Vec<String> = gone.into_iter().map(|k| k.into_string().unwrap()).collect();
    assert_eq!(
        gone,
        vec![
            "MCP_COORDINATOR_TOKEN",
            "COORDINATOR_TOKEN",
            "AGENT_B_PASSKEY",
            "WRAPPED"
        ]
    );
}

#[tokio::test]
async fn child_does_not_inherit_secret_env_but_gets_its_own_passkey() {
    std::env::set_var("AGENTPM_LAUNCH_TEST_OTHER_PK", "PASSKEY-of-another-agent-77");
    std::env::set_var("COORDINATOR_TOKEN", "launch-test-token-88");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let r = crate::redact::Redactor::default();
    r.add("PASSKEY-of-another-agent-77");
    let p = LaunchPlan {
        program: "sh".into(),
        args: vec!["-c".into(), "echo \"other=${AGENTPM_LAUNCH_TEST_OTHER_PK:-unset} token=${COORDINATOR_TOKEN:-unset} own=$AGENT_PASSKEY\"".into()],
        env: vec![("AGENT_PASSKEY".into(), "own-passkey-1".into())],
        cwd: dir.path().into(),
        stdin: String::new(),
        files: vec![],
    };
    let mut c = spawn(&p, &log, &r).await.unwrap();
    c.child.wait().await.unwrap();
    c.log_task.await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("other=unset token=unset own=own-passkey-1"), "{text}");
}

#[tokio::test]
async fn long_lines_are_forwarded_in_bounded_pieces() {
    let secret = "SECRET-abcdef-123456";
    let mut input = Vec::new();
    input.extend_from_slice(b"short\n");
    for i in 0..20_000 {
        input.extend_from_slice(format!("w{i} {secret} ").as_bytes());
    }
    input.extend_from_slice("é".repeat(70_000).as_bytes());
    input.extend_from_slice(b"\nend");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let reader: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(std::io::Cursor::new(input.clone()));
    let relay = tokio::spawn(relay_lines(reader, tx));
    let mut chunks = Vec::new();
    while let Some(c) = rx.recv().await {
        chunks.push(c);
    }
    relay.await.unwrap();
    assert!(chunks.iter().all(|c| c.len() <= MAX_LINE), "a chunk exceeds the cap");
    assert!(chunks.len() > 4, "{}", chunks.len());
    assert_eq!(chunks.concat(), input, "output lost or reordered");
    assert_eq!(chunks[0], b"short\n");
    assert_eq!(chunks.last().unwrap(), b"end", "partial last line not flushed");
    // Every piece is valid UTF-8 and masking per piece still catches every secret.
    let r = crate::redact::Redactor::default();
    r.add(secret);
    for c in &chunks {
        let t = std::str::from_utf8(c).expect("a character was split");
        assert!(!r.redact(t).contains(secret));
    }
    let masked: usize = chunks
        .iter()
        .map(|c| {
            r.redact(std::str::from_utf8(c).unwrap())
                .matches(crate::redact::MASK)
                .count()
        })
        .sum();
    assert_eq!(masked, 20_000);
}

#[test]
fn base_prompt_substitutes_working_dir() {
    let mut r = req("custom", "/tmp/mcp.sock");
    r.base_prompt = Some("work in {working_dir}".into());
    assert_eq!(plan(&r).unwrap().stdin, "work in /work/p");
}

#[test]
fn missing_command_is_a_clear_error() {
    let e = resolve_command("surely-not-a-real-command-xyz").unwrap_err();
    assert!(matches!(e, LaunchError::NotFound { .. }));
}

#[tokio::test]
async fn stop_group_kills_grandchildren() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let p = LaunchPlan {
        program: "sh".into(),
        args: vec!["-c".into(), "sleep 600 & echo grandchild $!; sleep 600".into()],
        env: vec![],
        cwd: dir.path().into(),
        stdin: String::new(),
        files: vec![],
    };
    let mut child = spawn(&p, &log, &crate::redact::Redactor::default()).await.unwrap();
    let mut gc = 0;
    for _ in 0..100 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(n) = text
            .lines()
            .find_map(|l| l.strip_prefix("grandchild "))
            .and_then(|n| n.trim().parse::<i32>().ok())
        {
            gc = n;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gc > 0, "no grandchild pid");
    stop_group(child.pid, std::time::Duration::from_secs(2)).await;
    let _ = child.child.wait().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let alive = std::fs::read_to_string(format!("/proc/{gc}/stat"))
        .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false);
    assert!(!alive, "grandchild {gc} survived");
}

#[tokio::test]
async fn output_is_redacted_into_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let r = crate::redact::Redactor::default();
    r.add("PASSKEY-123456");
    let p = LaunchPlan {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "read line; echo \"got $line and $AGENT_PASSKEY\"; echo err $AGENT_PASSKEY >&2".into(),
        ],
        env: vec![("AGENT_PASSKEY".into(), "PASSKEY-123456".into())],
        cwd: dir.path().into(),
        stdin: "hello\n".into(),
        files: vec![],
    };
    let mut c = spawn(&p, &log, &r).await.unwrap();
    c.child.wait().await.unwrap();
    c.log_task.await.unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("got hello and ********"), "{text}");
    assert!(!text.contains("PASSKEY-123456"), "{text}");
}

/// The relay parses the stream as it writes it: live progress (tokens, cost, last activity, redacted) while
/// the child runs, at most once a second, and a summary equal to reading the whole log afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_relay_publishes_live_progress_and_the_same_summary_as_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("run.log");
    let stream = dir.path().join("stream.jsonl");
    let run = crate::runs::parse::tests::CLAUDE_RUN.replace("No task; done.", "No task; done with sk-SECRET-9999.");
    std::fs::write(&stream, &run).unwrap();
    let r = crate::redact::Redactor::default();
    r.add("sk-SECRET-9999");
    let p = LaunchPlan {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            format!("head -n 3 {0}; sleep 1.5; tail -n +4 {0}; sleep 0.3", stream.display()),
        ],
        env: vec![],
        cwd: dir.path().into(),
        stdin: String::new(),
        files: vec![],
    };
    let prices = std::sync::Arc::new(crate::runs::prices::PriceTable::default());
    let mut c = spawn_recorded(
        &p,
        &log,
        &r,
        Some(Recorder {
            kind: "claude".into(),
            prices: prices.clone(),
        }),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut live = c.live.clone();
    while live.changed().await.is_ok() {
        if let Some(p) = live.borrow_and_update().clone() {
            seen.push((std::time::Instant::now(), p));
        }
    }
    c.child.wait().await.unwrap();
    let z = c.log_task.await.unwrap().expect("a summarizer");
    // Before the pause (published at once, or a second after the init line if that came alone): msg_1 at its
    // final size, the tool it called, the cost so far from the price table.
    let first = &seen.iter().find(|(_, p)| p.usage.total() > 0).unwrap().1;
    assert_eq!(
        first.usage,
        crate::runs::events::TokenUsage {
            input: 10,
            output: 20,
            cache_read: 0,
            cache_write: 100
        },
        "{seen:?}"
    );
    assert_eq!(first.last_activity.as_deref(), Some("tool: mcp__agent-pm__get_my_task"));
    assert!(first.cost_is_estimate && first.cost_usd.is_some_and(|c| c > 0.0));
    // After it: the `result` totals and the CLI's own cost; the secret in the text is masked.
    let last = &seen.last().unwrap().1;
    assert_eq!(
        (last.usage.output, last.cost_usd, last.cost_is_estimate),
        (27, Some(0.0123), false)
    );
    assert_eq!(last.last_activity.as_deref(), Some("No task; done with ********."));
    // At most once a second while it runs (the last one is the flush at the end of the output).
    let running = &seen[..seen.len() - 1];
    assert!(
        running
            .windows(2)
            .all(|w| w[1].0 - w[0].0 >= PUBLISH_EVERY - std::time::Duration::from_millis(50)),
        "published more than once a second"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("sk-SECRET-9999"));
    let from_log = crate::runs::store::summarize_log("claude", Some(&log), &prices, 0, true);
    assert_eq!(z.finish_run(&text, &prices, 0, true), from_log);
}
