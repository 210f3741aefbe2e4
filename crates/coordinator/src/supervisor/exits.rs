//! A run ended: analyse its log (error line, quota), decide cooldowns, and report the exit to the server
//! in order (register log, error, exit), keeping unreported exits until the server answers.

use super::log_upload::{register_log, upload_log};
use super::protocol::{Msg, PairKey};
use super::Supervisor;
use crate::api::*;
use crate::launch;
use crate::pm::{PmClient, PmError};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

/// The server's spawn lease: a `start` answer holds the pair this long unless the agent authenticates.
pub(super) const LEASE: Duration = Duration::from_secs(120);

/// How long the health check after a failed run may take before the server counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
use std::path::PathBuf;

/// An exit report waiting to be sent.
pub(super) struct ExitReport {
    pub(super) pair: PairKey,
    info: InstanceInfo,
    /// The error line to send with `report_agent_error` (first of a failure streak).
    report_error: Option<String>,
}

/// Exit reports owed to the server and what we know about how to send them.
#[derive(Default)]
pub(super) struct ExitState {
    /// Exits not yet reported (persisted): the pair is not asked again until its exit is reported.
    pub(super) pending: VecDeque<PairKey>,
    pub(super) reporting: usize,
    pub(super) tool: Option<ExitTool>,
    pub(super) last_exit: HashMap<String, (Option<i32>, PathBuf)>,
    /// Pairs whose exit report is being sent right now: the pending flush must not send a second one (a late
    /// duplicate with `remaining_processes: 0` would delete the session of an instance started meanwhile).
    /// A count per pair: two instances of a pair may end close together.
    pub(super) in_flight: HashMap<PairKey, usize>,
    /// Reports waiting for a question about their pair to be answered.
    pub(super) deferred: Vec<ExitReport>,
    /// Pairs whose current failure streak was reported with `report_agent_error` (cleared by a good run).
    pub(super) reported_streak: HashSet<PairKey>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum ExitTool {
    ReportProcessExit,
    InvalidateSession,
}

impl ExitTool {
    pub(super) fn name(self) -> &'static str {
        match self {
            ExitTool::ReportProcessExit => "report_process_exit",
            ExitTool::InvalidateSession => "invalidate_session",
        }
    }
}

impl Supervisor {
    // ----- exits -----

