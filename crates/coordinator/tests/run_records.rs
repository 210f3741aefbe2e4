//! The fake agent's Claude stream-json, run as a real process against the simulator, becomes a run record
//! whose tokens, cost, turns and session equal what its own `result` line says; and the `runs` / `usage`
//! commands read that history back.
use coordinator::runs::{Outcome, RunEnd, RunFilter, RunStart, RunStore, UsageBy};
use pm_sim::{AgentBehavior, SimConfig, Simulator, Workload};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;

const BIN: &str = env!("CARGO_BIN_EXE_agentpm-coordinator");

async fn fake_agent(sim: &Simulator, agent: &str, project: &str, log: &Path) -> i32 {
    let out = std::fs::File::create(log).unwrap();
    let status = tokio::process::Command::new(BIN)
        .args([
            "--fake-agent",
            "-p",
            "--verbose",
            "--output-format",
            "stream-json",
            "--work-ms",
            "20",
        ])
        .env("AGENTPM_SERVER", sim.socket_path().unwrap())
        .env("AGENT_ID", agent)
        .env("AGENT_PASSKEY", sim.passkey(agent))
        .env("PROJECT_ID", project)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .await
        .unwrap();
    status.code().unwrap_or(-1)
}

fn result_line(log: &Path) -> Value {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(r#"{"type":"result""#))
        .unwrap_or_else(|| panic!("no result line in {text}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_agent_runs_become_records_equal_to_their_result_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = SimConfig::new(
        Workload {
            projects: 1,
            agents: 3,
            items_per_pair: 1,
            provider: "claude".into(),
            model: None,
        },
        dir.path().join("work"),
    );
    cfg.socket_path = Some(dir.path().join("sim.sock"));
    let sim = Simulator::start(cfg).await.unwrap();
    let project = sim.project_ids()[0].clone();
    let db = dir.path().join("data/coordinator/runs.db");
    let store = RunStore::open(&db).unwrap();

    let cases = [
        (
            "fail",
            AgentBehavior::Fail {
                message: "Error: simulated failure".into(),
            },
            Outcome::Failed,
        ),
        (
            "quota",
            AgentBehavior::Quota {
                message: "TerminalQuotaError: quota will reset after 0m5s".into(),
            },
            Outcome::Failed,
        ),
        ("ok", AgentBehavior::Succeed, Outcome::Ok),
    ];
    // One agent each: a session the failed run left open would make the next one's `authenticate` refuse.
    for (i, (name, behavior, want)) in cases.into_iter().enumerate() {
        let agent = sim.agent_ids()[i].clone();
        sim.set_agent_behavior(&agent, behavior);
        let log = dir.path().join(format!("{name}.log"));
        let started = coordinator::api::now_ms();
        let start = RunStart {
            agent_id: agent.clone(),
            project_id: project.clone(),
            task_id: None,
            provider: "claude".into(),
            provider_kind: "claude".into(),
            model: None,
            started_at: started,
            log_path: Some(log.clone()),
        };
        store.run_started(name, start);
        let code = fake_agent(&sim, &agent, &project, &log).await;
        let ended = coordinator::api::now_ms();
        store.run_finished(
            name,
            RunEnd {
                ended_at: ended,
                exit_code: Some(code),
                provider_kind: "claude".into(),
                ..Default::default()
            },
        );
        store.flush();
        let r = store
            .query(&RunFilter::default())
            .unwrap()
            .into_iter()
            .find(|r| r.run_id == name)
            .unwrap();
        let res = result_line(&log);
        assert_eq!(r.outcome, want, "{name}: {r:?}");
        let u = &res["usage"];
        assert_eq!(r.input_tokens, u["input_tokens"].as_u64().unwrap(), "{name}");
        assert_eq!(r.output_tokens, u["output_tokens"].as_u64().unwrap(), "{name}");
        assert_eq!(
            r.cache_read_tokens,
            u["cache_read_input_tokens"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            r.cache_write_tokens,
            u["cache_creation_input_tokens"].as_u64().unwrap(),
            "{name}"
        );
        assert!(r.input_tokens + r.output_tokens > 0, "{name}: {r:?}");
        assert_eq!(r.cost_usd, res["total_cost_usd"].as_f64(), "{name}");
        assert!(!r.cost_is_estimate);
        assert_eq!(r.turns, res["num_turns"].as_u64().map(|n| n as u32), "{name}");
        assert_eq!(r.session_id.as_deref(), res["session_id"].as_str(), "{name}");
        assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5"));
        match name {
            "fail" => assert_eq!(r.error_line.as_deref(), Some("Error: simulated failure")),
            "quota" => {
                let at = r.quota_reset_at.expect("the rejected rate_limit_event names the reset");
                // resetsAt is in whole seconds, 5 s after the agent's clock.
                assert!(
                    at >= started + 4000 && at <= ended + 5000,
                    "{at} not 5 s after {started}..{ended}"
                );
            }
            _ => {
                assert!(
                    r.final_message.as_deref().unwrap().starts_with("Finished task"),
                    "{r:?}"
                );
                assert!(r.turns.unwrap() >= 4, "authenticate, get_next_action, …: {r:?}");
            }
        }
    }
    drop(store);

    // The commands read the same file; JSON is the records themselves.
    let out = std::process::Command::new(BIN)
        .args(["--json", "runs", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["ok", "quota", "fail"]
    );
    let out = std::process::Command::new(BIN)
        .args(["runs", "--failed", "--agent", &sim.agent_ids()[0], "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with("STARTED")
            && table.lines().count() == 2
            && table.contains("failed")
            && table.contains("simulated failure"),
        "{table}"
    );
    let out = std::process::Command::new(BIN)
        .args(["--json", "usage", "--by", "provider", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let reader = coordinator::runs::RunReader::open(&db).unwrap();
    let want = reader.usage(UsageBy::Provider, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0]["key"].as_str(),
            rows[0]["runs"].as_u64(),
            rows[0]["failed"].as_u64()
        ),
        (Some("claude"), Some(3), Some(2))
    );
    assert_eq!(rows[0]["output_tokens"].as_u64(), Some(want[0].output_tokens));
    let out = std::process::Command::new(BIN)
        .args(["usage", "--since", "1x", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
    let out = std::process::Command::new(BIN)
        .args(["runs", "--db"])
        .arg(dir.path().join("nothing.db"))
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no runs recorded yet"));
}
