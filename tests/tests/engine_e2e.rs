//! The real engine against the real simulator, with real fake-agent processes.

use agentpm_e2e::*;
use coordinator::api::AgentState;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_drains_without_double_spawn_or_overload() {
    let rig = Rig::start(RigOptions {
        agents: 3,
        projects: 2,
        items: 2,
        max_concurrent: 2,
        ..Default::default()
    })
    .await;
    assert!(
        rig.wait_done(Duration::from_secs(90)).await,
        "work not drained: {:?}",
        rig.sim.stats()
    );
    let stats = rig.sim.stats();
    assert_eq!(stats.completed_items, 12);
    assert!(
        stats.peak_live_processes <= 2,
        "peak {} > max_concurrent 2",
        stats.peak_live_processes
    );
    assert!(
        rig.sim.violations().is_empty(),
        "violations: {:?}",
        rig.sim.violations()
    );
    let snap = rig.engine.snapshot();
    assert_eq!(snap.counters.spawns, 12);
    assert_eq!(snap.counters.exits_failed, 0);
    // Every run's log was registered with the server and exists on disk.
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(10), |s| s.log_registrations >= 12
                && s.exit_reports >= 12)
            .await,
        "{:?}",
        rig.sim.stats()
    );
    let logs: Vec<_> = std::fs::read_dir(rig.dir.path().join("logs"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .collect();
    assert_eq!(logs.len(), 12, "one log per run");
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_run_reports_extracted_error_and_cools_down() {
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        ..Default::default()
    })
    .await;
    let agent = rig.sim.agent_ids()[0].clone();
    rig.sim.set_agent_behavior(
        &agent,
        pm_sim::AgentBehavior::Fail {
            message: "Error: simulated failure in tool X".into(),
        },
    );
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(30), |s| !s.agent_errors.is_empty())
            .await,
        "no report_agent_error"
    );
    let errs = rig.sim.stats().agent_errors;
    assert!(errs[0].2.contains("simulated failure"), "{errs:?}");
    let snap = rig
        .wait_snapshot(Duration::from_secs(10), |s| {
            s.agents.iter().any(|a| matches!(a.state, AgentState::Cooldown { .. }))
        })
        .await;
    assert!(
        snap.is_some(),
        "agent not cooling down: {:?}",
        rig.engine.snapshot().agents
    );
    // The exit was reported and nothing restarted the failing agent during its cooldown.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.engine.snapshot().counters.spawns, 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_action_kills_the_whole_process_tree() {
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        ..Default::default()
    })
    .await;
    let agent = rig.sim.agent_ids()[0].clone();
    let project = rig.sim.project_ids()[0].clone();
    rig.sim
        .set_agent_behavior(&agent, pm_sim::AgentBehavior::SpawnGrandchild);
    let snap = rig
        .wait_snapshot(Duration::from_secs(20), |s| !s.instances.is_empty())
        .await
        .expect("instance started");
    let log = snap.instances[0].log_path.clone();
    let grandchild = wait_grandchild(&log).await;
    assert!(pid_alive(grandchild));
    rig.sim.set_pair_script(
        &agent,
        &project,
        pm_sim::PairScript::Action(serde_json::json!({"action": "stop", "reason": "test"})),
    );
    assert!(
        rig.wait_snapshot(Duration::from_secs(20), |s| s.instances.is_empty())
            .await
            .is_some(),
        "instance not stopped"
    );
    for _ in 0..50 {
        if !pid_alive(grandchild) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!pid_alive(grandchild), "grandchild {grandchild} survived the stop");
    rig.stop().await;
}