    pub(super) fn exited(&mut self, id: u64, code: Option<i32>, summary: Option<Box<crate::runs::Summarizer>>) {
        let Some(inst) = self.runs.instances.get_mut(&id) else {
            return;
        };
        inst.summary = summary;
        launch::cleanup(&inst.plan);
        let log = inst.info.log_path.clone();
        let failed = code != Some(0) && !inst.stopping;
        let ep = self.settings.error_protection.clone();
        let tx = self.tx.clone();
        let client = self.client.clone();
        let stopped = inst.stopping;
        let kind = inst.kind.as_str();
        tokio::spawn(async move {
            // Reading the log tail is file I/O: off the loop.
            let analysis = tokio::task::spawn_blocking(move || {
                // A closing line, so a log read later says how the run ended.
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                    use std::io::Write;
                    let how = if stopped { " (stopped by the coordinator)" } else { "" };
                    let _ = writeln!(
                        f,
                        "[agentpm] {} exit code={}{how}",
                        chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f"),
                        code.map_or("?".into(), |c| c.to_string())
                    );
                }
                if !failed {
                    return (None, None);
                }
                let tail = crate::logs::read_tail(&log, 64 * 1024);
                let quota = if ep.quota_detection {
                    quota_wait(kind, &tail, &ep)
                } else {
                    None
                };
                (crate::exit::extract_error(&tail), quota)
            });
            let (error_line, quota_secs) = analysis.await.unwrap_or((None, None));
            // An agent whose MCP calls failed exits at once, often before our own next call notices the
            // outage: ask the server now, so the run is not blamed on the agent.
            let server_error = match (&client, failed) {
                (Some(c), true) => match tokio::time::timeout(PROBE_TIMEOUT, c.health_check()).await {
                    Ok(Ok(h)) if h.status == "ok" => None,
                    Ok(Ok(h)) => Some(PmError::Protocol {
                        tool: "health_check".into(),
                        message: format!("server status is {:?}", h.status),
                    }),
                    Ok(Err(e)) => Some(e).filter(|e| e.is_server_fault()),
                    Err(_) => Some(PmError::Timeout {
                        tool: "health_check".into(),
                        after: PROBE_TIMEOUT,
                    }),
                },
                _ => None,
            };
            let _ = tx.send(Msg::Analyzed {
                id,
                code,
                error_line,
                quota_secs,
                server_error,
            });
        });
    }

    pub(super) fn analyzed(
        &mut self,
        id: u64,
        code: Option<i32>,
        error_line: Option<String>,
        quota_secs: Option<u64>,
        server_error: Option<PmError>,
    ) {
        let Some(inst) = self.runs.instances.remove(&id) else {
            return;
        };
        let info = inst.info;
        let pair = PairKey::new(&info.agent_id, &info.project_id);
        let error_line = error_line.map(|e| self.redactor.redact(&e));
        self.exits
            .last_exit
            .insert(info.agent_id.clone(), (code, info.log_path.clone()));
        // The run is over: its log may be pruned by later retention passes.
        self.runs
            .live_logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&info.log_path);
        let failed = code != Some(0) && !inst.stopping;
        let mut report_error = None;
        let mut shown_error = None;
        if !failed {
            self.status.counters.exits_ok += 1;
            if code == Some(0) {
                if self.holds.pairs.get(&pair).is_some_and(|h| !h.dir) {
                    self.holds.pairs.remove(&pair);
                }
                self.holds.cooldowns.record_success(&pair.agent_id, &pair.project_id);
                self.status.agent_errors.remove(&info.agent_id);
                // A good run ends the failure streak: the next failure is reported again.
                self.exits.reported_streak.remove(&pair);
            }
        } else {
            self.status.counters.exits_failed += 1;
            if let Some(e) = &server_error {
                self.server_failed(e);
            }
            let msg = error_line
                .clone()
                .unwrap_or_else(|| format!("agent exited with code {}", code.map_or("?".into(), |c| c.to_string())));
            shown_error = Some(msg.clone());
            // Outage-aware attribution: the server is down now, or went down during the run.
            let facts = ExitFacts {
                quota: quota_secs.is_some(),
                server_down_now: server_error.is_some(),
                server_reachable: self.health.server.reachable,
                last_outage_at: self.health.last_outage_at,
                started_at: info.started_at,
            };
            if blame(&facts) == Blame::Outage {
                // It may have died before its `authenticate` reached the server: keep its lease to use again.
                if inst.lease.1.elapsed() < LEASE {
                    self.runs.orphaned.insert(pair.clone(), inst.lease.clone());
                }
                tracing::info!(agent = %info.agent_id, project = %info.project_id, "run failed while the PM server was unreachable ({msg}); not the agent's fault: no cooldown, no report, retried once the server is back");
                self.push_error(
                    Some(&info.agent_id),
                    Some(&info.project_id),
                    format!("run ended while the PM server was unreachable: {msg}"),
                );
            } else {
                tracing::warn!(agent = %info.agent_id, project = %info.project_id, code = ?code, "agent failed: {msg}");
                self.push_error(Some(&info.agent_id), Some(&info.project_id), msg.clone());
                self.status.agent_errors.insert(info.agent_id.clone(), msg.clone());
                let ep = &self.settings.error_protection;
                if ep.enabled {
                    // A quota holds the agent everywhere; any other failure only this pair.
                    let project = quota_secs.is_none().then_some(pair.project_id.as_str());
                    let c = self.holds.cooldowns.record_failure(
                        &pair.agent_id,
                        project,
                        quota_secs,
                        ep.default_cooldown_secs,
                        ep.max_cooldown_secs,
                        now_ms(),
                    );
                    tracing::info!(agent = %info.agent_id, "cooling down for {} s ({})", (c.until - now_ms()) / 1000, c.reason);
                    match project {
                        Some(_) => self.queue().retain(|p| *p != pair),
                        None => self.purge_queue(&pair.agent_id),
                    }
                    if quota_secs.is_none() {
                        self.health.recent_backoffs.push((pair.clone(), now_ms()));
                    }
                    let _ = self.ev.send(Event::CooldownStarted {
                        agent_id: info.agent_id.clone(),
                        until: c.until,
                        reason: c.reason.to_string(),
                    });
                    if quota_secs.is_some() {
                        self.hold_provider_account(&info.agent_id, &info.provider, c.until);
                    }
                }
                // Upstream reports only a real error line; every report becomes chat work on the server
                // (one paid run), so it is sent once per failure streak.
                if error_line.is_some() && self.exits.reported_streak.insert(pair.clone()) {
                    report_error = error_line.clone();
                }
            }
        }
        if let Some(store) = &self.run_store {
            // The writer finishes the relay's summary (tokens, cost, the final message; the log is not parsed
            // again) or, without one, reads the log; the exit path only sends.
            let stopped_by = inst.stopping.then_some(if inst.stopped_by_user {
                crate::runs::StoppedBy::User
            } else {
                crate::runs::StoppedBy::Coordinator
            });
            let signal = code.filter(|c| *c > 128 && inst.stopping).map(|c| c - 128);
            let end = crate::runs::RunEnd {
                ended_at: now_ms(),
                exit_code: code,
                signal,
                stopped_by,
                log_path: None,
                provider_kind: inst.kind.as_str().to_string(),
            };
            store.run_finished_with(&inst.run_id, end, inst.summary);
        }
        let _ = self.ev.send(Event::InstanceExited {
            instance: info.clone(),
            exit_code: code,
            error: shown_error,
        });
        self.exits.pending.push_back(pair.clone());
        // Not asked again until the exit is reported: a question and an exit report in flight together could
        // start a new instance whose fresh session the report then deletes.
        self.queue().retain(|p| *p != pair);
        self.persist();
        let report = ExitReport {
            pair: pair.clone(),
            info,
            report_error,
        };
        if self.cycle.questions_in_flight(&pair) {
            // A question about the pair is out: report once it is answered (a `start` it brings counts).
            self.exits.deferred.push(report);
        } else {
            self.send_exit_report(report);
        }
        self.dispatch();
    }

    /// Reports held back while a question about their pair was in flight, now that it is answered.
    pub(super) fn flush_deferred_reports(&mut self, pair: &PairKey) {
        if self.cycle.questions_in_flight(pair) {
            return;
        }
        let (ready, rest): (Vec<ExitReport>, Vec<ExitReport>) = std::mem::take(&mut self.exits.deferred)
            .into_iter()
            .partition(|r| r.pair == *pair);
        self.exits.deferred = rest;
        for r in ready {
            self.send_exit_report(r);
        }
    }

    /// Report in order: register log → error → exit. The pair is asked again once the exit is reported.
    fn send_exit_report(&mut self, r: ExitReport) {
        let ExitReport {
            pair,
            info,
            report_error,
        } = r;
        // An instance of the pair being spawned counts: it will authenticate, and `remaining_processes: 0`
        // would make the server delete the session it is about to use.
        let remaining = (self.instances_of(&pair) + usize::from(self.cycle.asking.contains(&pair))) as u64;
        if let Some(client) = self.client.clone() {
            *self.exits.in_flight.entry(pair.clone()).or_default() += 1;
            let tx = self.tx.clone();
            let known = self.exits.tool;
            let upload = self.upload_target();
            tokio::spawn(async move {
                if let Some(task) = &info.task_id {
                    // Register the local path first: it is what the server keeps if an upload fails.
                    let exec_id = register_log(&client, &info.agent_id, task, &info.log_path).await;
                    if let (Some(up), Some(exec_id)) = (upload, exec_id) {
                        // Uploads run on their own and never hold up the supervisor or the exit report.
                        tokio::spawn(upload_log(up, exec_id, info.clone()));
                    }
                }
                if let Some(msg) = report_error {
                    if let Err(e) = client.report_agent_error(&info.agent_id, &info.project_id, &msg).await {
                        tracing::debug!("report_agent_error: {e}");
                    }
                }
                let (result, tool) = report_exit(&client, known, &info.agent_id, &info.project_id, remaining).await;
                let _ = tx.send(Msg::Reported {
                    pair,
                    result,
                    exit_tool: tool,
                });
            });
        }
    }

    /// A quota is the provider account's: every other enabled agent that runs on the same provider waits
    /// until the same reset instead of each spending a run to find out.
    fn hold_provider_account(&mut self, hit: &str, provider: &str, until: UnixMs) {
        let others: Vec<String> = self
            .settings
            .agents
            .iter()
            .filter(|(id, a)| id.as_str() != hit && a.enabled && a.provider.as_deref().unwrap_or("claude") == provider)
            .map(|(id, _)| id.clone())
            .collect();
        for id in others {
            tracing::info!(agent = %id, provider, "holding until the provider's limit resets (hit by {hit})");
            self.holds
                .cooldowns
                .hold_for_provider(&id, until, &format!("{provider}, hit by {hit}"));
            self.purge_queue(&id);
            let _ = self.ev.send(Event::CooldownStarted {
                agent_id: id,
                until,
                reason: format!("quota ({provider}, hit by {hit})"),
            });
        }
    }

    pub(super) fn reported(&mut self, pair: PairKey, result: Result<(), PmError>, exit_tool: Option<ExitTool>) {
        if let Some(n) = self.exits.in_flight.get_mut(&pair) {
            *n -= 1;
            if *n == 0 {
                self.exits.in_flight.remove(&pair);
            }
        }
        if exit_tool.is_some() && self.exits.tool != exit_tool {
            self.exits.tool = exit_tool;
            self.health.server.exit_report_tool = exit_tool.map(|t| t.name().to_string());
        }
        match result {
            Ok(()) => {
                if let Some(pos) = self.exits.pending.iter().position(|p| *p == pair) {
                    self.exits.pending.remove(pos);
                }
                self.persist();
                // React at once: the pair may have more work.
                if self.running && self.blocked(&pair).is_none() {
                    let mut q = self.queue();
                    if !q.contains(&pair) {
                        q.push_front(pair);
                    }
                }
                self.dispatch();
            }
            Err(e) => {
                // Kept in pending_reports (persisted); sent again once the server answers.
                if e.is_server_fault() {
                    self.server_failed(&e);
                    // The run most likely failed because the server went away under it (we only learn of the
                    // outage now): that is no reason to hold the agent back once the server is back.
                    self.holds.cooldowns.clear_pair(&pair.agent_id, &pair.project_id);
                    self.persist();
                } else {
                    self.push_error(Some(&pair.agent_id), Some(&pair.project_id), e.to_string());
                    if let Some(pos) = self.exits.pending.iter().position(|p| *p == pair) {
                        self.exits.pending.remove(pos);
                    }
                }
            }
        }
    }

    pub(super) fn pending_flushed(&mut self, done: Vec<PairKey>, exit_tool: Option<ExitTool>) {
        self.exits.reporting = self.exits.reporting.saturating_sub(1);
        if exit_tool.is_some() {
            self.exits.tool = exit_tool;
        }
        self.exits.pending.retain(|p| !done.contains(p));
        self.persist();
        // Exits reported after an outage: their pairs are asked at once, not at the next cycle.
        for pair in done {
            if self.running && self.blocked(&pair).is_none() && !self.queue().contains(&pair) {
                self.queue().push_front(pair);
            }
        }
        self.dispatch();
    }

    pub(super) fn flush_pending_reports(&mut self) {
        if self.exits.pending.is_empty() || self.exits.reporting > 0 {
            return;
        }
        // Only pairs with nothing running and no report already in flight.
        let pending: Vec<PairKey> = self
            .exits
            .pending
            .iter()
            .filter(|p| {
                !self.pair_running(p) && !self.cycle.asking.contains(p) && !self.exits.in_flight.contains_key(*p)
            })
            .cloned()
            .collect();
        if pending.is_empty() {
            return;
        }
        let Some(client) = self.client.clone() else { return };
        self.exits.reporting += 1;
        let tx = self.tx.clone();
        let known = self.exits.tool;
        tokio::spawn(async move {
            let mut done = Vec::new();
            let mut tool = known;
            for pair in pending {
                let (r, t) = report_exit(&client, tool, &pair.agent_id, &pair.project_id, 0).await;
                if t.is_some() {
                    tool = t;
                }
                match r {
                    Ok(()) => done.push(pair),
                    Err(e) if e.is_unreachable() => break,
                    Err(_) => done.push(pair), // refused: nothing more we can do
                }
            }
            let _ = tx.send(Msg::PendingFlushed { done, exit_tool: tool });
        });
    }
}

