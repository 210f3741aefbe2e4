//! The real `agentpm-coordinator` binary: exit codes, messages, YAML configs, signals, the demo.

use agentpm_e2e::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cli() -> Command {
    let mut c = Command::new(bin("agentpm-coordinator"));
    c.env_remove("MCP_COORDINATOR_TOKEN");
    c
}

#[test]
fn bad_settings_exit_2_and_name_field_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, r#"{"max_concurrent": 0}"#).unwrap();
    let out = cli()
        .env("AGENTPM_DATA_DIR", dir.path())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("max_concurrent") && err.contains('0') && err.contains("settings.json"),
        "{err}"
    );
    // The bad file is left as it was.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"max_concurrent": 0}"#);
}

#[test]
fn bad_yaml_exit_2_and_name_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, "polling_interval: -5\nagents:\n  agt_a:\n    passkey: x\n").unwrap();
    let out = cli()
        .env("AGENTPM_DATA_DIR", dir.path())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("polling_interval") && err.contains("-5"), "{err}");
}

#[test]
fn malformed_agents_block_names_the_type_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.yaml");
    for yaml in [
        "agents: [agt_a, pk-leak-4242]\n",
        "agents:\n  agt_a:\n    passkey: [pk-leak-4242]\n",
    ] {
        std::fs::write(&path, yaml).unwrap();
        let out = cli()
            .env("AGENTPM_DATA_DIR", dir.path())
            .args(["run", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("coordinator.yaml") && err.contains("agents") && err.contains("a list"),
            "{err}"
        );
        assert!(!err.contains("pk-leak-4242"), "passkey printed in the error: {err}");
    }
}

/// A flow-style entry the line-based scrub cannot rewrite: the scrub refuses, naming the file and the agent,
/// and changes nothing (it fails before the secret store is touched, so no keyring is needed here).
#[test]
fn scrub_that_would_leave_a_secret_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coordinator.yaml");
    let yaml = "coordinator_token: tok-flow-1\nagents:\n  agt_a: {passkey: pk-flow-7777}\n  agt_b:\n    passkey: pk-block-8888\n";
    std::fs::write(&path, yaml).unwrap();
    let data = dir.path().join("data");
    let out = cli()
        .env("AGENTPM_DATA_DIR", &data)
        .env("AGENTPM_KEYRING_SERVICE", "com.aiagentpm.coordinator.test-never-used")
        .args(["import-yaml", "--scrub"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("coordinator.yaml") && text.contains("agt_a") && !text.contains("no longer contains secrets"),
        "{text}"
    );
    assert!(
        !text.contains("pk-flow-7777") && !text.contains("pk-block-8888"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), yaml);
    assert!(!dir.path().join("coordinator.yaml.bak").exists());
    assert!(!data.join("coordinator/settings.json").exists());
}

#[test]
fn unknown_settings_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, r#"{"polling_intervall": 3}"#).unwrap();
    let out = cli()
        .env("AGENTPM_DATA_DIR", dir.path())
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("polling_intervall"));
}

