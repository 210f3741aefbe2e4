//! Issue 13's defect list, one test per bullet: the real `agentpm-coordinator` binary (a child process, from a
//! YAML file) against the simulator with the upstream server's semantics (sessions per purpose, the 120 s
//! spawn lease cleared only by `authenticate`, error reports that create chat work), with real fake agents.

use agentpm_e2e::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Setup {
    dir: tempfile::TempDir,
    sim: pm_sim::Simulator,
}

struct Opts {
    agents: usize,
    projects: usize,
    items: usize,
    http: bool,
    humans: usize,
    max_concurrent: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            agents: 1,
            projects: 1,
            items: 1,
            http: false,
            humans: 0,
            max_concurrent: 3,
        }
    }
}

async fn setup(o: Opts) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let w = pm_sim::Workload {
        projects: o.projects,
        agents: o.agents,
        items_per_pair: o.items,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(w, dir.path().join("projects"));
    cfg.socket_path = Some(dir.path().join("mcp.sock"));
    if o.http {
        cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    }
    cfg.max_concurrent = Some(o.max_concurrent);
    cfg.humans = o.humans;
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    Setup { dir, sim }
}

/// The Python coordinator's YAML: `claude` (and `gemini`) are the fake agent; `extra` is appended verbatim.
struct Yaml<'a> {
    polling: u64,
    max_concurrent: usize,
    fake_args: &'a [&'a str],
    claude_command: Option<&'a str>,
    with_agents: bool,
    token: Option<&'a str>,
    extra: &'a str,
}

impl Default for Yaml<'_> {
    fn default() -> Self {
        Yaml {
            polling: 1,
            max_concurrent: 3,
            fake_args: &[],
            claude_command: None,
            with_agents: true,
            token: None,
            extra: "",
        }
    }
}

impl Setup {
    fn write_yaml(&self, y: Yaml) -> PathBuf {
        let fake = bin("fake-agent").display().to_string();
        let args: Vec<String> = y.fake_args.iter().map(|a| format!("\"{a}\"")).collect();
        let server = self
            .sim
            .mcp_url()
            .unwrap_or_else(|| self.sim.socket_path().unwrap().display().to_string());
        let token = y
            .token
            .map(str::to_string)
            .unwrap_or_else(|| self.sim.coordinator_token());
        let mut yaml = format!(
            "polling_interval: {}\nmax_concurrent: {}\nmcp_socket_path: {server}\ncoordinator_token: {token}\ndebug_mode: false\nai_providers:\n  claude:\n    cli_command: {}\n    cli_args: [{a}]\n  gemini:\n    cli_command: {fake}\n    cli_args: [{a}]\n",
            y.polling,
            y.max_concurrent,
            y.claude_command.unwrap_or(&fake),
            a = args.join(", ")
        );
        yaml.push_str(y.extra);
        if y.with_agents {
            yaml.push_str("agents:\n");
            for id in self.sim.agent_ids() {
                yaml.push_str(&format!("  {id}:\n    passkey: \"{}\"\n", self.sim.passkey(&id)));
            }
        }
        let path = self.dir.path().join("coordinator.yaml");
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn coordinator(&self, y: Yaml) -> CoordinatorProcess {
        let yaml = self.write_yaml(y);
        CoordinatorProcess::start(&yaml, &self.dir.path().join("data"))
    }

    /// Every `start` answer must lead to a spawn whose agent authenticates (the lease is then cleared).
    fn assert_no_lease_wasted(&self) {
        let s = self.sim.stats();
        let lost = s.leases_taken - s.leases_cleared_by_auth - s.leases_outstanding;
        assert!(
            lost == 0 && s.leases_expired_unused == 0,
            "{lost} start answers never led to an authenticated agent ({} taken, {} cleared by authenticate, {} outstanding, {} expired unused, {} given beside a live process)",
            s.leases_taken,
            s.leases_cleared_by_auth,
            s.leases_outstanding,
            s.leases_expired_unused,
            s.starts_beside_live_process
        );
    }
}

fn agent_states(snaps: &[Value]) -> Vec<(String, Value)> {
    snaps
        .iter()
        .flat_map(|s| s["agents"].as_array().cloned().unwrap_or_default())
        .map(|a| (a["agent_id"].as_str().unwrap_or("").to_string(), a["state"].clone()))
        .collect()
}

fn cooled_down(snaps: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = agent_states(snaps)
        .into_iter()
        .filter(|(_, st)| st.to_string().to_lowercase().contains("cooldown"))
        .map(|(a, st)| format!("{a}: {st}"))
        .collect();
    v.dedup();
    v
}

/// Bullet 1 (wasted leases): agents log out, then take 0.3 s to exit. The server answers `start` for the pair
/// in between (it has no live session); throwing that answer away blocks the pair for 120 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_lease_is_wasted_when_agents_log_out_before_exiting() {
    let s = setup(Opts {
        agents: 4,
        projects: 5,
        items: 3,
        ..Default::default()
    })
    .await;
    let t = Instant::now();
    let c = s.coordinator(Yaml {
        fake_args: &["--work-ms", "200", "--linger-ms", "300"],
        ..Default::default()
    });
    let done = s
        .sim
        .wait_until(Duration::from_secs(20), |st| st.remaining_items == 0)
        .await;
    let wall = t.elapsed().as_secs_f64();
    let st = s.sim.stats();
    c.stop();
    assert!(done, "4x5x3 items of 0.2 s not drained within 20 s: {} of 60 left after {wall:.1} s; {} start answers, {} beside a live process, {} leases outstanding", st.remaining_items, st.start_answers, st.starts_beside_live_process, st.leases_outstanding);
    s.assert_no_lease_wasted();
    assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
}