/// `restart` is documented upstream as a future action and ignored by the upstream coordinator: a running
/// agent is not killed for it (the current server never sends it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_action_is_ignored_as_upstream_does() {
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        ..Default::default()
    })
    .await;
    let agent = rig.sim.agent_ids()[0].clone();
    let project = rig.sim.project_ids()[0].clone();
    rig.sim.set_agent_behavior(&agent, pm_sim::AgentBehavior::Hang);
    let snap = rig
        .wait_snapshot(Duration::from_secs(20), |s| !s.instances.is_empty())
        .await
        .expect("instance started");
    let first = snap.instances[0].id;
    rig.sim.set_pair_script(
        &agent,
        &project,
        pm_sim::PairScript::Action(serde_json::json!({"action": "restart"})),
    );
    let asked = rig.sim.calls().len();
    assert!(rig.sim.wait_until(Duration::from_secs(10), |_| true).await);
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_secs(4) && rig.sim.calls()[asked..].iter().all(|c| c.tool != "get_agent_action")
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        rig.sim.calls()[asked..].iter().any(|c| c.tool == "get_agent_action"),
        "the running pair was not asked again"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let now = rig.engine.snapshot();
    assert_eq!(
        now.instances.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![first],
        "restart stopped or duplicated the running instance"
    );
    assert!(rig.sim.violations().is_empty(), "{:?}", rig.sim.violations());
    rig.stop().await;
}

