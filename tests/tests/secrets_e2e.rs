//! Passkeys that exist only in the real platform secret store (Secret Service here, Keychain on macOS):
//! set through the CLI, used by `run`, and found in no argv, log, settings file or status line.
//!
//! Needs a secret store. scripts/test runs these inside a private D-Bus session with gnome-keyring and sets
//! AGENTPM_TEST_KEYRING=1; with that variable set, an unavailable store is a failure, not a skip.

use agentpm_e2e::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn keyring_wanted() -> bool {
    if std::env::var("AGENTPM_TEST_KEYRING").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "SKIPPED: set AGENTPM_TEST_KEYRING=1 inside a D-Bus session with an unlocked keyring (scripts/test does)"
    );
    false
}

/// The CLI with a private data dir and a private keyring service (tests never touch real secrets).
fn cli(data: &std::path::Path, service: &str) -> Command {
    let mut c = Command::new(bin("agentpm-coordinator"));
    c.env("AGENTPM_DATA_DIR", data)
        .env("AGENTPM_KEYRING_SERVICE", service)
        .env_remove("MCP_COORDINATOR_TOKEN");
    c
}

fn set_secret(data: &std::path::Path, service: &str, args: &[&str], value: &str) {
    let mut child = cli(data, service)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(value), "value echoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_authenticates_with_a_passkey_only_in_the_platform_store() {
    if !keyring_wanted() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = format!("com.aiagentpm.coordinator.test-{}", std::process::id());
    let workload = pm_sim::Workload {
        projects: 1,
        agents: 2,
        items_per_pair: 1,
        provider: "fake".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(workload, dir.path().join("projects"));
    cfg.socket_path = Some(dir.path().join("mcp.sock"));
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    let ids = sim.agent_ids();

    // settings.json without any secret.
    let mut settings = coordinator::config::Settings {
        server: Some(sim.socket_path().unwrap().display().to_string()),
        polling_interval_secs: 1,
        ..Default::default()
    };
    settings.providers.insert(
        "fake".into(),
        coordinator::config::ProviderSettings {
            command: bin("fake-agent").display().to_string(),
            args: vec!["--work-ms".into(), "800".into()],
            model: None,
            kind: Some("custom".into()),
        },
    );
    for id in &ids {
        settings.agents.insert(
            id.clone(),
            coordinator::config::AgentSettings {
                provider: Some("fake".into()),
                ..Default::default()
            },
        );
    }
    let settings_path = data.join("coordinator/settings.json");
    settings.save(&settings_path).unwrap();

    for id in &ids {
        set_secret(&data, &service, &["passkey", "set", id], &sim.passkey(id));
    }
    set_secret(&data, &service, &["token", "set"], &sim.coordinator_token());
    let list = cli(&data, &service).args(["passkey", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for id in &ids {
        assert!(
            list.lines()
                .any(|l| l.starts_with(id.as_str()) && l.contains("passkey present")),
            "{list}"
        );
        assert!(!list.contains(&sim.passkey(id)));
    }

    let mut child = cli(&data, &service)
        .args(["--json", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        sim.wait_until(Duration::from_secs(30), |s| s.live_processes >= 1).await,
        "no agent started: {:?}",
        sim.stats()
    );
    let secrets: Vec<String> = ids
        .iter()
        .map(|i| sim.passkey(i))
        .chain([sim.coordinator_token()])
        .collect();
    for line in all_cmdlines() {
        for s in &secrets {
            assert!(!line.contains(s.as_str()), "secret on a command line: {line}");
        }
    }
    let done = sim
        .wait_until(Duration::from_secs(60), |s| s.remaining_items == 0)
        .await;
    sim.wait_until(Duration::from_secs(10), |s| s.exit_reports >= 2).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        done,
        "work not done: {:?}\n{}",
        sim.stats(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sim.stats().authentications_ok, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("\"snapshot\""), "no status stream");
    for s in &secrets {
        assert!(!status.contains(s.as_str()), "secret in the status stream");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains(s.as_str()),
            "secret in the coordinator's log"
        );
        let hits = files_containing(dir.path(), s);
        assert!(hits.is_empty(), "secret written to {hits:?}");
    }
    // Clean up the test service's entries.
    for id in &ids {
        cli(&data, &service).args(["passkey", "delete", id]).output().unwrap();
    }
    cli(&data, &service).args(["token", "delete"]).output().unwrap();
    sim.shutdown().await;
}

/// Attack review finding 10: `--scrub` used to leave every passkey in a plaintext `.bak`. Now it keeps no copy
/// unless asked (`--keep-backup`, which says where the copy is and how to delete it).
#[test]
fn scrub_keeps_no_plaintext_copy_of_the_secrets() {
    if !keyring_wanted() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = format!("com.aiagentpm.coordinator.test-scrub-{}", std::process::id());
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(
        &path,
        "coordinator_token: tok-scrub-secret-31\nagents:\n  agt_s:\n    passkey: pk-scrub-secret-4242\n",
    )
    .unwrap();
    let out = cli(&data, &service)
        .args(["import-yaml", "--scrub"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("no copy of the original was kept"),
        "{text}"
    );
    let mut files = vec![];
    let mut dirs = vec![dir.path().to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path())
            } else {
                files.push(e.path())
            }
        }
    }
    for f in &files {
        let body = std::fs::read(f).unwrap_or_default();
        let hit = |s: &str| body.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(
            !hit("pk-scrub-secret-4242") && !hit("tok-scrub-secret-31"),
            "{} holds a secret after the scrub",
            f.display()
        );
    }
    cli(&data, &service)
        .args(["passkey", "delete", "agt_s"])
        .output()
        .unwrap();
    cli(&data, &service).args(["token", "delete"]).output().unwrap();
    println!("SECURITY| import-yaml --scrub | rewrites the YAML once every secret is stored; no plaintext backup unless --keep-backup (which prints where and the rm command) | no secret on disk ({} files checked)", files.len());
}

#[test]
fn import_yaml_moves_passkeys_and_scrub_keeps_a_backup() {
    if !keyring_wanted() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let service = format!("com.aiagentpm.coordinator.test-import-{}", std::process::id());
    let yaml = "# exported by AI Agent PM\npolling_interval: 5\nmax_concurrent: 2\ncoordinator_token: ${IMPORT_TOKEN}\nagents:\n  agt_plain:\n    passkey: plain-secret-1234\n  agt_env:\n    passkey: ${IMPORT_PK}\n  agt_missing:\n    passkey: ${IMPORT_UNSET_VAR}\n";
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let run = |extra: &[&str]| {
        let out = cli(&data, &service)
            .env("IMPORT_TOKEN", "token-from-env-5678")
            .env("IMPORT_PK", "env-secret-9999")
            .env_remove("IMPORT_UNSET_VAR")
            .arg("import-yaml")
            .arg(&path)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("agt_plain") && text.contains("agt_env") && text.contains("agt_missing"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        yaml,
        "source touched without --scrub"
    );
    // Idempotent.
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    // Scrub with --keep-backup: backup first, then no secret left in the YAML.
    let (code, text) = run(&["--scrub", "--keep-backup"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("rm "),
        "the command does not say how to delete the plaintext backup: {text}"
    );
    let bak = dir.path().join("coordinator.yaml.bak");
    assert_eq!(std::fs::read_to_string(&bak).unwrap(), yaml);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&bak).unwrap().permissions().mode() & 0o777, 0o600);
    let scrubbed = std::fs::read_to_string(&path).unwrap();
    assert!(!scrubbed.contains("plain-secret-1234"), "{scrubbed}");
    // `${VAR}` references are not secrets: kept, set or not.
    for r in ["${IMPORT_TOKEN}", "${IMPORT_PK}", "${IMPORT_UNSET_VAR}"] {
        assert!(scrubbed.contains(r), "{r} lost: {scrubbed}");
    }
    // Scrubbing again finds nothing to do and never overwrites the only copy of the original.
    let (code, text) = run(&["--scrub", "--keep-backup"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("already scrubbed") && !text.contains("no longer contains secrets"),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&bak).unwrap(), yaml);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), scrubbed);
    assert!(!dir.path().join("coordinator.yaml.bak.1").exists());
    let settings = std::fs::read_to_string(data.join("coordinator/settings.json")).unwrap();
    for s in ["plain-secret-1234", "env-secret-9999", "token-from-env-5678"] {
        assert!(!settings.contains(s));
    }
    assert!(settings.contains("agt_plain") && settings.contains("agt_env"));
    let list = cli(&data, &service).args(["passkey", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        list.lines()
            .any(|l| l.starts_with("agt_plain") && l.contains("passkey present")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("agt_env") && l.contains("passkey present")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("agt_missing") && l.contains("no passkey")),
        "{list}"
    );
    // A coordinator-token conflict blocks like a passkey conflict: exit code 3.
    set_secret(&data, &service, &["token", "set"], "another-token-0000");
    let (code, text) = run(&["--scrub"]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("coordinator token:           conflict"), "{text}");
    for id in ["agt_plain", "agt_env"] {
        cli(&data, &service).args(["passkey", "delete", id]).output().unwrap();
    }
    cli(&data, &service).args(["token", "delete"]).output().unwrap();
}
