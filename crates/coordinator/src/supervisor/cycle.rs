//! The poll cycle: discover projects, queue the eligible pairs, ask the server (askers chain questions,
//! each holding a reserved slot) and act on the answers.

use super::eligibility::working_dir_problem;
use super::health::backoff_delay;
use super::protocol::{Msg, PairKey};
use super::Supervisor;
use crate::pm::{AgentAction, PmClient, PmError, ProjectInfo, ServerAction};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Instances of one pair at once: the server runs one session per purpose (`task`, `chat`), so it asks
/// for a second instance while one runs (§2.4 step 6); more would only come from a confused server.
pub(super) const MAX_INSTANCES_PER_PAIR: usize = 2;
/// How long `get_app_settings` is cached (upstream caches it forever; we refresh).
const APP_SETTINGS_TTL: Duration = Duration::from_secs(300);

pub(super) struct Discovery {
    pub(super) projects: Vec<ProjectInfo>,
    pub(super) base_prompt: Option<Option<String>>,
}

pub(super) struct CycleState {
    pub(super) number: u64,
    pub(super) started: Option<Instant>,
    pub(super) discovering: bool,
    pub(super) next_at: Instant,
    pub(super) rotation: usize,
    pub(super) projects: HashMap<String, ProjectInfo>,
    /// Pairs whose `start` is being spawned: each holds a reserved slot.
    pub(super) asking: HashSet<PairKey>,
    /// Asker tasks: each holds one reserved slot and asks queued pairs one after another until an answer
    /// needs the loop (start, stop, restart, error) or the queue is empty. Chaining the questions in the
    /// asker, instead of a hop through the loop per question, is what makes a cycle over 1,000 pairs fast.
    pub(super) askers: usize,
    /// Pairs to ask this cycle; only eligible pairs are put in (see `blocked`), and pairs that become
    /// ineligible are purged. A running pair is asked like any other, holding a free slot: the answer may
    /// be `start` for its other purpose, and a `start` is a lease we must be able to obey.
    pub(super) ask_queue: Arc<std::sync::Mutex<VecDeque<PairKey>>>,
    /// Pairs an asker is asking right now (shared with the askers), and those whose exit report waits for it.
    pub(super) questions: Arc<std::sync::Mutex<Questions>>,
}

#[derive(Default)]
pub(super) struct Questions {
    pub(super) in_flight: HashSet<PairKey>,
    /// An asker that gets a no-op answer for one of these tells the loop (`Msg::QuestionDone`).
    pub(super) watched: HashSet<PairKey>,
}

impl CycleState {
    fn questions(&self) -> std::sync::MutexGuard<'_, Questions> {
        self.questions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Is an asker asking about this pair now? (Then an exit report waits, and the pair is watched.)
    pub(super) fn questions_in_flight(&self, pair: &PairKey) -> bool {
        let mut q = self.questions();
        let out = q.in_flight.contains(pair);
        if out {
            q.watched.insert(pair.clone());
        } else {
            q.watched.remove(pair);
        }
        out
    }

    /// The loop has decided on a question's answer (a `start` now holds `asking`): it is no longer in flight.
    pub(super) fn question_answered(&self, pair: &PairKey) {
        self.questions().in_flight.remove(pair);
    }

    pub(super) fn new() -> CycleState {
        CycleState {
            number: 0,
            started: None,
            discovering: false,
            next_at: Instant::now(),
            rotation: 0,
            projects: HashMap::new(),
            asking: HashSet::new(),
            askers: 0,
            ask_queue: Arc::new(std::sync::Mutex::new(VecDeque::new())),
            questions: Arc::new(std::sync::Mutex::new(Questions::default())),
        }
    }
}

impl Supervisor {
    // ----- the cycle -----

