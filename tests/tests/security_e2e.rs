//! The attack review's findings (issue 15), each against a hostile server or a hostile project folder, with
//! real coordinator processes or the real engine and real child processes. Each prints one "SECURITY| …"
//! line for the README's table.

use agentpm_e2e::hostile::{Hostile, Script};
use agentpm_e2e::*;
use coordinator::config::{AgentSettings, ProviderSettings, Settings};
use coordinator::engine::{Engine, EngineConfig};
use coordinator::redact::Redactor;
use coordinator::secrets::{self, MemoryStore, SecretStore};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PK_A: &str = "pk-alpha-0123456789abcdef";
const PK_B: &str = "pk-bravo-fedcba9876543210";

/// A provider that is our own shell script (custom conventions unless `kind` says otherwise).
fn script_provider(script: &str, kind: &str) -> ProviderSettings {
    ProviderSettings {
        command: "/bin/sh".into(),
        args: vec!["-c".into(), script.into(), "provider".into()],
        model: None,
        kind: Some(kind.into()),
    }
}

struct Setup {
    engine: Engine,
    logs: PathBuf,
}

/// The real engine pointed at `server`, agents `agt_a` (enabled) and `agt_b` (disabled), both with passkeys.
fn engine(dir: &Path, server: &str, claude: ProviderSettings, tweak: impl FnOnce(&mut Settings)) -> Setup {
    let logs = dir.join("logs");
    let mut settings = Settings {
        server: Some(server.into()),
        polling_interval_secs: 1,
        max_concurrent: 2,
        log_dir: Some(logs.clone()),
        ..Settings::default()
    };
    settings.providers.insert("claude".into(), claude);
    settings.agents.insert("agt_a".into(), AgentSettings::default());
    settings.agents.insert(
        "agt_b".into(),
        AgentSettings {
            enabled: false,
            ..Default::default()
        },
    );
    tweak(&mut settings);
    let store = Arc::new(MemoryStore::new());
    store.set(&secrets::agent_account("agt_a"), PK_A).unwrap();
    store.set(&secrets::agent_account("agt_b"), PK_B).unwrap();
    store.set(secrets::TOKEN_ACCOUNT, "tok-hostile-token-77").unwrap();
    let engine = Engine::launch(EngineConfig {
        settings,
        settings_path: dir.join("settings.json"),
        state_path: Some(dir.join("state.json")),
        secrets: store,
        // Our own redactor: tests in this process must not mask each other's secrets.
        redactor: Redactor::default(),
        autostart: true,
        runs_db: None,
    });
    Setup { engine, logs }
}

async fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    f()
}

