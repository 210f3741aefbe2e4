//! The continuous demo, through the real CLI: work keeps coming, runs stream their transcripts, the failing
//! agent reaches "needs you", and the quota agent is parked until a real reset time.

use agentpm_e2e::*;
use std::process::Command;

#[test]
fn continuous_demo_keeps_going_and_shows_a_failure_and_a_quota() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let started_ms = now_ms();
    let out = Command::new(bin("agentpm-coordinator"))
        .env_remove("MCP_COORDINATOR_TOKEN")
        .env("AGENTPM_DATA_DIR", dir.path())
        .args([
            "--json",
            "demo",
            "--continuous",
            "--agents",
            "4",
            "--projects",
            "2",
            "--items",
            "1",
            "--max-concurrent",
            "4",
        ])
        .args([
            "--run-secs",
            "1.5-2.5",
            "--seed",
            "11",
            "--cooldown-secs",
            "1",
            "--quota-reset-secs",
            "120",
            "--timeout",
            "10",
            "--dir",
        ])
        .arg(&demo_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{}",
        tail(&stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"summary\""))
        .unwrap_or_else(|| panic!("no summary: {}", tail(&stdout)));
    let s: serde_json::Value = serde_json::from_str(line).unwrap();
    let s = &s["summary"];
    eprintln!("summary: {s}");
    assert_eq!(s["continuous"], true);
    assert_eq!(s["violations"], 0, "{s}");
    // More done than there was at the start: the simulator refilled the pairs whose work ran out.
    let (done, initial) = (
        s["completed_items"].as_u64().unwrap(),
        s["work_items"].as_u64().unwrap(),
    );
    assert!(done > initial, "{done} items done, initial workload {initial}");
    assert!(s["refilled_items"].as_u64().unwrap() > 0);
    let (failing, quota) = (s["failing_agent"].as_str().unwrap(), s["quota_agent"].as_str().unwrap());
    let keys: Vec<&str> = s["attention"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["key"].as_str())
        .collect();
    assert!(keys.contains(&format!("agent:{failing}:failing").as_str()), "{keys:?}");
    assert!(keys.contains(&format!("agent:{quota}:quota").as_str()), "{keys:?}");
    // The quota agent is parked until the provider's stated reset (120 s after it was hit, plus the 10 %
    // margin), not a guessed backoff.
    let cd = s["cooldowns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent_id"] == quota)
        .unwrap_or_else(|| panic!("no cooldown for {quota}: {s}"));
    assert!(cd["reason"].as_str().unwrap().starts_with("quota"), "{cd}");
    let until = cd["until"].as_i64().unwrap();
    assert!(
        until > started_ms + 120_000 && until < now_ms() + 135_000,
        "reset {} s after the start",
        (until - started_ms) / 1000
    );
    // The failing agent's log has its real error line.
    let failing_logs = std::fs::read_dir(demo_dir.join("logs").join(failing)).unwrap().count();
    assert!(failing_logs >= 3, "{failing_logs} failed runs");
    // A succeeding run streamed a session: text, local tool calls with their results, usage growing.
    let ok_dir = demo_dir.join("logs").join("agt_01");
    let logs: Vec<String> = std::fs::read_dir(&ok_dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let full = logs
        .iter()
        .find(|l| l.contains("\"type\":\"result\"") && l.contains("\"subtype\":\"success\""))
        .expect("a finished successful run");
    assert!(
        full.contains("\"name\":\"Bash\"") && full.contains("test result: ok"),
        "{full}"
    );
    let outputs: Vec<u64> = full
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "assistant")
        .filter_map(|v| v["message"]["usage"]["output_tokens"].as_u64())
        .collect();
    assert!(outputs.len() >= 6, "{outputs:?}");
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn tail(s: &str) -> String {
    s.lines()
        .rev()
        .take(20)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}
