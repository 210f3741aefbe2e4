//! Upstream parity (aiagent-runner 0.1.13 and later): agent context, skills, log upload, dynamic
//! configuration, and several coordinators sharing one server.

use agentpm_e2e::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_dir_gets_instructions_and_safe_skills() {
    // The fake agent is run with Claude Code's conventions: context dir, CLAUDE.md, --mcp-config.
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        kind: "claude".into(),
        ..Default::default()
    })
    .await;
    let agent = rig.sim.agent_ids()[0].clone();
    rig.sim.set_agent_profile(
        &agent,
        "You are the release manager. Ship carefully.",
        vec![
            (
                "release-notes".into(),
                zip_of(&[
                    ("release-notes/SKILL.md", "# Release notes"),
                    ("release-notes/templates/notes.md", "## Notes"),
                ]),
            ),
            (
                "evil".into(),
                zip_of(&[("evil/SKILL.md", "x"), ("evil/../../../../escaped.txt", "pwned")]),
            ),
        ],
    );
    // The profile must be in place before the first spawn: add the work now.
    assert!(rig.wait_done(Duration::from_secs(30)).await, "{:?}", rig.sim.stats());
    let project_dir = rig.dir.path().join("projects").join(&rig.sim.project_ids()[0]);
    let ctx = std::fs::canonicalize(&project_dir)
        .unwrap()
        .join(".aiagent/agents")
        .join(&agent)
        .join(".claude");
    // The first run may have raced the profile; run once more to be sure it is applied.
    rig.sim.add_items(&agent, &rig.sim.project_ids()[0], 1);
    assert!(rig.wait_done(Duration::from_secs(30)).await);
    let md = std::fs::read_to_string(ctx.join("CLAUDE.md")).expect("CLAUDE.md written");
    assert!(md.contains("You are the release manager. Ship carefully."), "{md}");
    assert!(ctx.join("skills/release-notes/SKILL.md").exists());
    assert!(ctx.join("skills/release-notes/templates/notes.md").exists());
    assert!(
        ctx.join("skills/evil/EXTRACTION_ERROR.txt").exists(),
        "zip-slip archive not rejected"
    );
    assert!(!ctx.join("skills/evil/SKILL.md").exists());
    let (dir, _) = rig.stop().await;
    assert!(
        files_containing(dir.path(), "pwned").is_empty(),
        "zip-slip entry written somewhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_uploaded_with_the_right_fields_and_retried_after_a_500() {
    fn enable_upload(s: &mut coordinator::config::Settings) {
        s.log_upload.enabled = true;
        s.log_upload.retry_delay_secs = 0.2;
    }
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 2,
        http: true,
        tweak: Some(enable_upload),
        ..Default::default()
    })
    .await;
    rig.sim.set_faults(pm_sim::Faults {
        upload_failures: 1,
        ..Default::default()
    });
    assert!(rig.wait_done(Duration::from_secs(30)).await, "{:?}", rig.sim.stats());
    let t = Instant::now();
    while rig.sim.uploads().len() < 2 && t.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ups = rig.sim.uploads();
    assert_eq!(ups.len(), 2, "both runs' logs uploaded (one after a retry): {ups:?}");
    assert_eq!(rig.sim.faults().upload_failures, 0, "the 500 was served");
    for u in &ups {
        for f in [
            "execution_log_id",
            "agent_id",
            "task_id",
            "project_id",
            "original_filename",
        ] {
            assert!(u.fields.get(f).is_some_and(|v| !v.is_empty()), "missing {f}: {u:?}");
        }
        assert!(u.fields["execution_log_id"].starts_with("exl_"));
        assert!(u.bytes > 0 && u.file_name.as_deref().is_some_and(|n| n.ends_with(".log")));
        // The part is the run log itself, as text/plain (protocol doc §4.2).
        assert_eq!(u.content_type.as_deref(), Some("text/plain"), "{u:?}");
        assert_eq!(u.data.len(), u.bytes);
        let text = String::from_utf8_lossy(&u.data);
        assert!(
            text.contains("fake-agent: authenticated as") && text.contains(&u.fields["agent_id"]),
            "not the run's log: {text}"
        );
        let stored = u.stored_at.as_ref().expect("stored");
        assert_eq!(std::fs::read(stored).unwrap(), u.data);
        // The server sets the execution log's log_file_path to where it stored the bytes.
        let paths = rig.sim.stats().execution_log_paths;
        assert_eq!(
            paths.get(&u.fields["execution_log_id"]).map(String::as_str),
            Some(stored.display().to_string().as_str()),
            "{paths:?}"
        );
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_config_is_applied_live_and_passkeys_go_to_the_store() {
    use coordinator::secrets::SecretStore;
    let mut rig_opts = RigOptions {
        agents: 3,
        projects: 1,
        items: 6,
        http: true,
        work_ms: 300,
        max_concurrent: 3,
        ..Default::default()
    };
    rig_opts.without_passkey = vec!["agt_03".into()];
    let rig = Rig::start(rig_opts).await;
    // agt_03 has no passkey locally; the server's configuration provides it.
    let t = Instant::now();
    while rig.store.get("agent:agt_03").unwrap().is_none() && t.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        rig.store.get("agent:agt_03").unwrap(),
        Some(rig.sim.passkey("agt_03")),
        "server passkey not stored"
    );
    rig.wait_snapshot(Duration::from_secs(20), |s| {
        s.instances.iter().any(|i| i.agent_id == "agt_03")
    })
    .await
    .expect("agt_03 started with the server's passkey");
    // Now the server lowers max_concurrent to 1: applied without restarting anything.
    rig.sim.set_remote_limits(1, 1);
    let running_before = rig.engine.snapshot().instances.len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut max_seen = 0;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        max_seen = max_seen.max(rig.engine.snapshot().instances.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        max_seen <= 1,
        "max_concurrent 1 from the server not applied (saw {max_seen}, before {running_before})"
    );
    assert!(rig.sim.violations().is_empty(), "{:?}", rig.sim.violations());
    rig.stop().await;
}

