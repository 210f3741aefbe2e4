//! Conformance: the published Python coordinator (aiagent-runner 0.1.13 from PyPI) drains a workload against
//! our simulator with real fake-agent processes. If the simulator did not speak the real protocol, the Python
//! coordinator (which was written against the real server) could not do this.
//!
//! Needs PyPI. Without it the test fails, unless AGENTPM_SKIP_PYTHON=1 says to skip it.

use agentpm_e2e::*;
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_coordinator_drains_a_workload_against_the_simulator() {
    let py = match python_venv() {
        Ok(p) => p,
        Err(e) if std::env::var("AGENTPM_SKIP_PYTHON").as_deref() == Ok("1") => {
            eprintln!("SKIPPED (AGENTPM_SKIP_PYTHON=1): {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    // 0.1.13 reports exits with invalidate_session.
    let sim = socket_sim(dir.path(), 2, 1, 2, Some(2), pm_sim::ExitTool::Legacy).await;
    let yaml = python_yaml(&sim, 1, 2, &["--work-ms", "100"]);
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let mut child = Command::new(&py)
        .args(["-m", "aiagent_runner", "--coordinator", "-c"])
        .arg(&path)
        .env("XDG_DATA_HOME", dir.path().join("xdg"))
        .env("XDG_RUNTIME_DIR", dir.path().join("run"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let done = sim
        .wait_until(Duration::from_secs(120), |s| s.remaining_items == 0)
        .await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stats = sim.stats();
    assert!(
        done,
        "Python coordinator did not drain the workload: {stats:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stats.completed_items, 4);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let calls = sim.calls();
    for tool in [
        "health_check",
        "list_active_projects_with_agents",
        "get_agent_action",
        "authenticate",
        "invalidate_session",
    ] {
        assert!(
            calls.iter().any(|c| c.tool == tool),
            "the Python coordinator never called {tool}"
        );
    }
    sim.shutdown().await;
}
