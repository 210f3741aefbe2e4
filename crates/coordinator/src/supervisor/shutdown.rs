//! Stopping: every child (bounded wait for exits and reports), and orphans left by a crashed run.

use super::protocol::Msg;
use super::protocol::PairKey;
use super::spawning::STOP_GRACE;
use super::Supervisor;
use crate::launch;
use crate::state::ChildRecord;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

impl Supervisor {
    // ----- stop / orphans -----

    /// Stop every child (group TERM, grace, KILL) and wait (bounded) until their exits are handled and reported.
    pub(super) async fn stop_all(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        let ids: Vec<u64> = self.runs.instances.keys().copied().collect();
        for id in &ids {
            self.stop_instance(*id);
        }
        let deadline = Instant::now() + STOP_GRACE + Duration::from_secs(5);
        // Drain messages until every instance is gone and its exit report is done (or the deadline passes).
        while (!self.runs.instances.is_empty()
            || !self.cycle.asking.is_empty()
            || self.cycle.askers > 0
            || self.reports_in_flight())
            && Instant::now() < deadline
        {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => {
                    // Late start answers are not acted on while stopping.
                    self.message(m);
                }
                _ => break,
            }
        }
        self.persist();
        self.status.dirty = true;
        // Every ended run is in the history before the engine reports itself stopped.
        if let Some(store) = &self.run_store {
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || store.flush()).await;
        }
    }

    pub(super) fn reports_in_flight(&self) -> bool {
        self.exits.pending.iter().any(|p| !self.pair_running(p))
            && self.health.server.reachable
            && self.client.is_some()
    }

    /// Children recorded by a previous run that crashed: stop them (we cannot re-attach to their output,
    /// so adopting them would leave runs unlogged), and report their exits when the server answers.
    pub(super) async fn stop_orphans(&mut self, orphans: Vec<ChildRecord>) {
        let mut stopped = Vec::new();
        for rec in orphans {
            if crate::state::group_is_ours(&rec) {
                tracing::warn!(pid = rec.pid, agent = %rec.agent_id, project = %rec.project_id, "stopping an agent left running by a previous coordinator");
                launch::stop_group(rec.pgid, STOP_GRACE).await;
                self.push_error(
                    Some(&rec.agent_id),
                    Some(&rec.project_id),
                    format!("stopped orphaned agent pid {} from a previous run", rec.pid),
                );
            }
            let pair = PairKey::new(&rec.agent_id, &rec.project_id);
            if !self.exits.pending.contains(&pair) {
                self.exits.pending.push_back(pair);
            }
            stopped.push(rec.pid);
        }
        if !stopped.is_empty() {
            self.persist();
        }
    }
}