#[test]
fn demo_drains_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli()
        .env("AGENTPM_DATA_DIR", dir.path())
        .args([
            "demo",
            "--agents",
            "2",
            "--projects",
            "2",
            "--items",
            "1",
            "--work-ms",
            "100",
            "--timeout",
            "90",
            "--dir",
        ])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("All work done")
            && stdout.contains("4/4 items done")
            && stdout.contains("0 protocol violations"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_python_yaml_and_env_passkeys_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let sim = socket_sim(dir.path(), 2, 1, 2, Some(2), pm_sim::ExitTool::Both).await;
    let ids = sim.agent_ids();
    // The Python coordinator's own format: `${VAR}` passkeys and token, a claude provider that is our fake agent.
    let yaml = format!(
        "polling_interval: 1\nmax_concurrent: 2\nmcp_socket_path: {sock}\ncoordinator_token: ${{TEST_TOKEN}}\nai_providers:\n  claude:\n    cli_command: {fake}\n    cli_args: [\"--work-ms\", \"100\"]\nagents:\n  {a}:\n    passkey: ${{PK_A}}\n  {b}:\n    passkey: ${{PK_B}}\n",
        sock = sim.socket_path().unwrap().display(),
        fake = bin("fake-agent").display(),
        a = ids[0],
        b = ids[1]
    );
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = cli()
        .env("AGENTPM_DATA_DIR", dir.path().join("data"))
        .env("TEST_TOKEN", sim.coordinator_token())
        .env("PK_A", sim.passkey(&ids[0]))
        .env("PK_B", sim.passkey(&ids[1]))
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = sim
        .wait_until(Duration::from_secs(60), |s| s.remaining_items == 0)
        .await;
    // Let the last exits be reported, then ask it to stop.
    sim.wait_until(Duration::from_secs(10), |s| s.exit_reports >= 4).await;
    let (status, obeyed) = sigterm_and_wait(&mut child, Duration::from_secs(20));
    assert!(obeyed, "coordinator did not exit after SIGTERM");
    let out = child.wait_with_output().unwrap();
    assert!(
        done,
        "work not drained: {:?}\n{}",
        sim.stats(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(status.success(), "{status:?}");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for id in &ids {
        assert!(!stderr.contains(&sim.passkey(id)));
    }
    sim.shutdown().await;
}

/// `run --json | head -1`: when stdout goes away the coordinator stops its agents (whole process groups) and
/// exits, instead of panicking on the next print and leaving them behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stdout_stops_the_agents_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let sim = socket_sim(dir.path(), 1, 1, 1, Some(1), pm_sim::ExitTool::Both).await;
    let yaml = python_yaml(&sim, 1, 1, &["--hang"]);
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = cli()
        .env("AGENTPM_DATA_DIR", dir.path().join("data"))
        .args(["--json", "run", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        sim.wait_until(Duration::from_secs(30), |s| s.live_processes == 1).await,
        "the agent never started"
    );
    drop(child.stdout.take()); // the reader goes away
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the coordinator kept running with its stdout closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success() && !stderr.contains("panicked"), "{status:?}\n{stderr}");
    assert!(
        sim.wait_until(Duration::from_secs(5), |s| s.live_processes == 0).await,
        "the agent outlived its coordinator"
    );
    sim.shutdown().await;
}

/// Started from Finder or as a login item, the coordinator has `PATH=/usr/bin:/bin`; the user's CLIs live in
/// folders their login shell adds. A provider named just `claude`, installed in such a folder, is found
/// (doctor says where) and runs — and so does what it runs (`node`-style lookups use the same PATH).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_on_the_login_shells_path_is_found_from_a_minimal_environment() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let tools = home.join("tools/bin");
    std::fs::create_dir_all(&tools).unwrap();
    std::fs::copy(bin("fake-agent"), tools.join("claude")).unwrap();
    // What a user's profile does; the coordinator's own PATH does not have the folder.
    std::fs::write(
        home.join(".bash_profile"),
        "echo 'Good morning'\nexport PATH=\"$HOME/tools/bin:$PATH\"\n",
    )
    .unwrap();
    let sim = socket_sim(dir.path(), 1, 1, 2, Some(2), pm_sim::ExitTool::Both).await;
    let id = sim.agent_ids()[0].clone();
    let yaml = format!(
        "polling_interval: 1\nmcp_socket_path: {sock}\ncoordinator_token: ${{TEST_TOKEN}}\nai_providers:\n  claude:\n    cli_command: claude\n    cli_args: [\"--work-ms\", \"50\"]\nagents:\n  {id}:\n    passkey: ${{PK_A}}\n",
        sock = sim.socket_path().unwrap().display()
    );
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let minimal = |c: &mut Command| {
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("SHELL", "/bin/bash")
            .env("AGENTPM_DATA_DIR", dir.path().join("data"));
        if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            c.env("DBUS_SESSION_BUS_ADDRESS", bus);
        }
        c.env("TEST_TOKEN", sim.coordinator_token())
            .env("PK_A", sim.passkey(&id));
    };
    let mut doctor = cli();
    minimal(&mut doctor);
    let out = doctor.args(["doctor", "--config"]).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("claude found at {}", tools.join("claude").display())),
        "doctor did not find the CLI on the login shell's PATH:\n{text}"
    );
    let mut run = cli();
    minimal(&mut run);
    let mut child = run
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = sim
        .wait_until(Duration::from_secs(30), |s| s.remaining_items == 0)
        .await;
    sigterm_and_wait(&mut child, Duration::from_secs(20));
    let err = child.wait_with_output().unwrap().stderr;
    assert!(
        done,
        "the CLI on the login shell's PATH did not run: {:?}\n{}",
        sim.stats(),
        String::from_utf8_lossy(&err)
    );
    sim.shutdown().await;
}

/// `status` reads what the running `run` of the same config is doing: its runs, and what needs you (an agent
/// without a passkey here), with the CLI's command for the fix. Exit 1 while something needs you, 3 once it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_the_running_coordinator_does_and_what_needs_you() {
    let dir = tempfile::tempdir().unwrap();
    let sim = socket_sim(dir.path(), 2, 1, 3, Some(2), pm_sim::ExitTool::Both).await;
    let ids = sim.agent_ids();
    // The second agent is configured with an unset variable: enabled, no passkey.
    let yaml = format!(
        "polling_interval: 1\nmax_concurrent: 2\nmcp_socket_path: {sock}\ncoordinator_token: ${{TEST_TOKEN}}\nai_providers:\n  claude:\n    cli_command: {fake}\n    cli_args: [\"--work-ms\", \"1500\"]\nagents:\n  {a}:\n    passkey: ${{PK_A}}\n  {b}:\n    passkey: ${{PK_UNSET_FOR_STATUS}}\n",
        sock = sim.socket_path().unwrap().display(),
        fake = bin("fake-agent").display(),
        a = ids[0],
        b = ids[1]
    );
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let data = dir.path().join("data");
    let mut child = cli()
        .env("AGENTPM_DATA_DIR", &data)
        .env("TEST_TOKEN", sim.coordinator_token())
        .env("PK_A", sim.passkey(&ids[0]))
        .env_remove("PK_UNSET_FOR_STATUS")
        .args(["run", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = || {
        let out = cli()
            .env("AGENTPM_DATA_DIR", &data)
            .args(["status", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let t = Instant::now();
    let (mut code, mut text) = status();
    while !(text.contains("running  ") && text.contains("has no passkey")) && t.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (code, text) = status();
    }
    assert!(text.contains(&format!("running  {}", ids[0])), "{text}");
    assert!(
        text.contains(&format!("{} has no passkey", ids[1]))
            && text.contains(&format!("`agentpm-coordinator passkey set {}`", ids[1])),
        "{text}"
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains(&sim.passkey(&ids[0])));
    let (st, obeyed) = sigterm_and_wait(&mut child, Duration::from_secs(20));
    assert!(obeyed && st.success(), "{st:?}");
    let (code, text) = status();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("no coordinator is running"), "{text}");
    sim.shutdown().await;
}