    pub(super) fn begin_cycle(&mut self) {
        let Some(client) = self.client.clone() else {
            self.cycle.next_at = Instant::now() + Duration::from_secs(self.settings.polling_interval_secs);
            return;
        };
        if self.secrets.error.is_some() {
            // Retry the store once per cycle; running agents are unaffected.
            self.load_secrets();
        }
        self.maybe_fetch_remote_config();
        self.cycle.number += 1;
        self.cycle.discovering = true;
        self.cycle.started = Some(Instant::now());
        let cycle = self.cycle.number;
        let root = self.settings.root_agent_id.clone();
        let want_settings = self
            .remote
            .base_prompt_at
            .is_none_or(|t| t.elapsed() > APP_SETTINGS_TTL);
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = async {
                let health = client.health_check().await?;
                if health.status != "ok" {
                    return Err(PmError::Protocol {
                        tool: "health_check".into(),
                        message: format!("server status is {:?}", health.status),
                    });
                }
                let base_prompt = if want_settings {
                    // Optional tool (absent before HEAD): failure just means "no base prompt".
                    Some(
                        client
                            .get_app_settings()
                            .await
                            .ok()
                            .and_then(|s| s.agent_base_prompt)
                            .filter(|p| !p.trim().is_empty()),
                    )
                } else {
                    None
                };
                let projects = client.list_active_projects_with_agents(root.as_deref()).await?;
                Ok(Discovery { projects, base_prompt })
            }
            .await;
            let _ = tx.send(Msg::Discovered { cycle, result });
        });
    }

    pub(super) fn discovered(&mut self, cycle: u64, result: Result<Discovery, PmError>) {
        self.cycle.discovering = false;
        let interval = Duration::from_secs(self.settings.polling_interval_secs);
        self.status.counters.ticks += 1;
        match result {
            Err(e) => {
                self.server_failed(&e);
                // A refused token is not an outage: retry at the normal pace (a new token is picked up).
                let wait = if e.is_auth() {
                    interval
                } else {
                    backoff_delay(self.health.streak, interval)
                };
                self.cycle.next_at = Instant::now() + wait;
            }
            Ok(d) => {
                self.server_ok();
                if let Some(bp) = d.base_prompt {
                    self.remote.base_prompt = bp;
                    self.remote.base_prompt_at = Some(Instant::now());
                }
                self.cycle.next_at = self.cycle.started.unwrap_or_else(Instant::now) + interval;
                self.flush_pending_reports();
                self.build_queues(cycle, d.projects);
                self.dispatch();
                self.check_cycle_done();
            }
        }
    }

    pub(super) fn build_queues(&mut self, _cycle: u64, projects: Vec<ProjectInfo>) {
        self.cycle.projects.clear();
        let mut pairs = Vec::new();
        let mut seen: HashSet<PairKey> = HashSet::new();
        for p in projects {
            if let Err(e) = crate::paths::validate_id(&p.project_id) {
                self.push_error(
                    None,
                    None,
                    format!("ignoring project with unsafe id {:?}: {e}", p.project_id),
                );
                continue;
            }
            // A stat per project per cycle: a missing or unsafe working dir holds this project's pairs
            // before anyone asks the server (no lease taken), and is reported once per pair.
            let dir_problem = working_dir_problem(&p);
            for a in &p.agents {
                let Some(agent) = self.settings.agents.get(a) else {
                    continue;
                };
                if !agent.enabled {
                    continue;
                }
                if crate::paths::validate_id(a).is_err() {
                    continue; // settings validation already rejects these; server data must not create dirs
                }
                let pair = PairKey::new(a, &p.project_id);
                if !seen.insert(pair.clone()) {
                    continue; // listed twice: asked once
                }
                match &dir_problem {
                    Some(msg) => self.hold_pair_for_dir(&pair, msg),
                    None => {
                        if self.holds.pairs.get(&pair).is_some_and(|h| h.dir) {
                            tracing::info!(agent = %pair.agent_id, project = %pair.project_id, "working directory usable again");
                            self.holds.pairs.remove(&pair);
                        }
                    }
                }
                pairs.push(pair);
            }
            self.cycle.projects.insert(p.project_id.clone(), p);
        }
        // Pairs the server no longer lists: forget their directory holds (a timed hold simply expires).
        self.holds.pairs.retain(|pair, h| !h.dir || seen.contains(pair));
        // Rotate the start point so that, with few free slots, every pair gets its turn.
        if !pairs.is_empty() {
            let r = self.cycle.rotation % pairs.len();
            pairs.rotate_left(r);
            self.cycle.rotation = self.cycle.rotation.wrapping_add(1);
        }
        // Pairs with nothing running first: a running pair's question is mostly answered `hold`.
        let (idle, running): (Vec<PairKey>, Vec<PairKey>) = pairs.into_iter().partition(|p| self.instances_of(p) == 0);
        let mut queue = VecDeque::new();
        for pair in idle.into_iter().chain(running) {
            if self.blocked(&pair).is_none() {
                queue.push_back(pair);
            }
        }
        *self.queue() = queue;
    }
    pub(super) fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<PairKey>> {
        self.cycle.ask_queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drop an agent's queued questions (it just became ineligible, e.g. a cooldown started).
    pub(super) fn purge_queue(&self, agent: &str) {
        self.queue().retain(|p| p.agent_id != agent);
    }

    pub(super) fn free_slots(&self) -> usize {
        self.settings
            .max_concurrent
            .saturating_sub(self.runs.instances.len() + self.cycle.asking.len() + self.cycle.askers)
    }
    /// Ask as many questions as there are free slots: every question holds a slot, so whatever the answer
    /// (a `start` for an idle pair or for a running pair's other purpose) it can be obeyed at once.
    pub(super) fn dispatch(&mut self) {
        if !self.running {
            return;
        }
        let Some(client) = self.client.clone() else { return };
        while self.free_slots() > 0 && !self.queue().is_empty() {
            self.cycle.askers += 1;
            tokio::spawn(asker(
                client.clone(),
                self.cycle.ask_queue.clone(),
                self.cycle.questions.clone(),
                self.tx.clone(),
            ));
        }
    }

    /// An asker ended: its slot comes back; an answer that needs a decision is handled like any other.
    pub(super) fn asker_done(&mut self, asked: Option<(PairKey, Result<AgentAction, PmError>)>, holds: u64) {
        self.cycle.askers -= 1;
        self.status.counters.asked += holds;
        match asked {
            Some((pair, result)) => {
                self.answered(pair.clone(), result);
                self.cycle.question_answered(&pair);
                self.flush_deferred_reports(&pair);
            }
            None => {
                // Safety net: an idle asker asks nothing, so reports waiting on a question may go now.
                let waiting: Vec<PairKey> = self.exits.deferred.iter().map(|r| r.pair.clone()).collect();
                for p in waiting {
                    self.flush_deferred_reports(&p);
                }
                self.dispatch();
                self.check_cycle_done();
            }
        }
    }

    pub(super) fn check_cycle_done(&mut self) {
        if self.cycle.askers == 0 && self.cycle.asking.is_empty() && self.queue().is_empty() {
            if let Some(t) = self.cycle.started.take() {
                self.status.counters.last_cycle_ms = t.elapsed().as_secs_f64() * 1000.0;
            }
        }
    }

    /// An answer that needs a decision. Its asker's slot is gone already; a `start` re-reserves one
    /// (`asking`) until the spawn is done: the asker only stops on such an answer while a slot is free.
    pub(super) fn answered(&mut self, pair: PairKey, result: Result<AgentAction, PmError>) {
        let asked_at = Instant::now();
        match result {
            Err(e) => {
                if e.is_server_fault() || e.is_auth() {
                    self.server_failed(&e);
                    self.queue().clear();
                } else {
                    self.push_error(Some(&pair.agent_id), Some(&pair.project_id), e.to_string());
                }
            }
            Ok(action) => match action.action {
                ServerAction::Hold if action.reason.as_deref() == Some("spawn_in_progress") => {
                    // The server still waits for an agent of ours that the outage killed before it could
                    // authenticate: start it again on that lease instead of leaving the pair blocked for 120 s.
                    let lease = self
                        .runs
                        .orphaned
                        .remove(&pair)
                        .filter(|(_, at)| at.elapsed() < super::exits::LEASE - Duration::from_secs(5));
                    if let Some((lease_action, _)) = lease {
                        if self.blocked_for_start(&pair).is_none() && self.instances_of(&pair) == 0 {
                            tracing::info!(agent = %pair.agent_id, project = %pair.project_id, "starting again on the lease of a run the outage ended before it authenticated");
                            self.cycle.asking.insert(pair.clone());
                            self.start_spawn(pair, lease_action, asked_at);
                        }
                    }
                }
                ServerAction::Start => match self.blocked_for_start(&pair) {
                    // The pair became ineligible while its question was in flight, or we were stopped: the
                    // lease is lost (blocked on the server until it expires) — counted and said why.
                    Some(why) => self.lease_lost(&pair, why),
                    None => {
                        self.runs.orphaned.remove(&pair);
                        self.cycle.asking.insert(pair.clone());
                        self.start_spawn(pair, action, asked_at);
                    }
                },
                ServerAction::Stop => {
                    // Upstream stops the oldest instance of the pair; the current server never sends it.
                    tracing::info!(agent = %pair.agent_id, project = %pair.project_id, reason = ?action.reason, "server asked to stop");
                    if let Some(id) = self
                        .runs
                        .instances
                        .iter()
                        .filter(|(_, i)| i.info.agent_id == pair.agent_id && i.info.project_id == pair.project_id)
                        .map(|(id, _)| *id)
                        .min()
                    {
                        self.stop_instance(id);
                    }
                }
                // `restart` is documented as future and ignored upstream; `hold` and unknown: nothing to do.
                _ => {}
            },
        }
        self.dispatch();
        self.check_cycle_done();
    }

    /// A `start` answer we cannot obey: the server holds the pair until its lease expires (120 s).
    pub(super) fn lease_lost(&mut self, pair: &PairKey, why: &str) {
        self.status.counters.leases_lost += 1;
        let msg = format!("not starting ({why}); the server holds this pair for up to 120 s");
        tracing::warn!(agent = %pair.agent_id, project = %pair.project_id, "{msg}");
        self.push_error(Some(&pair.agent_id), Some(&pair.project_id), msg);
    }
}