/// How long a failed run's quota holds the agent: the reset time in the provider's own words (Claude's
/// rate-limit event `resetsAt`, the reset the CLIs print; `runs::quota`) plus the margin, else the plain-text
/// patterns of `exit::detect_quota`. None = not a quota failure.
fn quota_wait(kind: &str, tail: &str, ep: &crate::config::ErrorProtection) -> Option<u64> {
    let now = now_ms();
    let stated = crate::runs::record::summarize(kind, tail)
        .quota_reset_at
        .filter(|t| *t > now);
    match stated {
        Some(t) => {
            let secs = ((t - now) as f64 / 1000.0) * (1.0 + ep.quota_margin_percent as f64 / 100.0);
            Some((secs.ceil() as u64).clamp(5, ep.max_cooldown_secs.max(5)))
        }
        None => crate::exit::detect_quota(tail, ep.quota_margin_percent, ep.max_cooldown_secs),
    }
}

/// What we know about a failed run when deciding whose fault it was.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExitFacts {
    /// The log names a quota or rate limit.
    pub(super) quota: bool,
    /// The health check right after the exit failed.
    pub(super) server_down_now: bool,
    /// The engine's view of the server when the result arrived.
    pub(super) server_reachable: bool,
    pub(super) last_outage_at: Option<UnixMs>,
    pub(super) started_at: UnixMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Blame {
    /// The agent's run failed on its own: cooldown, and one report per failure streak.
    Agent,
    /// The server went away under it: no cooldown, no report.
    Outage,
}

