//! Spawning a run: the launch request (pure decisions), context preparation, the child's wait task, and
//! stopping one instance.

use super::eligibility::working_dir_problem;
use super::protocol::{Msg, PairKey};
use super::Supervisor;
use crate::api::*;
use crate::config::ProviderKind;
use crate::launch::{self, LaunchPlan, LaunchRequest};
use crate::pm::{AgentAction, PmClient};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Grace between SIGTERM and SIGKILL of an agent's process group.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(5);

pub(super) struct Instance {
    pub(super) info: InstanceInfo,
    pub(super) plan: LaunchPlan,
    pub(super) stopping: bool,
    /// The user stopped it (Stop, Stop and pause), not the coordinator's own stop or shutdown.
    pub(super) stopped_by_user: bool,
    /// Its row in the run history.
    pub(super) run_id: String,
    /// "claude" | "gemini" | "codex" | "custom": how its log is read.
    pub(super) kind: ProviderKind,
    /// The `start` answer it was spawned for, and when: its lease on the server (see `orphaned` in Runs).
    pub(super) lease: (AgentAction, Instant),
    /// What the log relay parsed of its output, once it exited: the record is finished from it.
    pub(super) summary: Option<Box<crate::runs::Summarizer>>,
}

pub(super) struct Runs {
    pub(super) instances: HashMap<u64, Instance>,
    pub(super) next_id: u64,
    /// Logs of runs being spawned or running: retention never deletes one of these.
    pub(super) live_logs: Arc<std::sync::Mutex<HashSet<PathBuf>>>,
    /// A server-sent command (kick_command, a provider's cli_command) was ignored and reported: once per engine.
    pub(super) reported_server_command: bool,
    /// Leases of runs an outage killed (they may never have authenticated, so the server keeps holding the
    /// pair as `spawn_in_progress` for up to 120 s): the lease is ours, and is used again once it is back.
    pub(super) orphaned: HashMap<PairKey, (AgentAction, Instant)>,
}

impl Default for Runs {
    fn default() -> Runs {
        Runs {
            instances: HashMap::new(),
            next_id: 1,
            live_logs: Default::default(),
            reported_server_command: false,
            orphaned: HashMap::new(),
        }
    }
}

pub(super) struct Spawned {
    info: InstanceInfo,
    plan: LaunchPlan,
    child: launch::RunningChild,
    kind: ProviderKind,
    action: AgentAction,
}

/// How long a finished agent's log copy may take once the agent exited: a background process it left
/// behind (`cmd &`) keeps the pipes open, and the run must not hold its slot forever because of it.
const LOG_DRAIN_GRACE: Duration = Duration::from_secs(2);

impl Supervisor {
    // ----- spawning -----