/// One asker: holds a slot and asks queued pairs in turn. The first answer that needs the loop's decision
/// (start, stop, restart, an error) ends it; `hold` answers are only counted, and it moves on.
async fn asker(
    client: Arc<PmClient>,
    queue: Arc<std::sync::Mutex<VecDeque<PairKey>>>,
    questions: Arc<std::sync::Mutex<Questions>>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut holds = 0;
    let questions = |f: &mut dyn FnMut(&mut Questions)| f(&mut questions.lock().unwrap_or_else(|p| p.into_inner()));
    loop {
        // Popped and marked in flight under the queue's lock: the loop never sees a pair in neither.
        let next = {
            let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
            let next = q.pop_front();
            if let Some(p) = &next {
                questions(&mut |qs| {
                    qs.in_flight.insert(p.clone());
                });
            }
            next
        };
        let Some(pair) = next else {
            let _ = tx.send(Msg::AskerIdle { holds });
            return;
        };
        let result = client.get_agent_action(&pair.agent_id, &pair.project_id).await;
        // `spawn_in_progress` goes to the loop too: it may be a lease of ours an outage orphaned.
        if matches!(&result, Ok(a) if !a.action.needs_decision() && a.reason.as_deref() != Some("spawn_in_progress")) {
            holds += 1;
            let mut watched = false;
            questions(&mut |qs| {
                qs.in_flight.remove(&pair);
                watched = qs.watched.remove(&pair);
            });
            if watched {
                let _ = tx.send(Msg::QuestionDone { pair });
            }
            continue;
        }
        let _ = tx.send(Msg::Asked { pair, result, holds });
        return;
    }
}