/// Outage-aware attribution: a failure while the server is down, or after it went down during the run, is
/// the outage's — unless the log names a quota, which is the provider's answer whatever the server did.
pub(super) fn blame(f: &ExitFacts) -> Blame {
    let outage = f.server_down_now || !f.server_reachable || f.last_outage_at.is_some_and(|t| t >= f.started_at);
    if outage && !f.quota {
        Blame::Outage
    } else {
        Blame::Agent
    }
}

/// Report an exit with whichever tool the server has: current servers know `report_process_exit`,
/// 0.1.x-era servers only `invalidate_session`. The first call tells which; the answer is remembered.
async fn report_exit(
    client: &PmClient,
    known: Option<ExitTool>,
    agent: &str,
    project: &str,
    remaining: u64,
) -> (Result<(), PmError>, Option<ExitTool>) {
    match known {
        // `invalidate_session` ends every session of the pair: with another instance still running it would
        // cut that one off, so it is only sent for the last one (the server's TTL covers the rest).
        Some(ExitTool::InvalidateSession) if remaining > 0 => (Ok(()), known),
        Some(ExitTool::InvalidateSession) => (client.invalidate_session(agent, project).await, known),
        Some(ExitTool::ReportProcessExit) => (client.report_process_exit(agent, project, remaining).await, known),
        None => match client.report_process_exit(agent, project, remaining).await {
            Err(e) if e.is_unknown_tool() && remaining > 0 => (Ok(()), Some(ExitTool::InvalidateSession)),
            Err(e) if e.is_unknown_tool() => (
                client.invalidate_session(agent, project).await,
                Some(ExitTool::InvalidateSession),
            ),
            Ok(()) => (Ok(()), Some(ExitTool::ReportProcessExit)),
            Err(e) => (Err(e), None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ExitFacts {
        ExitFacts {
            quota: false,
            server_down_now: false,
            server_reachable: true,
            last_outage_at: None,
            started_at: 1_000,
        }
    }

    #[test]
    fn a_failure_with_a_healthy_server_is_the_agents() {
        assert_eq!(blame(&facts()), Blame::Agent);
        // An outage that ended before the run started says nothing about this run.
        assert_eq!(
            blame(&ExitFacts {
                last_outage_at: Some(999),
                ..facts()
            }),
            Blame::Agent
        );
    }

    #[test]
    fn a_failure_during_or_right_after_an_outage_is_not() {
        assert_eq!(
            blame(&ExitFacts {
                server_down_now: true,
                ..facts()
            }),
            Blame::Outage
        );
        assert_eq!(
            blame(&ExitFacts {
                server_reachable: false,
                ..facts()
            }),
            Blame::Outage
        );
        assert_eq!(
            blame(&ExitFacts {
                last_outage_at: Some(1_000),
                ..facts()
            }),
            Blame::Outage
        );
    }

    #[test]
    fn a_quota_is_the_providers_answer_even_during_an_outage() {
        assert_eq!(
            blame(&ExitFacts {
                quota: true,
                server_down_now: true,
                server_reachable: false,
                ..facts()
            }),
            Blame::Agent
        );
    }
}