async fn wait_grandchild(log: &std::path::Path) -> i32 {
    for _ in 0..100 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("grandchild pid ").nth(1) {
            let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(p) = pid.parse() {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no grandchild pid in {}", log.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_with_wrong_token_is_refused_and_reported() {
    let rig = Rig::start(RigOptions {
        http: true,
        wrong_token: true,
        ..Default::default()
    })
    .await;
    let snap = rig
        .wait_snapshot(Duration::from_secs(20), |s| s.server.last_error.is_some())
        .await
        .expect("no error reported");
    let err = snap.server.last_error.unwrap();
    assert!(err.contains("401") || err.to_lowercase().contains("token"), "{err}");
    assert!(!err.contains("wrong-token-value"), "token leaked into the error: {err}");
    assert_eq!(rig.sim.stats().start_answers, 0);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_transport_drains_work() {
    let rig = Rig::start(RigOptions {
        http: true,
        agents: 2,
        projects: 1,
        items: 2,
        ..Default::default()
    })
    .await;
    assert!(rig.wait_done(Duration::from_secs(60)).await, "{:?}", rig.sim.stats());
    assert!(rig.sim.violations().is_empty(), "{:?}", rig.sim.violations());
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_server_gets_invalidate_session() {
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 2,
        exit_tool: pm_sim::ExitTool::Legacy,
        ..Default::default()
    })
    .await;
    assert!(rig.wait_done(Duration::from_secs(60)).await, "{:?}", rig.sim.stats());
    let calls = rig.sim.calls();
    assert!(calls.iter().any(|c| c.tool == "invalidate_session"));
    let snap = rig
        .wait_snapshot(Duration::from_secs(5), |s| s.server.exit_report_tool.is_some())
        .await
        .unwrap();
    assert_eq!(snap.server.exit_report_tool.as_deref(), Some("invalidate_session"));
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkey_never_in_argv_or_logs() {
    let rig = Rig::start(RigOptions {
        agents: 2,
        projects: 1,
        items: 1,
        work_ms: 1500,
        ..Default::default()
    })
    .await;
    let passkeys: Vec<String> = rig.sim.agent_ids().iter().map(|a| rig.sim.passkey(a)).collect();
    let token = rig.sim.coordinator_token();
    rig.wait_snapshot(Duration::from_secs(20), |s| s.instances.len() == 2)
        .await
        .expect("agents running");
    for line in all_cmdlines() {
        for pk in passkeys.iter().chain(std::iter::once(&token)) {
            assert!(!line.contains(pk.as_str()), "secret on a command line: {line}");
        }
    }
    assert!(rig.wait_done(Duration::from_secs(60)).await);
    for pk in passkeys.iter().chain(std::iter::once(&token)) {
        let hits = files_containing(&rig.dir.path().join("logs"), pk);
        assert!(hits.is_empty(), "secret in {hits:?}");
        let hits = files_containing(&rig.dir.path().join("projects"), pk);
        assert!(hits.is_empty(), "secret in {hits:?}");
    }
    let status = serde_json::to_string(&rig.engine.snapshot()).unwrap();
    for pk in &passkeys {
        assert!(!status.contains(pk.as_str()));
    }
    rig.stop().await;
}

/// A store that is "locked" until unlocked (like a Keychain that denied access, or no Secret Service yet).
struct LockedStore {
    inner: coordinator::secrets::MemoryStore,
    locked: std::sync::atomic::AtomicBool,
}

impl coordinator::secrets::SecretStore for LockedStore {
    fn get(&self, a: &str) -> Result<Option<String>, coordinator::secrets::SecretError> {
        if self.locked.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(coordinator::secrets::SecretError::Unavailable(
                "the keychain is locked (test)".into(),
            ));
        }
        self.inner.get(a)
    }
    fn set(&self, a: &str, v: &str) -> Result<(), coordinator::secrets::SecretError> {
        self.inner.set(a, v)
    }
    fn delete(&self, a: &str) -> Result<bool, coordinator::secrets::SecretError> {
        self.inner.delete(a)
    }
    fn list(&self) -> Result<Vec<String>, coordinator::secrets::SecretError> {
        self.inner.list()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_secret_store_is_reported_and_retried_never_bypassed() {
    use coordinator::secrets::SecretStore;
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        ..Default::default()
    })
    .await;
    // A second engine on the same simulator, whose store starts locked.
    let store = std::sync::Arc::new(LockedStore {
        inner: coordinator::secrets::MemoryStore::new(),
        locked: true.into(),
    });
    for a in rig.sim.agent_ids() {
        store
            .set(&coordinator::secrets::agent_account(&a), &rig.sim.passkey(&a))
            .unwrap();
    }
    store
        .set(coordinator::secrets::TOKEN_ACCOUNT, &rig.sim.coordinator_token())
        .unwrap();
    rig.engine.stop().await;
    let engine = coordinator::engine::Engine::launch(coordinator::engine::EngineConfig {
        settings: rig.settings.clone(),
        settings_path: rig.dir.path().join("settings2.json"),
        state_path: None,
        secrets: store.clone(),
        redactor: coordinator::redact::global().clone(),
        autostart: true,
        runs_db: None,
    });
    let mut rx = engine.subscribe();
    let t = std::time::Instant::now();
    while rx.borrow_and_update().secret_store_error.is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "locked store not reported");
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    }
    assert!(engine.snapshot().secret_store_error.unwrap().contains("locked"));
    assert_eq!(rig.sim.stats().start_answers, 0, "started an agent without its passkey");
    store.locked.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(30), |s| s.remaining_items == 0)
            .await,
        "no retry after unlock: {:?}",
        rig.sim.stats()
    );
    engine.shutdown().await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_leaving_a_background_process_frees_its_slot_and_reports_its_exit() {
    // The fake agent leaves `sleep 600 &` holding its stdout/stderr, does its work and exits.
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        agent_args: vec!["--orphan".into()],
        ..Default::default()
    })
    .await;
    let snap = rig
        .wait_snapshot(Duration::from_secs(20), |s| !s.instances.is_empty())
        .await
        .expect("instance started");
    let log = snap.instances[0].log_path.clone();
    let orphan = wait_pid(&log, "orphan pid ").await;
    assert!(
        rig.wait_done(Duration::from_secs(30)).await,
        "the run kept its slot after the agent exited: {:?} {:?}",
        rig.sim.stats(),
        rig.engine.snapshot().instances
    );
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(10), |s| s.exit_reports >= 1
                && s.log_registrations >= 1)
            .await,
        "exit not reported: {:?}",
        rig.sim.stats()
    );
    for _ in 0..50 {
        if !pid_alive(orphan) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !pid_alive(orphan),
        "the background process {orphan} the agent left behind survived"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("done") && text.contains("exit code=0"), "{text}");
    assert_eq!(rig.engine.snapshot().counters.exits_failed, 0);
    rig.stop().await;
}

