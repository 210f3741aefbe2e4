//! Benchmark scenarios of issue 13 on the faithful simulator (used by `agentpm-bench`):
//! - logout drain: 4×5×3 items of 0.2 s, max 3, agents log out and exit 0.3 s later (the server answers
//!   `start` in between; a coordinator that drops it blocks the pair for the 120 s lease);
//! - outage drain: 2×2×5 items of 0.5 s, the server stops for 8 s after 3 s; time from its return to drained.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Starts a coordinator (ours or Python's) on a YAML file with a data dir.
pub type Starter<'a> = &'a dyn Fn(&Path, &Path) -> Child;

async fn setup(
    agents: usize,
    projects: usize,
    items: usize,
    fake_args: &[&str],
) -> (tempfile::TempDir, pm_sim::Simulator, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sim = crate::socket_sim(dir.path(), agents, projects, items, Some(3), pm_sim::ExitTool::Both).await;
    let yaml = crate::python_yaml(&sim, 1, 3, fake_args);
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    (dir, sim, path)
}

fn lease_fields(s: &pm_sim::SimStats) -> Value {
    json!({
        "leases_taken": s.leases_taken, "leases_cleared_by_auth": s.leases_cleared_by_auth,
        "leases_outstanding": s.leases_outstanding, "leases_expired_unused": s.leases_expired_unused,
        "starts_beside_live_process": s.starts_beside_live_process,
        "starts_lost": s.leases_taken - s.leases_cleared_by_auth - s.leases_outstanding,
    })
}

/// One logout-before-exit drain; gives up after `limit` (a 120 s stall shows as ≥ 120 s).
pub async fn logout_drain_once(start: Starter<'_>, limit: Duration) -> Value {
    let (dir, sim, yaml) = setup(4, 5, 3, &["--work-ms", "200", "--linger-ms", "300"]).await;
    let t = Instant::now();
    let mut child = start(&yaml, &dir.path().join("data"));
    let done = sim.wait_until(limit, |s| s.remaining_items == 0).await;
    let wall = t.elapsed().as_secs_f64();
    crate::sigterm_and_wait(&mut child, Duration::from_secs(10));
    let st = sim.stats();
    let mut v = json!({"done": done, "wall_s": if done { wall } else { f64::NAN }, "left": st.remaining_items, "violations": sim.violations().len()});
    v["leases"] = lease_fields(&st);
    sim.shutdown().await;
    v
}

/// One outage drain: seconds from the server's return until every item is done (NaN past `limit`).
pub async fn outage_drain_once(start: Starter<'_>, limit: Duration) -> Value {
    let (dir, sim, yaml) = setup(2, 2, 5, &["--work-ms", "500"]).await;
    let mut child = start(&yaml, &dir.path().join("data"));
    sim.schedule_outage(Duration::from_secs(3), Duration::from_secs(8))
        .await
        .unwrap();
    let back = Instant::now();
    let left = sim.stats().remaining_items;
    let done = sim.wait_until(limit, |s| s.remaining_items == 0).await;
    let after = back.elapsed().as_secs_f64();
    crate::sigterm_and_wait(&mut child, Duration::from_secs(10));
    let st = sim.stats();
    let mut v = json!({"done": done, "drain_after_back_s": if done { after } else { f64::NAN }, "left_at_return": left, "left_at_end": st.remaining_items, "agent_errors": st.agent_errors.len()});
    v["leases"] = lease_fields(&st);
    sim.shutdown().await;
    v
}