    pub(super) fn start_spawn(&mut self, pair: PairKey, action: AgentAction, asked_at: Instant) {
        let tx = self.tx.clone();
        if action.kick_command.as_deref().is_some_and(|k| !k.trim().is_empty()) {
            self.report_server_command(Some(&pair), "a start answer with a kick_command");
        }
        let req = match self.launch_request(&pair, &action) {
            Ok(r) => r,
            Err((e, pair_only)) => {
                let _ = tx.send(Msg::Spawned {
                    pair,
                    result: Err(e),
                    asked_at,
                    pair_only,
                });
                return;
            }
        };
        let client = self.client.clone();
        let redactor = self.redactor.clone();
        let retention = self.settings.log_retention.clone();
        let log_root = self.settings.log_root();
        // The new run's log is live from now on: no retention pass (this one or a concurrent spawn's) may
        // delete it, nor the log of any other run being spawned or running.
        let live = self.runs.live_logs.clone();
        live.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.log_path.clone());
        let own_log = req.log_path.clone();
        let lease_action = action.clone();
        let provider_label = req.provider_name.clone();
        // The relay estimates live costs with the history's prices (the same the record uses).
        let prices = self.run_store.as_ref().map_or_else(Default::default, |s| s.prices());
        tokio::spawn(async move {
            let result = async {
                let mut req = req;
                if matches!(req.kind, ProviderKind::Claude | ProviderKind::Gemini) {
                    req.context_dir = prepare_context(client.as_deref(), &req).await;
                }
                if req.kind == ProviderKind::Gemini {
                    // Upstream resolves symlinks (os.path.realpath) for Gemini's includeDirectories.
                    let wd = req.working_dir.clone();
                    req.real_working_dir = tokio::task::spawn_blocking(move || std::fs::canonicalize(wd).ok())
                        .await
                        .ok()
                        .flatten();
                }
                let plan = launch::plan(&req).map_err(|e| e.to_string())?;
                let rec = launch::Recorder {
                    kind: req.kind.as_str().to_string(),
                    prices,
                };
                let child = launch::spawn_recorded(&plan, &req.log_path, &redactor, Some(rec))
                    .await
                    .map_err(|e| e.to_string())?;
                let info = InstanceInfo {
                    id: 0,
                    agent_id: req.agent_id.clone(),
                    project_id: req.project_id.clone(),
                    pid: child.pid,
                    started_at: now_ms(),
                    provider: provider_label,
                    model: req.model.clone(),
                    task_id: req.task_id.clone(),
                    log_path: req.log_path.clone(),
                    ..Default::default()
                };
                // Retention runs after the new log exists, never touching live logs (read at prune time, so a
                // concurrent spawn's new log is included).
                let agent = req.agent_id.clone();
                let live = live.clone();
                tokio::task::spawn_blocking(move || {
                    let keep: Vec<PathBuf> = live.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                    crate::logs::prune(
                        &log_root,
                        &agent,
                        retention.max_files_per_agent,
                        retention.max_mb_per_agent * 1024 * 1024,
                        &keep,
                    )
                });
                Ok(Box::new(Spawned {
                    info,
                    plan,
                    child,
                    kind: req.kind,
                    action: lease_action,
                }))
            }
            .await;
            if result.is_err() {
                live.lock().unwrap_or_else(|p| p.into_inner()).remove(&own_log);
            }
            let _ = tx.send(Msg::Spawned {
                pair,
                result,
                asked_at,
                pair_only: false,
            });
        });
    }

    /// Everything about a start that can be decided without I/O (and the log file, created here).
    /// Errors say whether they concern only this pair (`true`: its project, its task) or the whole agent.
    pub(super) fn launch_request(&self, pair: &PairKey, action: &AgentAction) -> Result<LaunchRequest, (String, bool)> {
        let project = self.cycle.projects.get(&pair.project_id).ok_or_else(|| {
            (
                format!("project {} vanished from the server's list", pair.project_id),
                true,
            )
        })?;
        // Checked before asking too (build_queues); again here, as the directory may vanish in between.
        if let Some(problem) = working_dir_problem(project) {
            return Err((problem, true));
        }
        let wd = PathBuf::from(project.working_directory.trim());
        if let Some(t) = &action.task_id {
            if crate::paths::validate_id(t).is_err() {
                return Err((format!("server sent an unsafe task id {t:?}"), true));
            }
        }
        self.agent_launch_request(pair, action, wd).map_err(|e| (e, false))
    }

    /// Only programs the user configured run; a command from the server is ignored and said so, once.
    pub(super) fn report_server_command(&mut self, pair: Option<&PairKey>, what: &str) {
        if std::mem::replace(&mut self.runs.reported_server_command, true) {
            return;
        }
        let msg = format!("the server sent {what}; ignored: only programs configured locally run (kick_command and server-defined provider commands are never executed)");
        tracing::warn!("{msg}");
        self.push_error(
            pair.map(|p| p.agent_id.as_str()),
            pair.map(|p| p.project_id.as_str()),
            msg,
        );
    }

    pub(super) fn agent_launch_request(
        &self,
        pair: &PairKey,
        action: &AgentAction,
        wd: PathBuf,
    ) -> Result<LaunchRequest, String> {
        let agent = self
            .settings
            .agents
            .get(&pair.agent_id)
            .ok_or_else(|| format!("agent {} is not in settings", pair.agent_id))?;
        // A provider named by the server selects among local providers; an unknown name falls back to the
        // claude configuration, as the upstream coordinator does.
        let from_server = action
            .provider
            .clone()
            .filter(|p| self.settings.providers.contains_key(p));
        let provider_name = agent
            .provider
            .clone()
            .or(from_server)
            .unwrap_or_else(|| "claude".to_string());
        let provider = self.settings.providers.get(&provider_name).cloned().ok_or_else(|| {
            format!(
                "provider {provider_name:?} (asked for agent {}) is not configured; add it under providers in settings",
                pair.agent_id
            )
        })?;
        let kind = self.settings.provider_kind(&provider_name);
        let model = agent
            .model
            .clone()
            .or_else(|| action.model.clone().filter(|m| !m.is_empty()))
            .or_else(|| provider.model.clone());
        let passkey = self
            .secrets
            .passkeys
            .get(&pair.agent_id)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("no passkey for agent {}", pair.agent_id))?;
        let log_path = crate::logs::new_run_log(&self.settings.log_root(), &pair.agent_id).map_err(|e| {
            format!(
                "cannot create a log file under {}: {e}; not starting the agent blind",
                self.settings.log_root().display()
            )
        })?;
        Ok(LaunchRequest {
            agent_id: pair.agent_id.clone(),
            project_id: pair.project_id.clone(),
            working_dir: wd,
            provider_name,
            provider,
            kind,
            model,
            server_address: self.settings.server_address(),
            passkey,
            coordinator_token: self.secrets.token.clone(),
            task_id: action.task_id.clone(),
            debug: self.settings.debug,
            log_path,
            context_dir: None,
            base_prompt: self.remote.base_prompt.clone(),
            real_working_dir: None,
            bridge_command: {
                let (exe, args) = crate::mcp_bridge::command();
                std::iter::once(exe).chain(args).collect()
            },
            as_root: crate::agent_cli::running_as_root(),
        })
    }

    pub(super) fn spawned(
        &mut self,
        pair: PairKey,
        result: Result<Box<Spawned>, String>,
        asked_at: Instant,
        pair_only: bool,
    ) {
        self.cycle.asking.remove(&pair);
        match result {
            Err(e) => {
                let e = self.redactor.redact(&e);
                tracing::error!(agent = %pair.agent_id, project = %pair.project_id, "spawn failed: {e}");
                self.push_error(
                    Some(&pair.agent_id),
                    Some(&pair.project_id),
                    format!("spawn failed: {e}"),
                );
                let _ = self.ev.send(Event::SpawnFailed {
                    agent_id: pair.agent_id.clone(),
                    project_id: pair.project_id.clone(),
                    error: e.clone(),
                });
                // A spawn failure is a failure like any other: back off, never storm. A pair-specific one
                // (this project's working dir, this task id) holds only the pair: the agent's other
                // projects keep running.
                if pair_only {
                    let until = self.hold_pair_after_failure(&pair, &e);
                    tracing::info!(agent = %pair.agent_id, project = %pair.project_id, "holding this pair for {} s", (until - now_ms()) / 1000);
                } else {
                    self.status.agent_errors.insert(pair.agent_id.clone(), e.clone());
                    self.status.local_problems.insert(pair.agent_id.clone(), e.clone());
                }
                let ep = &self.settings.error_protection;
                if !pair_only && ep.enabled {
                    let c = self.holds.cooldowns.record_failure(
                        &pair.agent_id,
                        None,
                        None,
                        ep.default_cooldown_secs,
                        ep.max_cooldown_secs,
                        now_ms(),
                    );
                    let _ = self.ev.send(Event::CooldownStarted {
                        agent_id: pair.agent_id.clone(),
                        until: c.until,
                        reason: c.reason.to_string(),
                    });
                    self.purge_queue(&pair.agent_id);
                }
                // The lease is lost (the server holds the pair until it expires). A local problem goes to
                // the user (status, event), never to the server: a report there is chat work, a paid run.
                self.status.counters.leases_lost += 1;
                self.persist();
            }
            Ok(s) => {
                let id = self.runs.next_id;
                self.runs.next_id += 1;
                let mut info = s.info;
                info.id = id;
                let latency = asked_at.elapsed();
                info.spawn_ms = latency.as_secs_f64() * 1000.0;
                tracing::info!(agent = %info.agent_id, project = %info.project_id, pid = info.pid, log = %info.log_path.display(), "started ({:.1} ms after the decision)", latency.as_secs_f64() * 1000.0);
                self.status.counters.spawns += 1;
                self.status.agent_errors.remove(&info.agent_id);
                self.status.local_problems.remove(&info.agent_id);
                let _ = self.ev.send(Event::InstanceStarted { instance: info.clone() });
                let tx = self.tx.clone();
                let mut child = s.child;
                tokio::spawn(async move {
                    // The relay's live fields go to the loop as messages (it owns the instance's state); the
                    // relay throttles them, so this is at most one message a second per instance.
                    let mut live = child.live.clone();
                    let status = loop {
                        tokio::select! {
                            st = child.child.wait() => break st,
                            moved = live.changed() => match moved {
                                Ok(()) => {
                                    if let Some(progress) = live.borrow_and_update().clone() {
                                        let _ = tx.send(Msg::Progress { id, progress });
                                    }
                                }
                                Err(_) => break child.child.wait().await,
                            },
                        }
                    };
                    // The log is complete once the relay drained the pipes, which needs every holder of the
                    // pipes to close them. A background process the agent left behind (`cmd &`) would keep
                    // the run "running" forever: after a short grace, stop what is left of its process
                    // group (the leader is gone; the group id stays valid while members remain).
                    let mut summary = None;
                    match tokio::time::timeout(LOG_DRAIN_GRACE, &mut child.log_task).await {
                        Ok(done) => summary = done.ok().flatten(),
                        Err(_) => {
                            tracing::warn!(pid = child.pid, "the agent exited but processes it left behind still hold its output; stopping its process group");
                            launch::stop_group(child.pid, Duration::from_secs(2)).await;
                            // Anything that escaped the group (setsid) and still holds the pipes: stop copying
                            // (the record is then read from the log).
                            match tokio::time::timeout(LOG_DRAIN_GRACE, &mut child.log_task).await {
                                Ok(done) => summary = done.ok().flatten(),
                                Err(_) => child.log_task.abort(),
                            }
                        }
                    }
                    let code = status.ok().and_then(|s| {
                        use std::os::unix::process::ExitStatusExt;
                        s.code().or_else(|| s.signal().map(|sig| 128 + sig))
                    });
                    let _ = tx.send(Msg::Exited { id, code, summary });
                });
                let run_id = crate::runs::store::new_run_id();
                info.run_id = self.run_store.as_ref().map(|_| run_id.clone());
                if let Some(store) = &self.run_store {
                    store.run_started(
                        &run_id,
                        crate::runs::RunStart {
                            agent_id: info.agent_id.clone(),
                            project_id: info.project_id.clone(),
                            task_id: info.task_id.clone(),
                            provider: info.provider.clone(),
                            provider_kind: s.kind.as_str().to_string(),
                            model: info.model.clone(),
                            started_at: info.started_at,
                            log_path: Some(info.log_path.clone()),
                        },
                    );
                }
                self.runs.instances.insert(
                    id,
                    Instance {
                        info,
                        plan: s.plan,
                        stopping: false,
                        stopped_by_user: false,
                        run_id,
                        kind: s.kind,
                        lease: (s.action, asked_at),
                        summary: None,
                    },
                );
                if !self.running {
                    // The spawn raced a stop: it must not outlive the coordinator's stop.
                    self.stop_instance(id);
                }
                self.persist();
            }
        }
        self.dispatch();
        self.check_cycle_done();
    }

    /// A running instance's live fields, from its relay: onto the snapshot and into the run history.
    pub(super) fn progress(&mut self, id: u64, p: crate::runs::RunProgress) {
        let Some(inst) = self.runs.instances.get_mut(&id) else {
            return;
        };
        let info = &mut inst.info;
        info.tokens = p.usage;
        info.cost_usd = p.cost_usd;
        info.cost_estimated = p.cost_is_estimate;
        if p.last_activity.is_some() {
            info.last_activity_at = Some(p.last_activity_at);
        }
        info.last_activity = p.last_activity.clone();
        if let Some(store) = &self.run_store {
            store.run_progress(&inst.run_id, p);
        }
    }

    /// The user's Stop: recorded as stopped by the user in the run history.
    pub(super) fn stop_instance_for_user(&mut self, id: u64) {
        if let Some(inst) = self.runs.instances.get_mut(&id) {
            inst.stopped_by_user = true;
        }
        self.stop_instance(id);
    }

    pub(super) fn stop_instance(&mut self, id: u64) {
        if let Some(inst) = self.runs.instances.get_mut(&id) {
            if inst.stopping {
                return;
            }
            inst.stopping = true;
            let pgid = inst.info.pid;
            tokio::spawn(launch::stop_group(pgid, STOP_GRACE));
        }
    }
}

/// Fetch the agent's profile and write its context dir; failures fall back to the plain working dir.
async fn prepare_context(client: Option<&PmClient>, req: &LaunchRequest) -> Option<PathBuf> {
    let client = client?;
    let profile = match client.get_subordinate_profile(&req.agent_id).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(agent = %req.agent_id, "get_subordinate_profile failed ({e}); starting without agent context");
            crate::pm::AgentProfile::default()
        }
    };
    let (wd, agent, kind) = (req.working_dir.clone(), req.agent_id.clone(), req.kind);
    match tokio::task::spawn_blocking(move || crate::context::prepare(&wd, &agent, kind.as_str(), &profile)).await {
        Ok(Ok(dir)) => Some(dir),
        Ok(Err(e)) => {
            tracing::warn!(agent = %req.agent_id, "agent context not written ({e}); using the working directory");
            None
        }
        Err(_) => None,
    }
}