/// Bullet 1 (second purpose): the server asks for a chat instance while the task instance runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_and_a_chat_instance_run_side_by_side_for_one_pair() {
    let s = setup(Opts::default()).await;
    let (a, p) = (s.sim.agent_ids()[0].clone(), s.sim.project_ids()[0].clone());
    let c = s.coordinator(Yaml {
        fake_args: &["--work-ms", "6000"],
        ..Default::default()
    });
    assert!(
        s.sim
            .wait_until(Duration::from_secs(15), |st| st.task_sessions == 1)
            .await,
        "the task instance never started"
    );
    s.sim.add_chat_message(&a, &p, "a question from the user");
    let chat_ran = s
        .sim
        .wait_until(Duration::from_secs(4), |st| {
            st.chat_sessions >= 1 && st.unread_chat_messages == 0
        })
        .await;
    let st = s.sim.stats();
    let task_still_running = st.completed_items == 0;
    let done = s
        .sim
        .wait_until(Duration::from_secs(15), |st| st.remaining_items == 0)
        .await;
    c.stop();
    assert!(
        chat_ran && task_still_running,
        "no chat instance beside the running task instance: {:?}",
        s.sim.stats()
    );
    assert!(done, "{:?}", s.sim.stats());
    assert!(st.peak_live_processes >= 2);
    s.assert_no_lease_wasted();
    assert!(s.sim.violations().is_empty(), "{:?}", s.sim.violations());
}