async fn wait_pid(log: &std::path::Path, prefix: &str) -> i32 {
    for _ in 0..100 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split(prefix).nth(1) {
            let pid: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Ok(p) = pid.parse() {
                return p;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no `{prefix}` in {}", log.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_do_not_inherit_other_agents_passkeys_or_the_token_from_the_environment() {
    // Like `passkey: ${AGENT_B_PASSKEY}` in the legacy YAML: the coordinator's environment holds secrets.
    fn env(sim: &pm_sim::Simulator) {
        let ids = sim.agent_ids();
        std::env::set_var("AGENTPM_E2E_OTHER_AGENT_PASSKEY", sim.passkey(&ids[1]));
        std::env::set_var("MCP_COORDINATOR_TOKEN", sim.coordinator_token());
    }
    let rig = Rig::start(RigOptions {
        agents: 2,
        projects: 1,
        items: 1,
        agent_args: vec!["--print-env".into()],
        before_engine: Some(env),
        ..Default::default()
    })
    .await;
    // Each agent still gets (and authenticates with) its own passkey.
    assert!(rig.wait_done(Duration::from_secs(60)).await, "{:?}", rig.sim.stats());
    assert_eq!(rig.sim.stats().authentications_failed, 0);
    let mut seen = 0;
    for d in std::fs::read_dir(rig.dir.path().join("logs")).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(f.path()).unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("fake-agent env: "))
                .unwrap_or_else(|| panic!("no env line in {text}"));
            let names: Vec<&str> = line["fake-agent env: ".len()..].split(' ').collect();
            assert!(names.contains(&"AGENT_PASSKEY"), "{line}");
            assert!(
                !names.contains(&"AGENTPM_E2E_OTHER_AGENT_PASSKEY"),
                "another agent's passkey reached an agent: {line}"
            );
            assert!(
                !names.contains(&"MCP_COORDINATOR_TOKEN"),
                "the coordinator token reached an agent: {line}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_never_deletes_the_log_of_a_run_being_started_or_running() {
    fn one_log(s: &mut coordinator::config::Settings) {
        s.log_retention.max_files_per_agent = 1;
    }
    // One agent in two projects: its two runs start together, each pruning the agent's logs down to one.
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 2,
        items: 2,
        max_concurrent: 2,
        work_ms: 1500,
        tweak: Some(one_log),
        ..Default::default()
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut checked = std::collections::HashSet::new();
    loop {
        let snap = rig.engine.snapshot();
        for i in &snap.instances {
            if !i.log_path.exists() {
                // A snapshot may lag by a few ms: only a run still listed well after the check counts.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let still = rig.engine.snapshot().instances.iter().any(|j| j.id == i.id);
                assert!(
                    !still,
                    "the log of running instance {} ({}) was deleted by retention",
                    i.id,
                    i.log_path.display()
                );
            } else {
                checked.insert(i.id);
            }
        }
        if rig.sim.stats().remaining_items == 0 && snap.instances.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not drained: {:?}",
            rig.sim.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(checked.len() >= 4, "runs seen: {checked:?}");
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(10), |s| s.completed_items == 4)
            .await
    );
    rig.stop().await;
}

/// "Stop" alone is answered by the server with a new `start` for the same work; "Stop and pause" keeps the
/// agent from starting until it is resumed (and the pause survives an engine restart via the state file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_pause_keeps_the_agent_stopped_until_resumed() {
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        ..Default::default()
    })
    .await;
    let agent = rig.sim.agent_ids()[0].clone();
    rig.sim.set_agent_behavior(&agent, pm_sim::AgentBehavior::Hang);
    rig.wait_snapshot(Duration::from_secs(20), |s| !s.instances.is_empty())
        .await
        .expect("instance started");
    rig.engine.pause_agent(&agent, None, true).await;
    let paused = rig
        .wait_snapshot(Duration::from_secs(15), |s| {
            s.instances.is_empty()
                && s.agents
                    .iter()
                    .any(|a| matches!(a.state, AgentState::Paused { until: None }))
        })
        .await;
    assert!(
        paused.is_some(),
        "not stopped and paused: {:?}",
        rig.engine.snapshot().agents
    );
    let spawns = rig.engine.snapshot().counters.spawns;
    rig.sim.set_agent_behavior(&agent, pm_sim::AgentBehavior::Succeed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = rig.sim.calls().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rig.engine.snapshot().counters.spawns,
        spawns,
        "a paused agent was started again"
    );
    let asked = rig.sim.calls()[calls..]
        .iter()
        .filter(|c| c.tool == "get_agent_action" && c.args["agent_id"] == agent.as_str())
        .count();
    assert_eq!(
        asked, 0,
        "a paused agent was asked about (each question may take a lease)"
    );
    rig.engine.resume_agent(&agent).await;
    assert!(
        rig.wait_done(Duration::from_secs(20)).await,
        "work not done after resume: {:?}",
        rig.sim.stats()
    );
    rig.stop().await;
}