/// Local settings win: a pinned max_concurrent stays after the server's configuration is applied, an
/// unpinned one takes the server's value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_settings_win_over_the_servers_dynamic_config() {
    fn pin(s: &mut coordinator::config::Settings) {
        s.pinned = vec!["max_concurrent".into()];
    }
    for pinned in [true, false] {
        let opts = RigOptions {
            agents: 3,
            projects: 1,
            items: 0,
            http: true,
            work_ms: 1500,
            max_concurrent: 3,
            tweak: pinned.then_some(pin as fn(&mut _)),
            ..Default::default()
        };
        let rig = Rig::start(opts).await;
        // The server asks for max_concurrent 1 (polling 1 s, as set locally: only max_concurrent differs).
        rig.sim.set_remote_limits(1, 1);
        assert!(
            rig.sim
                .wait_until(Duration::from_secs(20), |s| s.remote_config_fetches >= 1)
                .await,
            "config never fetched"
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Now there is work for all three agents at once.
        let project = rig.sim.project_ids()[0].clone();
        for a in rig.sim.agent_ids() {
            rig.sim.add_items(&a, &project, 1);
        }
        let mut max_seen = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) && rig.sim.stats().remaining_items > 0 {
            max_seen = max_seen.max(rig.engine.snapshot().instances.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(rig.wait_done(Duration::from_secs(30)).await, "{:?}", rig.sim.stats());
        if pinned {
            assert!(
                max_seen >= 2,
                "pinned max_concurrent 3 was overridden by the server's 1 (saw at most {max_seen} running)"
            );
        } else {
            assert!(
                max_seen <= 1,
                "unpinned max_concurrent did not take the server's 1 (saw {max_seen} running)"
            );
        }
        assert!(rig.sim.violations().is_empty(), "{:?}", rig.sim.violations());
        rig.stop().await;
    }
}

/// `run --config file.yaml`: what the YAML sets (max_concurrent 3) is pinned and survives the server's
/// dynamic configuration (max_concurrent 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_max_concurrent_survives_the_servers_dynamic_config() {
    let dir = tempfile::tempdir().unwrap();
    let workload = pm_sim::Workload {
        projects: 1,
        agents: 3,
        items_per_pair: 0,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(workload, dir.path().join("projects"));
    cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    sim.set_remote_limits(1, 1);
    let ids = sim.agent_ids();
    let mut yaml = format!(
        "polling_interval: 1\nmax_concurrent: 3\nmcp_socket_path: {}\ncoordinator_token: ${{PM_TOKEN}}\nai_providers:\n  claude:\n    cli_command: {}\n    cli_args: [\"--work-ms\", \"1500\"]\nagents:\n",
        sim.mcp_url().unwrap(),
        bin("fake-agent").display()
    );
    for id in &ids {
        yaml.push_str(&format!("  {id}:\n    passkey: ${{PK_{}}}\n", id.to_uppercase()));
    }
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let mut c = Command::new(bin("agentpm-coordinator"));
    c.args(["run", "--config"])
        .arg(&path)
        .env("AGENTPM_DATA_DIR", dir.path().join("data"))
        .env("PM_TOKEN", sim.coordinator_token())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for id in &ids {
        c.env(format!("PK_{}", id.to_uppercase()), sim.passkey(id));
    }
    let mut child = c.spawn().unwrap();
    let fetched = sim
        .wait_until(Duration::from_secs(30), |s| s.remote_config_fetches >= 1)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in &ids {
        sim.add_items(id, &sim.project_ids()[0], 1);
    }
    let done = sim
        .wait_until(Duration::from_secs(60), |s| s.remaining_items == 0)
        .await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let stats = sim.stats();
    assert!(fetched && done, "{stats:?}");
    assert!(
        stats.peak_live_processes >= 2,
        "the YAML's max_concurrent 3 lost to the server's 1 (peak {})",
        stats.peak_live_processes
    );
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_coordinators_share_one_server_without_running_a_pair_twice() {
    let dir = tempfile::tempdir().unwrap();
    let workload = pm_sim::Workload {
        projects: 2,
        agents: 3,
        items_per_pair: 2,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(workload, dir.path().join("projects"));
    cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    let ids = sim.agent_ids();
    let mut yaml = format!(
        "polling_interval: 1\nmax_concurrent: 2\nmcp_socket_path: {}\ncoordinator_token: ${{PM_TOKEN}}\nai_providers:\n  claude:\n    cli_command: {}\n    cli_args: [\"--work-ms\", \"300\"]\nagents:\n",
        sim.mcp_url().unwrap(),
        bin("fake-agent").display()
    );
    for id in &ids {
        yaml.push_str(&format!("  {id}:\n    passkey: ${{PK_{}}}\n", id.to_uppercase()));
    }
    let mut children = Vec::new();
    for n in 0..2 {
        let path = dir.path().join(format!("machine{n}.yaml"));
        std::fs::write(&path, &yaml).unwrap();
        let mut c = Command::new(bin("agentpm-coordinator"));
        c.args(["run", "--config"])
            .arg(&path)
            .env("AGENTPM_DATA_DIR", dir.path().join(format!("data{n}")))
            .env("PM_TOKEN", sim.coordinator_token())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for id in &ids {
            c.env(format!("PK_{}", id.to_uppercase()), sim.passkey(id));
        }
        children.push(c.spawn().unwrap());
    }
    let done = sim
        .wait_until(Duration::from_secs(90), |s| s.remaining_items == 0)
        .await;
    for c in &children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    for mut c in children {
        let _ = c.wait();
    }
    let stats = sim.stats();
    assert!(done, "{stats:?}");
    assert_eq!(stats.completed_items, 12);
    assert!(
        sim.violations().is_empty(),
        "a pair ran twice or similar: {:?}",
        sim.violations()
    );
    // Both machines did work (the lease, not luck, kept them apart).
    assert!(
        stats.peak_live_processes >= 3,
        "only one coordinator worked? peak {}",
        stats.peak_live_processes
    );
    sim.shutdown().await;
}