/// Bullet 2: the server stops for 8 s while agents are mid-call. Their exits are the outage's fault, not
/// theirs: no cooldown, and the rest drains right after the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_call_costs_no_cooldown_and_work_drains_when_the_server_is_back() {
    let s = setup(Opts {
        agents: 2,
        projects: 2,
        items: 5,
        ..Default::default()
    })
    .await;
    let c = s.coordinator(Yaml {
        fake_args: &["--work-ms", "500"],
        ..Default::default()
    });
    let outage = s.sim.schedule_outage(Duration::from_secs(3), Duration::from_secs(8));
    outage.await.unwrap();
    let back = Instant::now();
    let left = s.sim.stats().remaining_items;
    // Work-bound time for what is left (3 slots, 0.5 s items) plus 4 s: the 3 s, and 1 s of slack for
    // this debug build sharing 2 cores with another test (the release benchmark states the real figure).
    // A pair whose spawned agent the outage killed before it authenticated is started again on its lease;
    // waiting for the server's 120 s lease to expire would blow this bound.
    let bound = Duration::from_secs_f64(4.0 + left as f64 * 0.5 / 3.0);
    let done = s.sim.wait_until(bound, |st| st.remaining_items == 0).await;
    let took = back.elapsed().as_secs_f64();
    let snaps = c.stop();
    let snaps: Vec<Value> = snaps.iter().filter_map(|v| v.get("snapshot").cloned()).collect();
    let last = snaps.last().cloned().unwrap_or_default();
    let trace: Vec<String> = s
        .sim
        .calls()
        .iter()
        .filter(|c| c.tool != "health_check")
        .map(|c| {
            format!(
                "{} {} {} {}",
                c.at_us / 1000,
                c.tool,
                c.args["agent_id"].as_str().unwrap_or(""),
                c.args["project_id"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(done, "{left} items left when the server came back, not drained within {:.1} s (still {} after {took:.1} s)\nagents {}\nerrors {}\n{}", bound.as_secs_f64(), s.sim.stats().remaining_items, last["agents"], last["last_errors"], trace.join("\n"));
    let cooled = cooled_down(&snaps);
    assert!(
        cooled.is_empty(),
        "agents cooled down for the server's outage: {cooled:?}"
    );
    // The outage did hit agents mid-call: some run ended non-zero (else this test proves nothing).
    let failed_runs = snaps
        .iter()
        .flat_map(|s| s["agents"].as_array().cloned().unwrap_or_default())
        .any(|a| a["last_exit_code"].as_i64().is_some_and(|c| c != 0));
    eprintln!("outage: {left} items left at resume, drained {took:.1} s after; failed runs seen: {failed_runs}");
    assert!(failed_runs, "no agent run failed during the outage");
}

/// Bullet 3 (local problems): a CLI that cannot start and a project folder that is gone are the user's
/// problem. Reporting them to the server writes chat messages that make the server start agents (paid runs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_failures_and_unusable_folders_are_not_reported_to_the_server() {
    let s = setup(Opts {
        agents: 1,
        projects: 2,
        items: 1,
        ..Default::default()
    })
    .await;
    let gone = s.dir.path().join("projects").join(&s.sim.project_ids()[1]);
    std::fs::remove_dir_all(&gone).unwrap();
    let c = s.coordinator(Yaml {
        claude_command: Some("/nonexistent/agent-cli"),
        extra: "error_protection:\n  default_cooldown_seconds: 1\n",
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_secs(8)).await;
    let snap = c.last_snapshot();
    c.stop();
    let st = s.sim.stats();
    assert!(
        st.agent_errors.is_empty(),
        "local problems reported to the server's chat ({} chat sessions started for them): {:?}",
        st.chat_sessions,
        st.agent_errors
    );
    let shown = snap.map(|s| s["last_errors"].to_string()).unwrap_or_default();
    assert!(
        shown.contains("agent-cli") || shown.to_lowercase().contains("not found"),
        "the spawn failure is not shown to the user: {shown}"
    );
}

/// Bullet 3 (real failures): one report per failure streak, not one per failed run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_failure_is_reported_once_per_failure_streak() {
    let s = setup(Opts {
        items: 1,
        ..Default::default()
    })
    .await;
    let (a, p) = (s.sim.agent_ids()[0].clone(), s.sim.project_ids()[0].clone());
    s.sim.set_agent_behavior(
        &a,
        pm_sim::AgentBehavior::Fail {
            message: "Error: the model refused".into(),
        },
    );
    let c = s.coordinator(Yaml {
        extra: "error_protection:\n  default_cooldown_seconds: 1\n  max_cooldown_seconds: 1\n",
        ..Default::default()
    });
    let failed_twice = s
        .sim
        .wait_until(Duration::from_secs(20), |st| st.authentications_ok >= 3)
        .await;
    let reports = |st: &pm_sim::SimStats| st.agent_errors.iter().filter(|e| e.0 == a && e.1 == p).count();
    let in_streak = reports(&s.sim.stats());
    // The streak ends with a good run; the next failure starts a new streak and is reported again.
    s.sim.set_agent_behavior(&a, pm_sim::AgentBehavior::Succeed);
    let drained = s
        .sim
        .wait_until(Duration::from_secs(20), |st| {
            st.remaining_items == 0 && st.live_processes == 0
        })
        .await;
    s.sim.set_agent_behavior(
        &a,
        pm_sim::AgentBehavior::Fail {
            message: "Error: the model refused again".into(),
        },
    );
    s.sim.add_items(&a, &p, 1);
    let second = s
        .sim
        .wait_until(Duration::from_secs(20), |st| reports(st) > in_streak)
        .await;
    c.stop();
    assert!(
        failed_twice,
        "the failing agent did not run repeatedly: {:?}",
        s.sim.stats()
    );
    assert_eq!(
        in_streak,
        1,
        "reports during one failure streak: {:?}",
        s.sim.stats().agent_errors
    );
    assert!(
        drained && second,
        "a new streak after a good run was not reported: {:?}",
        s.sim.stats()
    );
}

/// Bullet 4: `SKILL.md` at the archive root (as the server stores skills) lands in skills/<dir>/SKILL.md,
/// for claude and for gemini.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skill_from_a_root_level_archive_is_installed_for_claude_and_gemini() {
    let s = setup(Opts {
        agents: 2,
        ..Default::default()
    })
    .await;
    let ids = s.sim.agent_ids();
    s.sim.set_agent_provider(&ids[1], "gemini");
    let zip = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        w.start_file("SKILL.md", o).unwrap();
        w.write_all(b"---\nname: webapp-testing\n---\nTest web apps.\n")
            .unwrap();
        w.start_file("scripts/run.sh", o).unwrap();
        w.write_all(b"echo ok\n").unwrap();
        w.finish().unwrap().into_inner()
    };
    for id in &ids {
        s.sim
            .set_agent_profile(id, "You test web apps.", vec![("webapp-testing".into(), zip.clone())]);
    }
    let c = s.coordinator(Yaml::default());
    let done = s
        .sim
        .wait_until(Duration::from_secs(30), |st| st.remaining_items == 0)
        .await;
    c.stop();
    assert!(done, "{:?}", s.sim.stats());
    let wd = s
        .dir
        .path()
        .join("projects")
        .join(&s.sim.project_ids()[0])
        .canonicalize()
        .unwrap();
    for (id, cfg) in [(&ids[0], ".claude"), (&ids[1], ".gemini")] {
        let skill = wd
            .join(".aiagent/agents")
            .join(id)
            .join(cfg)
            .join("skills/webapp-testing");
        assert!(
            skill.join("SKILL.md").is_file() && skill.join("scripts/run.sh").is_file(),
            "{} missing; skills dir has {:?}",
            skill.display(),
            list(&skill.parent().unwrap().to_path_buf())
        );
    }
}