/// Every run lands in the run history (runs.db) with what its stream-json says: a good run with its tokens
/// and cost, a failed one with its error line, one the user stopped as stopped by the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_recorded_with_outcome_tokens_cost_and_who_stopped_them() {
    let rig = Rig::start(RigOptions {
        agents: 3,
        projects: 1,
        items: 1,
        agent_args: vec!["--output-format".into(), "stream-json".into()],
        ..Default::default()
    })
    .await;
    let ids = rig.sim.agent_ids();
    rig.sim.set_agent_behavior(
        &ids[1],
        pm_sim::AgentBehavior::Fail {
            message: "Error: the model refused".into(),
        },
    );
    rig.sim.set_agent_behavior(&ids[2], pm_sim::AgentBehavior::Hang);
    let hanging = rig
        .wait_snapshot(Duration::from_secs(20), |s| {
            s.instances.iter().any(|i| i.agent_id == ids[2])
        })
        .await
        .expect("hanging agent started");
    let id = hanging.instances.iter().find(|i| i.agent_id == ids[2]).unwrap().id;
    assert!(
        rig.sim
            .wait_until(Duration::from_secs(20), |s| s.completed_items >= 1
                && s.exit_reports >= 2)
            .await,
        "{:?}",
        rig.sim.stats()
    );
    assert!(rig.engine.stop_instance(id).await);
    rig.wait_snapshot(Duration::from_secs(15), |s| s.instances.iter().all(|i| i.id != id))
        .await
        .expect("stopped");
    let (dir, _) = rig.stop().await;
    let runs = coordinator::runs::RunReader::open(&dir.path().join("runs.db"))
        .unwrap()
        .query(&Default::default())
        .unwrap();
    let of = |a: &str| runs.iter().filter(|r| r.agent_id == a).collect::<Vec<_>>();
    let ok = of(&ids[0]);
    assert!(
        ok.iter().any(|r| r.outcome == coordinator::runs::Outcome::Ok
            && r.cost_usd.unwrap_or(0.0) > 0.0
            && r.output_tokens > 0
            && r.session_id.is_some()),
        "{ok:#?}"
    );
    let failed = of(&ids[1]);
    assert!(
        failed.iter().any(|r| r.outcome == coordinator::runs::Outcome::Failed
            && r.error_line.as_deref().is_some_and(|e| e.contains("the model refused"))),
        "{failed:#?}"
    );
    let stopped = of(&ids[2]);
    assert!(
        stopped.iter().any(|r| r.outcome == coordinator::runs::Outcome::Stopped
            && r.stopped_by == Some(coordinator::runs::StoppedBy::User)),
        "{stopped:#?}"
    );
    assert!(
        runs.iter().all(|r| r.outcome != coordinator::runs::Outcome::Running),
        "a run left running in the history"
    );
}