fn project(dir: &Path) -> PathBuf {
    let p = dir.join("project");
    std::fs::create_dir_all(&p).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_command_from_the_server_never_runs() {
    let d = tempfile::tempdir().unwrap();
    let (proj, evil) = (project(d.path()), d.path().join("kick-ran"));
    let script = Script {
        project_dir: proj.clone(),
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1", "kick_command": format!("/bin/sh -c 'env > {}'", evil.display())}),
        always: true,
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let s = engine(
        d.path(),
        &h.socket.display().to_string(),
        script_provider("echo configured >> \"$WORKING_DIRECTORY/configured-ran\"", "custom"),
        |_| {},
    );
    assert!(
        wait_for(Duration::from_secs(15), || proj.join("configured-ran").exists()).await,
        "the configured provider did not run"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !evil.exists(),
        "the server's kick_command ran (with the agent's environment)"
    );
    let reports = s
        .engine
        .snapshot()
        .last_errors
        .iter()
        .filter(|e| e.message.contains("kick_command"))
        .count();
    assert_eq!(
        reports,
        1,
        "the ignored kick_command is reported once: {:?}",
        s.engine.snapshot().last_errors
    );
    println!("SECURITY| server sends kick_command | ignored, configured provider ran, reported once | nothing of the server's ran");
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_command_from_the_dynamic_config_never_runs() {
    let d = tempfile::tempdir().unwrap();
    let (proj, evil) = (project(d.path()), d.path().join("config-provider-ran"));
    let script = Script {
        project_dir: proj.clone(),
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1", "provider": "evil"}),
        always: true,
        remote_config: json!({"ai_providers": {"evil": {"cli_command": "/bin/sh", "cli_args": ["-c", format!("env > {}", evil.display())]}},
                              "agents": {"agt_a": {"passkey": PK_A}}}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, true).await;
    let url = format!("{}/mcp", h.http.clone().unwrap());
    let s = engine(
        d.path(),
        &url,
        script_provider("echo claude >> \"$WORKING_DIRECTORY/claude-config-ran\"", "custom"),
        |_| {},
    );
    assert!(
        wait_for(Duration::from_secs(15), || !h.calls_of("GET config").is_empty()).await,
        "dynamic config never fetched"
    );
    assert!(
        wait_for(Duration::from_secs(15), || proj.join("claude-config-ran").exists()).await,
        "an unknown provider name did not fall back to the claude configuration"
    );
    // Starts keep coming after the config was read: none of them may run the server's command.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!evil.exists(), "the server's provider command ran");
    println!("SECURITY| dynamic config adds provider /bin/sh -c … and a start names it | the claude configuration ran instead | nothing of the server's ran");
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_masked_across_the_64k_cut_and_for_disabled_agents() {
    let d = tempfile::tempdir().unwrap();
    let proj = project(d.path());
    // agt_b is disabled, but its passkey is a secret all the same: the agent prints it (read from a file).
    std::fs::write(d.path().join("b.txt"), PK_B).unwrap();
    let printer = format!(
        "head -c 65530 /dev/zero | tr '\\0' x; printf '%s\\n' \"$AGENT_PASSKEY\"; cat {}; echo; echo done",
        d.path().join("b.txt").display()
    );
    let script = Script {
        project_dir: proj,
        agents: vec!["agt_a".into(), "agt_b".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let s = engine(
        d.path(),
        &h.socket.display().to_string(),
        script_provider(&printer, "custom"),
        |_| {},
    );
    assert!(
        wait_for(Duration::from_secs(15), || !files_containing(&s.logs, "done")
            .is_empty())
        .await,
        "the agent's run never logged"
    );
    s.engine.shutdown().await;
    for pk in [PK_A, PK_B] {
        let hits = files_containing(d.path(), pk)
            .into_iter()
            .filter(|p| !p.ends_with("b.txt"))
            .collect::<Vec<_>>();
        assert!(hits.is_empty(), "{pk} on disk in {hits:?}");
    }
    assert!(
        !files_containing(&s.logs, coordinator::redact::MASK).is_empty(),
        "nothing was masked"
    );
    println!("SECURITY| agent prints its passkey across the 64 KiB cut, and a disabled agent's passkey | both masked in the log | no secret on disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_planted_in_the_project_reach_nothing_outside_it() {
    let d = tempfile::tempdir().unwrap();
    let proj = project(d.path());
    let victim = d.path().join("victim");
    std::fs::create_dir_all(victim.join("skills/precious")).unwrap();
    std::fs::write(victim.join("skills/precious/SKILL.md"), "keep me").unwrap();
    std::fs::write(victim.join("CLAUDE.md"), "victim's own").unwrap();
    std::fs::write(d.path().join("victim-file"), "victim file\n").unwrap();
    // What a cloned repository can carry.
    std::fs::create_dir_all(proj.join(".aiagent/agents/agt_a")).unwrap();
    std::os::unix::fs::symlink(&victim, proj.join(".aiagent/agents/agt_a/.claude")).unwrap();
    std::os::unix::fs::symlink(d.path().join("victim-file"), proj.join(".aiagent/.gitignore")).unwrap();
    let script = Script {
        project_dir: proj.clone(),
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let marker = proj.join("agent-ran");
    let s = engine(
        d.path(),
        &h.socket.display().to_string(),
        script_provider(&format!("cat >/dev/null; touch {}", marker.display()), "claude"),
        |_| {},
    );
    assert!(
        wait_for(Duration::from_secs(15), || marker.exists()
            || !s.engine.snapshot().last_errors.is_empty())
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.engine.shutdown().await;
    assert_eq!(
        std::fs::read_to_string(victim.join("skills/precious/SKILL.md")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(victim.join("CLAUDE.md")).unwrap(),
        "victim's own"
    );
    assert!(!victim.join("settings.json").exists());
    assert_eq!(
        std::fs::read_to_string(d.path().join("victim-file")).unwrap(),
        "victim file\n"
    );
    println!("SECURITY| .aiagent/agents/<id>/.claude and .aiagent/.gitignore are symlinks out of the project | refused | victims untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_debug_output_never_rests_on_disk_unmasked() {
    let d = tempfile::tempdir().unwrap();
    let proj = project(d.path());
    // A `claude` that does what Claude Code does with --debug-file: writes its own file, bypassing our log.
    let fake_claude = "cat >/dev/null; while [ $# -gt 0 ]; do if [ \"$1\" = --debug-file ]; then echo \"debug $AGENT_PASSKEY\" > \"$2\"; fi; shift; done; echo \"stderr-debug $AGENT_PASSKEY\" >&2; echo finished";
    let script = Script {
        project_dir: proj,
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let s = engine(
        d.path(),
        &h.socket.display().to_string(),
        script_provider(fake_claude, "claude"),
        |st| st.debug = true,
    );
    assert!(
        wait_for(Duration::from_secs(15), || !files_containing(&s.logs, "finished")
            .is_empty())
        .await,
        "the run never logged"
    );
    s.engine.shutdown().await;
    let hits = files_containing(d.path(), PK_A);
    assert!(hits.is_empty(), "passkey on disk in {hits:?}");
    println!("SECURITY| debug on: claude writes its own debug file | no --debug-file; debug output goes through the masked log | no secret on disk");
}

/// The Python coordinator's YAML for `agt_a` on the hostile server, its `claude` provider a shell script;
/// written into `dir`, returns its path.
fn python_yaml_with_script(dir: &Path, h: &Hostile, script: &str) -> PathBuf {
    let yaml = format!(
        "polling_interval: 1\nmax_concurrent: 1\nmcp_socket_path: {}\ncoordinator_token: tok-hostile-token-77\nai_providers:\n  claude:\n    cli_command: /bin/sh\n    cli_args: [\"-c\", \"{script}\", \"x\"]\nagents:\n  agt_a:\n    passkey: \"{PK_A}\"\n",
        h.socket.display()
    );
    let cfg = dir.join("coordinator.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    cfg
}

/// Some process on this machine runs exactly `cmdline`.
fn runs(cmdline: &str) -> bool {
    all_cmdlines().iter().any(|c| c.trim() == cmdline)
}

fn cli(data: &Path) -> Command {
    let mut c = Command::new(bin("agentpm-coordinator"));
    c.env_remove("MCP_COORDINATOR_TOKEN").env("AGENTPM_DATA_DIR", data);
    c
}

#[test]
fn plain_http_to_another_host_is_refused_unless_opted_in() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("settings.json");
    std::fs::write(&path, r#"{"server": "http://192.0.2.10:8080/mcp"}"#).unwrap();
    let out = cli(d.path()).args(["run", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("allow_insecure_http") && err.contains("192.0.2.10"),
        "{err}"
    );
    println!("SECURITY| server = http:// to another host | refused at load (exit 2) unless allow_insecure_http | token never sent in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_lock_folder_in_tmp_is_not_used() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    let victim = d.path().join("victim");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    let uid = nix::unistd::getuid();
    std::os::unix::fs::symlink(&victim, tmp.join(format!("agentpm-coordinator-{uid}"))).unwrap();
    let script = Script {
        project_dir: project(d.path()),
        agents: vec![],
        first_action: json!({"action": "hold"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let cfg = d.path().join("settings.json");
    std::fs::write(&cfg, json!({"server": h.socket}).to_string()).unwrap();
    let mut child = cli(&d.path().join("data"))
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmp)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !h.calls_of("health_check").is_empty()).await,
        "the coordinator did not start"
    );
    let (status, obeyed) = sigterm_and_wait(&mut child, Duration::from_secs(10));
    assert!(obeyed && status.success(), "{status:?}");
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "lock files written through the planted link"
    );
    assert!(
        d.path().join("data/coordinator/locks").is_dir(),
        "no private fallback lock folder"
    );
    println!("SECURITY| $TMPDIR/agentpm-coordinator-<uid> planted as a link | not used; lock under the data root | victim folder untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_children_of_a_dead_agent_are_stopped_after_a_coordinator_kill() {
    let d = tempfile::tempdir().unwrap();
    let proj = project(d.path());
    let script = Script {
        project_dir: proj,
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    // The agent leaves a background child and keeps printing: when the coordinator dies, the next print
    // kills the agent (broken pipe) and only the child remains in the group.
    let marker = format!("sleep {}", 300 + std::process::id() % 97);
    let cfg = python_yaml_with_script(
        d.path(),
        &h,
        &format!("{marker} >/dev/null 2>&1 & while true; do echo tick; sleep 0.1; done"),
    );
    let data = d.path().join("data");
    let spawn = || {
        cli(&data)
            .env("AGENTPM_KEYRING_SERVICE", "com.aiagentpm.coordinator.test-security")
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let running = || runs(&marker);
    let mut first = spawn();
    assert!(
        wait_for(Duration::from_secs(15), running).await,
        "the agent never started"
    );
    // The kill comes once the state file records the agent's group (milliseconds after the spawn; a crash
    // inside that window is the one case the restart cannot see).
    let recorded = || {
        std::fs::read_dir(data.join("coordinator"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name().to_string_lossy().starts_with("state")
                    && std::fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .contains("\"pgid\"")
            })
    };
    assert!(
        wait_for(Duration::from_secs(10), recorded).await,
        "the agent's group was never recorded in the state file"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        running(),
        "the background child should outlive the coordinator until the restart"
    );
    let mut second = spawn();
    let stopped = wait_for(Duration::from_secs(30), || !running()).await;
    let _ = sigterm_and_wait(&mut second, Duration::from_secs(10));
    if !stopped {
        let _ = Command::new("pkill").args(["-f", &marker]).status();
    }
    assert!(stopped, "the orphaned group survived the restart");
    println!("SECURITY| coordinator SIGKILLed; agent dies of a broken pipe, its background child lives | the restart stops the whole group (pgid, start-time checked) | no orphan");
}

#[test]
fn a_short_passkey_is_refused_with_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let mut child = cli(d.path())
        .env("AGENTPM_KEYRING_SERVICE", "com.aiagentpm.coordinator.test-never-used")
        .args(["passkey", "set", "agt_a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 characters") && err.contains("at least 8"), "{err}");
    println!("SECURITY| a 3-character passkey | refused (at least 8 characters) | nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_terminal_stops_the_agents_cleanly() {
    let d = tempfile::tempdir().unwrap();
    let script = Script {
        project_dir: project(d.path()),
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let marker = format!("sleep {}", 400 + std::process::id() % 89);
    let cfg = python_yaml_with_script(d.path(), &h, &marker);
    let mut child = cli(&d.path().join("data"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = || runs(&marker);
    assert!(
        wait_for(Duration::from_secs(15), running).await,
        "the agent never started"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGHUP did not stop the coordinator cleanly: {status:?}"
    );
    assert!(!running(), "the agent outlived the coordinator");
    assert!(
        !h.calls_of("report_process_exit").is_empty() || !h.calls_of("invalidate_session").is_empty(),
        "the exit was not reported to the server"
    );
    println!("SECURITY| SIGHUP (terminal closed) | clean stop: agents stopped and their exits reported | nothing left running");
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_just_under_the_cap_costs_about_its_size_not_a_tree() {
    // 15 MiB of tiny items, under the 16 MiB cap for project lists: as a JSON tree (`serde_json::Value`) this is
    // 7 million objects (hundreds of MiB); read as typed structs each bad item is dropped as it is read.
    let d = tempfile::tempdir().unwrap();
    let mut text = String::with_capacity(15 << 20);
    text.push_str("{\"success\":true,\"projects\":[{\"project_id\":\"prj_x\",\"working_directory\":\"/nonexistent\",\"agents\":[]}");
    while text.len() < (15 << 20) - 4 {
        text.push_str(",{}");
    }
    text.push_str("]}");
    let script = Script {
        project_dir: project(d.path()),
        agents: vec![],
        first_action: json!({"action": "hold"}),
        projects_text: Some(Arc::new(text)),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let cfg = d.path().join("settings.json");
    std::fs::write(
        &cfg,
        json!({"server": h.socket, "polling_interval_secs": 1}).to_string(),
    )
    .unwrap();
    let mut child = cli(&d.path().join("data"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || h
            .calls_of("list_active_projects_with_agents")
            .len()
            >= 3)
        .await,
        "the coordinator did not poll three times"
    );
    let peak = peak_rss_mib(child.id());
    let (status, obeyed) = sigterm_and_wait(&mut child, Duration::from_secs(10));
    assert!(obeyed && status.success(), "{status:?}");
    assert!(peak > 1.0 && peak < 100.0, "peak RSS {peak:.0} MiB for a 15 MiB reply");
    println!("SECURITY| a 15 MiB reply of 5 million tiny items (under the 16 MiB cap) | read as typed structs, bad items dropped as read, lists bounded (100,000 projects) | peak RSS {peak:.0} MiB");
}

/// A private CA and a certificate for `localhost` signed by it (openssl CLI), in `dir`.
fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca_key, ca, key, csr, cert, ext) = (
        dir.join("ca.key"),
        dir.join("ca.pem"),
        dir.join("srv.key"),
        dir.join("srv.csr"),
        dir.join("srv.pem"),
        dir.join("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl not found (apt install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=AgentPM test private CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
    ]);
    ssl(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "srv.pem",
    ]);
    let _ = (ca_key, csr);
    (ca, cert, key)
}

/// HTTPS in front of a plain HTTP server: TLS is terminated here, bytes are copied to `backend`.
async fn tls_proxy(cert: &Path, key: &Path, backend: std::net::SocketAddr) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(c).await else { return };
                let Ok(mut up) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_works_through_the_system_trust_store_and_an_unknown_ca_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (ca, cert, key) = private_ca(d.path());
    let mut cfg = pm_sim::SimConfig::new(
        pm_sim::Workload {
            projects: 1,
            agents: 1,
            items_per_pair: 0,
            provider: "claude".into(),
            model: None,
        },
        d.path().join("work"),
    );
    cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    let backend: std::net::SocketAddr = sim.http_base().unwrap().trim_start_matches("http://").parse().unwrap();
    let port = tls_proxy(&cert, &key, backend).await;
    let settings = d.path().join("settings.json");
    std::fs::write(
        &settings,
        json!({"server": format!("https://localhost:{port}/mcp")}).to_string(),
    )
    .unwrap();
    let data = d.path().join("data");
    let token = sim.coordinator_token();
    let doctor = |trust: Option<PathBuf>| {
        let mut c = cli(&data);
        c.env("MCP_COORDINATOR_TOKEN", &token)
            .env("AGENTPM_KEYRING_SERVICE", "com.aiagentpm.coordinator.test-never-used")
            .env_remove("SSL_CERT_DIR")
            .args(["doctor", "--config"])
            .arg(&settings);
        match trust {
            // The system trust store as rustls-native-certs reads it on Linux; on macOS it is the Keychain's.
            Some(p) => c.env("SSL_CERT_FILE", p),
            None => c.env_remove("SSL_CERT_FILE"),
        };
        async move {
            let out = tokio::process::Command::from(c).output().await.unwrap();
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
        }
    };
    let server_line = |text: &str| {
        text.lines()
            .find(|l| l.contains("PM server"))
            .unwrap_or_default()
            .to_string()
    };
    let trusted = doctor(Some(ca.clone())).await;
    // Doctor reads the token from the secret store, which this test does not set up: a verified TLS session shows
    // as the server's own 401 ("Authorization header required"), i.e. the request got through TLS to the server.
    let line = server_line(&trusted);
    assert!(
        line.contains("HTTP 401") && !line.to_lowercase().contains("certificate"),
        "private CA in the trust store, yet: {trusted}"
    );
    let untrusted = doctor(None).await;
    let line = server_line(&untrusted);
    assert!(
        line.contains("FAIL") && line.to_lowercase().contains("certificate"),
        "an unknown CA must be refused, naming the certificate: {untrusted}"
    );
    println!("SECURITY| https:// server with a certificate from a private CA | trusted once the CA is in the system trust store (rustls-native-certs: Keychain on macOS, SSL_CERT_FILE / the system bundle here); refused otherwise, naming the certificate | no token to an unverified server");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_failing_projects_never_flood_the_server_or_our_fds() {
    // The server lists 30,000 projects and grants a start for each; every run fails at once. Before, 30,000
    // projects with missing folders opened 1,201 concurrent report_agent_error connections (1,406 fds) and our own
    // health_check failed with EAGAIN. (A missing folder is now known locally and never asked about.)
    let d = tempfile::tempdir().unwrap();
    let dir = project(d.path());
    let projects: Vec<_> = (0..30_000).map(|i| json!({"project_id": format!("prj_{i}"), "project_name": "x", "working_directory": dir, "agents": ["agt_a"]})).collect();
    let text = json!({"success": true, "projects": projects}).to_string();
    let script = Script {
        project_dir: project(d.path()),
        agents: vec!["agt_a".into()],
        first_action: json!({"action": "start", "task_id": "tsk_1"}),
        always: true,
        projects_text: Some(Arc::new(text)),
        ..Default::default()
    };
    let h = Hostile::start(d.path(), script, false).await;
    let cfg = python_yaml_with_script(d.path(), &h, "echo Error: failed; exit 1");
    let mut child = cli(&d.path().join("data"))
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let mut peak_fds = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(12) {
        peak_fds = peak_fds.max(fds());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (health, asked, reports) = (
        h.calls_of("health_check").len(),
        h.calls_of("get_agent_action").len(),
        h.calls_of("report_agent_error").len(),
    );
    let (status, obeyed) = sigterm_and_wait(&mut child, Duration::from_secs(15));
    assert!(obeyed && status.success(), "{status:?}");
    assert!(asked >= 5, "the coordinator hardly asked: {asked} questions");
    assert!(health >= 2, "our own health checks stopped: {health}");
    assert!(reports <= asked, "more error reports ({reports}) than runs");
    assert!(peak_fds < 150, "peak {peak_fds} open fds");
    println!("SECURITY| 30,000 projects, a start granted for each, every run failing | server calls bounded (64 in flight per client), questions bounded by free slots, one report per failure streak | peak {peak_fds} fds; {asked} questions, {reports} reports and {health} health checks in 12 s");
}