fn list(dir: &PathBuf) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Bullet 5: a wrong token is its own state with its own words, not "server unreachable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_shows_its_own_state() {
    let s = setup(Opts::default()).await;
    let c = s.coordinator(Yaml {
        token: Some("tok-wrong-value"),
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    let snaps = c.stop();
    let attention = snaps
        .iter()
        .filter_map(|v| v.get("snapshot"))
        .next_back()
        .map(|s| s["attention"].clone())
        .unwrap_or_default();
    assert!(
        attention.to_string().contains("server:token"),
        "the rejected token does not need the user: {attention}"
    );
    let server: Vec<Value> = snaps
        .iter()
        .filter_map(|v| v.get("snapshot"))
        .map(|s| s["server"].clone())
        .collect();
    let last = server.last().cloned().unwrap_or_default();
    let text = last.to_string().to_lowercase();
    assert!(
        text.contains("token") && text.contains("rejected"),
        "no token-rejected state: {last}"
    );
    assert!(
        last["unreachable_since"].is_null(),
        "a rejected token is shown as an unreachable server: {last}"
    );
    assert!(s
        .sim
        .violations()
        .iter()
        .all(|v| v.kind == pm_sim::ViolationKind::BadCoordinatorToken));
}

/// Bullet 6: provider names the coordinator does not know fall back to the claude configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_provider_names_fall_back_to_the_claude_configuration() {
    let s = setup(Opts {
        agents: 2,
        ..Default::default()
    })
    .await;
    let ids = s.sim.agent_ids();
    s.sim.set_agent_provider(&ids[0], "openai");
    s.sim.set_agent_provider(&ids[1], "custom");
    let c = s.coordinator(Yaml::default());
    let done = s
        .sim
        .wait_until(Duration::from_secs(20), |st| st.remaining_items == 0)
        .await;
    let snap = c.last_snapshot();
    c.stop();
    assert!(
        done,
        "agents with provider openai/custom did not run with the claude config: {:?}; errors {}",
        s.sim.stats(),
        snap.map(|s| s["last_errors"].to_string()).unwrap_or_default()
    );
    s.assert_no_lease_wasted();
}

/// Bullet 7: with no local agents, the server's dynamic configuration (no root_agent_id: every agent,
/// humans included) must not enable the humans.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_configuration_never_enables_human_agents() {
    let s = setup(Opts {
        agents: 1,
        humans: 1,
        http: true,
        ..Default::default()
    })
    .await;
    let human = s.sim.human_ids()[0].clone();
    let ai = s.sim.agent_ids()[0].clone();
    let c = s.coordinator(Yaml {
        with_agents: false,
        ..Default::default()
    });
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(15) && !c.snapshots().iter().any(|s| s["agents"].to_string().contains(&ai))
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snaps = c.stop();
    let snaps: Vec<Value> = snaps.iter().filter_map(|v| v.get("snapshot").cloned()).collect();
    assert!(
        snaps.iter().any(|s| s["agents"].to_string().contains(&ai)),
        "the dynamic configuration was never applied; fetches: {}",
        s.sim.stats().remote_config_fetches
    );
    let enabled_human = snaps
        .iter()
        .flat_map(|s| s["agents"].as_array().cloned().unwrap_or_default())
        .any(|a| a["agent_id"] == human.as_str() && a["enabled"] == true);
    assert!(
        !enabled_human,
        "the human agent {human} was enabled from the dynamic configuration"
    );
    let asked = s
        .sim
        .calls()
        .iter()
        .filter(|c| c.tool == "get_agent_action" && c.args["agent_id"] == human.as_str())
        .count();
    assert_eq!(asked, 0, "the coordinator asked the server to start the human {human}");
}