/// While a run goes, the snapshot shows what its stream-json says so far (tokens rising, the cost so far, the
/// last activity line), updated from the log relay; once it ends, its record holds the final numbers, the
/// ones the CLI's own `result` line states.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_instance_shows_live_tokens_and_activity_and_its_record_the_final_numbers() {
    let args = vec![
        "--output-format".into(),
        "stream-json".into(),
        "--linger-ms".into(),
        "1500".into(),
    ];
    let rig = Rig::start(RigOptions {
        agents: 1,
        projects: 1,
        items: 1,
        work_ms: 1500,
        agent_args: args,
        ..Default::default()
    })
    .await;
    // Sample the snapshot while the instance runs: during its work (tool calls so far) and its linger
    // (the task reported, logged out).
    let mut seen: Vec<coordinator::api::InstanceInfo> = Vec::new();
    let mut rx = rig.engine.subscribe();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let snap = rx.borrow_and_update().clone();
        if let Some(i) = snap.instances.first() {
            if seen.last() != Some(i) {
                seen.push(i.clone());
            }
        } else if !seen.is_empty() {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await;
    }
    let live: Vec<_> = seen.iter().filter(|i| i.tokens.total() > 0).collect();
    assert!(live.len() >= 2, "no live tokens while running: {seen:#?}");
    let outs: Vec<u64> = live.iter().map(|i| i.tokens.output).collect();
    assert!(
        outs.windows(2).all(|w| w[0] <= w[1]) && outs.first() < outs.last(),
        "tokens did not rise: {outs:?}"
    );
    let first = live[0];
    // The fake agent streams a scripted session (Read, Bash, Edit, the PM tools): any tool or text line.
    assert!(
        first.last_activity.as_deref().is_some_and(|a| !a.is_empty()),
        "{first:#?}"
    );
    assert!(
        first.last_activity_at.is_some_and(|t| t >= first.started_at)
            && first.cost_estimated
            && first.cost_usd.is_some_and(|c| c > 0.0),
        "{first:#?}"
    );
    // During the linger: the agent's last call, seen later.
    let lingering = live.last().unwrap();
    assert_eq!(
        lingering.last_activity.as_deref(),
        Some("tool: mcp__agent-pm__logout"),
        "{live:#?}"
    );
    assert!(lingering.last_activity_at > first.last_activity_at, "{live:#?}");
    let run_id = first.run_id.clone().expect("a run id on the instance");
    let (dir, _) = rig.stop().await;
    let runs = coordinator::runs::RunReader::open(&dir.path().join("runs.db"))
        .unwrap()
        .query(&Default::default())
        .unwrap();
    let r = runs.iter().find(|r| r.run_id == run_id).expect("the run's record");
    // The final numbers are the `result` line's.
    let log = std::fs::read_to_string(r.log_path.as_deref().unwrap()).unwrap();
    let result: serde_json::Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "result")
        .last()
        .expect("a result line");
    let u = &result["usage"];
    let got = (
        r.input_tokens,
        r.output_tokens,
        r.cache_read_tokens,
        r.cache_write_tokens,
    );
    let want = (
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
        u["cache_read_input_tokens"].as_u64().unwrap(),
        u["cache_creation_input_tokens"].as_u64().unwrap(),
    );
    assert_eq!(got, want, "{r:#?}");
    assert_eq!(
        (r.cost_usd, r.cost_is_estimate, r.outcome),
        (result["total_cost_usd"].as_f64(), false, coordinator::runs::Outcome::Ok)
    );
    // The last live numbers never exceed the final ones.
    assert!(live.last().unwrap().tokens.output <= r.output_tokens);
}
