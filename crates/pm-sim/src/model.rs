//! Server state, the JSON-RPC envelope, caller identification and the coordinator tools (protocol doc §1.5,
//! §2). Agent-side tools and sessions are in `sessions`. Everything runs under one mutex, in memory; each call
//! is microseconds and O(1) in the number of pairs, so the bench can drive thousands of pairs.

use crate::types::*;
use crate::SimConfig;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) struct Pair {
    pub remaining: usize,
    pub next_item: usize,
    /// `spawn_started_at` (§2.4 step 7): set by a `start` answer, cleared only by `authenticate`.
    pub lease: Option<Instant>,
    /// Unread chat messages; `report_agent_error` adds one, a chat session's `get_pending_messages` reads them.
    pub unread: Vec<String>,
    /// The live session token per purpose (both may exist at once).
    pub task_session: Option<String>,
    pub chat_session: Option<String>,
}

impl Pair {
    pub fn task_id(&self, agent: &str, project: &str) -> Option<String> {
        (self.remaining > 0).then(|| format!("tsk_{agent}_{project}_{}", self.next_item))
    }
    pub fn has_task_work(&self) -> bool {
        self.remaining > 0 && self.task_session.is_none()
    }
    pub fn has_chat_work(&self) -> bool {
        !self.unread.is_empty() && self.chat_session.is_none()
    }
}

pub(crate) struct Session {
    pub agent: String,
    pub project: String,
    pub purpose: Purpose,
    pub task: Option<String>,
}

/// An agent's system prompt and its skills as (directory name, zip archive bytes).
pub type Profile = (String, Vec<(String, Vec<u8>)>);

pub(crate) type Key = (String, String);

pub struct Model {
    pub token: String,
    /// AI agents (they have passkeys).
    pub agents: Vec<String>,
    /// Human agents: assigned to projects and listed, but without credentials (§2.3, §4.3).
    pub humans: Vec<String>,
    pub projects: Vec<String>,
    pub passkeys: HashMap<String, String>,
    pub work_dirs: HashMap<String, PathBuf>,
    pub provider: String,
    /// Per-agent provider names (the server may name any: `openai`, `custom`, ...).
    pub agent_providers: HashMap<String, String>,
    pub model_name: Option<String>,
    pub exit_tool: ExitTool,
    pub max_concurrent: Option<usize>,
    pub(crate) pairs: HashMap<Key, Pair>,
    pub(crate) sessions: HashMap<String, Session>,
    /// (execution_log_id, agent, task)
    pub(crate) exec_logs: Vec<(String, String, String)>,
    /// execution_log_id → log_file_path, as the server's execution log row holds it.
    exec_log_paths: BTreeMap<String, String>,
    pub remote_config_fetches: usize,
    /// (pair, pid) of agents that authenticated
    pub(crate) pids: Vec<(Key, u32)>,
    pub violations: Vec<Violation>,
    pub calls: Vec<CallRecord>,
    pub uploads: Vec<UploadRecord>,
    pub behaviors: HashMap<String, AgentBehavior>,
    pub scripts: HashMap<Key, PairScript>,
    pub faults: Faults,
    /// agent id → its profile (`get_subordinate_profile`).
    pub profiles: HashMap<String, Profile>,
    pub base_prompt: Option<String>,
    pub remote_polling: u64,
    pub remote_max_concurrent: usize,
    pub extra_projects: Vec<Value>,
    /// Continuous work (the demo); None = the workload is all there is.
    pub(crate) refill: Option<crate::refill::RefillState>,
    lease: Duration,
    started: Instant,
    pub(crate) n: Counters,
}

/// Monotonic counters behind `SimStats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub completed: usize,
    pub start_answers: usize,
    pub starts_beside_live: usize,
    pub auth_ok: usize,
    pub auth_failed: usize,
    pub auth_no_purpose: usize,
    pub task_sessions: usize,
    pub chat_sessions: usize,
    pub leases_taken: usize,
    pub leases_cleared: usize,
    pub leases_expired: usize,
    pub exit_reports: usize,
    pub log_registrations: usize,
    pub agent_errors: Vec<(String, String, String)>,
    pub peak_live: usize,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn text_result(v: &Value) -> Value {
    // Pretty JSON with sorted keys, like the server (serde_json maps are sorted).
    json!({"content": [{"type": "text", "text": serde_json::to_string_pretty(v).unwrap_or_default()}]})
}

pub fn error_result(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

const COORDINATOR_TOOLS: &[&str] = &[
    "health_check",
    "list_active_projects_with_agents",
    "get_agent_action",
    "register_execution_log_file",
    "report_process_exit",
    "invalidate_session",
    "report_agent_error",
    "list_managed_agents",
    "get_app_settings",
    "get_subordinate_profile",
];

impl Model {
    pub fn new(cfg: &SimConfig, work_root: &Path) -> anyhow::Result<Model> {
        let w = &cfg.workload;
        let agents: Vec<String> = (1..=w.agents).map(|i| format!("agt_{i:02}")).collect();
        let humans: Vec<String> = (1..=cfg.humans).map(|i| format!("hum_{i:02}")).collect();
        let projects: Vec<String> = (1..=w.projects).map(|i| format!("prj_{i:02}")).collect();
        let given: HashMap<String, String> = cfg.passkeys.iter().cloned().collect();
        let passkeys = agents
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    given
                        .get(a)
                        .cloned()
                        .unwrap_or_else(|| format!("pk-{}", crate::random_hex(20))),
                )
            })
            .collect();
        let mut work_dirs = HashMap::new();
        for p in &projects {
            let d = work_root.join(p);
            std::fs::create_dir_all(&d)?;
            work_dirs.insert(p.clone(), d);
        }
        let mut pairs = HashMap::new();
        for a in agents.iter().chain(&humans) {
            for p in &projects {
                pairs.insert(
                    (a.clone(), p.clone()),
                    Pair {
                        remaining: w.items_per_pair,
                        next_item: 1,
                        lease: None,
                        unread: Vec::new(),
                        task_session: None,
                        chat_session: None,
                    },
                );
            }
        }
        Ok(Model {
            token: cfg.coordinator_token.clone(),
            agents,
            humans,
            projects,
            passkeys,
            work_dirs,
            provider: w.provider.clone(),
            agent_providers: HashMap::new(),
            model_name: w.model.clone(),
            exit_tool: cfg.exit_tool,
            max_concurrent: cfg.max_concurrent,
            pairs,
            sessions: HashMap::new(),
            exec_logs: Vec::new(),
            exec_log_paths: BTreeMap::new(),
            remote_config_fetches: 0,
            pids: Vec::new(),
            violations: Vec::new(),
            calls: Vec::new(),
            uploads: Vec::new(),
            behaviors: HashMap::new(),
            scripts: HashMap::new(),
            faults: Faults::default(),
            profiles: HashMap::new(),
            base_prompt: None,
            remote_polling: 10,
            remote_max_concurrent: 3,
            extra_projects: Vec::new(),
            refill: None,
            lease: cfg.lease,
            started: Instant::now(),
            n: Counters::default(),
        })
    }

    pub fn add_items(&mut self, agent: &str, project: &str, n: usize) {
        if let Some(p) = self.pairs.get_mut(&(agent.to_string(), project.to_string())) {
            p.remaining += n;
        }
    }

    /// A chat message to the agent (chat work, like a human writing to it).
    pub fn add_chat_message(&mut self, agent: &str, project: &str, text: &str) {
        if let Some(p) = self.pairs.get_mut(&(agent.to_string(), project.to_string())) {
            p.unread.push(text.to_string());
        }
    }

    pub fn stats(&mut self) -> SimStats {
        let live = self.live_pids();
        let lease = self.lease;
        let (mut outstanding, mut expired_now) = (0, 0);
        for p in self.pairs.values() {
            match p.lease {
                Some(t) if t.elapsed() < lease => outstanding += 1,
                Some(_) => expired_now += 1,
                None => {}
            }
        }
        let n = &self.n;
        SimStats {
            remaining_items: self.pairs.values().map(|p| p.remaining).sum(),
            completed_items: n.completed,
            start_answers: n.start_answers,
            starts_beside_live_process: n.starts_beside_live,
            authentications_ok: n.auth_ok,
            authentications_failed: n.auth_failed,
            authentications_no_purpose: n.auth_no_purpose,
            task_sessions: n.task_sessions,
            chat_sessions: n.chat_sessions,
            leases_taken: n.leases_taken,
            leases_cleared_by_auth: n.leases_cleared,
            leases_expired_unused: n.leases_expired + expired_now,
            leases_outstanding: outstanding,
            exit_reports: n.exit_reports,
            log_registrations: n.log_registrations,
            agent_errors: n.agent_errors.clone(),
            unread_chat_messages: self.pairs.values().map(|p| p.unread.len()).sum(),
            live_processes: live,
            peak_live_processes: n.peak_live,
            calls: self.calls.len(),
            execution_log_paths: self.exec_log_paths.clone(),
            remote_config_fetches: self.remote_config_fetches,
            refilled_items: self.refill.as_ref().map_or(0, |r| r.added),
        }
    }

    pub(crate) fn violation(&mut self, kind: ViolationKind, detail: String) {
        self.violations.push(Violation {
            kind,
            detail,
            at_ms: now_ms(),
        });
    }

    pub(crate) fn live_pids(&mut self) -> usize {
        self.pids.retain(|(_, pid)| pid_alive(*pid));
        self.pids.len()
    }

    /// One JSON-RPC request → the response (None for notifications).
    pub fn handle(&mut self, req: &Value, transport: &'static str) -> Option<Value> {
        let id = req.get("id").cloned();
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        let reply = |result: Value| Some(json!({"jsonrpc": "2.0", "id": id.clone(), "result": result}));
        let err = |code: i64, msg: String| {
            Some(json!({"jsonrpc": "2.0", "id": id.clone(), "error": {"code": code, "message": msg}}))
        };
        id.as_ref()?; // a notification gets no reply
        match method {
            "initialize" => reply(json!({
                "protocolVersion": "2024-11-05",
                "serverInfo": {"name": "mcp-server-pm", "version": "0.2.0"},
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}}
            })),
            "tools/list" => reply(json!({"tools": crate::tools::catalog()})),
            "resources/list" => reply(json!({"resources": []})),
            "prompts/list" => reply(json!({"prompts": []})),
            "tools/call" => {
                let Some(name) = req.pointer("/params/name").and_then(Value::as_str) else {
                    return err(-32602, "Invalid params".into());
                };
                let args = req
                    .pointer("/params/arguments")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                self.record(name, &args, transport);
                reply(self.tool(name, &args))
            }
            other => err(-32601, format!("Method not found: {other}")),
        }
    }

    fn record(&mut self, tool: &str, args: &Map<String, Value>, transport: &'static str) {
        let mut a = args.clone();
        for k in ["coordinator_token", "passkey", "session_token"] {
            if a.contains_key(k) {
                a.insert(k.into(), "<redacted>".into());
            }
        }
        self.calls.push(CallRecord {
            tool: tool.into(),
            args: Value::Object(a),
            at_ms: now_ms(),
            at_us: self.started.elapsed().as_micros() as u64,
            transport,
        });
    }

    fn tool(&mut self, name: &str, args: &Map<String, Value>) -> Value {
        let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        // Caller identification (§1.5): a coordinator_token, whatever the tool, must be the right one.
        let coordinator = match args.get("coordinator_token").and_then(Value::as_str) {
            Some(t) if t != self.token => {
                self.violation(
                    ViolationKind::BadCoordinatorToken,
                    format!("{name} with a wrong coordinator token"),
                );
                return error_result(
                    "Error: Invalid coordinator token. Set MCP_COORDINATOR_TOKEN environment variable.",
                );
            }
            Some(_) => true,
            None => false,
        };
        if COORDINATOR_TOOLS.contains(&name) {
            if !coordinator {
                return error_result(&format!(
                    "Authorization Error: Tool '{name}' requires Coordinator privilege"
                ));
            }
        } else if crate::sessions::AGENT_TOOLS.contains(&name) {
            if !self.sessions.contains_key(&s("session_token")) {
                return error_result(&format!(
                    "Authorization Error: Tool '{name}' requires authentication. Call authenticate first."
                ));
            }
        } else if name != "authenticate" && name != "help" {
            self.violation(ViolationKind::UnknownTool, name.to_string());
            return error_result(&format!(
                "Authorization Error: Tool '{name}' is not registered in authorization system"
            ));
        }
        let r = match name {
            "health_check" => Ok(
                json!({"success": true, "status": "ok", "agent_count": self.agents.len() + self.humans.len(), "project_count": self.projects.len()}),
            ),
            "get_app_settings" => Ok(
                json!({"agent_base_prompt": self.base_prompt, "pending_purpose_ttl_seconds": 300, "allow_remote_access": false}),
            ),
            "list_managed_agents" => Ok(json!({"success": true, "agent_ids": self.agents})),
            "list_active_projects_with_agents" => Ok(self.list_projects()),
            "get_agent_action" => self.get_agent_action(&s("agent_id"), &s("project_id")),
            "register_execution_log_file" => Ok(self.register_log(&s("agent_id"), &s("task_id"), &s("log_file_path"))),
            "report_agent_error" => Ok(self.report_agent_error(&s("agent_id"), &s("project_id"), &s("error_message"))),
            "report_process_exit" if self.exit_tool == ExitTool::Legacy => Err(
                "Authorization Error: Tool 'report_process_exit' is not registered in authorization system".to_string(),
            ),
            "invalidate_session" if self.exit_tool == ExitTool::Current => Err(
                "Authorization Error: Tool 'invalidate_session' is not registered in authorization system".to_string(),
            ),
            "report_process_exit" | "invalidate_session" => {
                let remaining = args.get("remaining_processes").and_then(Value::as_u64).unwrap_or(0);
                Ok(self.process_exit(&s("agent_id"), &s("project_id"), remaining))
            }
            "get_subordinate_profile" => self.profile(&s("agent_id")),
            "authenticate" => Ok(self.authenticate(
                &s("agent_id"),
                &s("passkey"),
                &s("project_id"),
                args.get("pid").and_then(Value::as_u64),
            )),
            "help" => Ok(json!({"tools": crate::tools::names()})),
            _ => self.agent_tool(name, args),
        };
        match r {
            Ok(v) => text_result(&v),
            Err(e) => error_result(&e),
        }
    }

    fn all_agents(&self) -> Vec<String> {
        self.agents.iter().chain(&self.humans).cloned().collect()
    }

    fn list_projects(&self) -> Value {
        let agents = self.all_agents();
        let mut projects: Vec<Value> = self
            .projects
            .iter()
            .map(|p| json!({"project_id": p, "project_name": format!("Project {p}"), "working_directory": self.work_dirs[p].display().to_string(), "agents": agents}))
            .collect();
        projects.extend(self.extra_projects.iter().cloned());
        json!({"projects": projects})
    }

    pub(crate) fn check_ids(&self, agent: &str, project: &str) -> Result<(), String> {
        if !self.agents.iter().chain(&self.humans).any(|a| a == agent) {
            return Err(format!("Error: Agent not found: {agent}"));
        }
        if !self.projects.iter().any(|p| p == project) {
            return Err(format!("Error: Project not found: {project}"));
        }
        Ok(())
    }

    /// `checkSpawnInProgress`: a lease older than the limit no longer counts (and is counted as wasted).
    fn spawn_in_progress(&mut self, key: &Key) -> bool {
        let limit = self.lease;
        let pair = self.pairs.get_mut(key).expect("pair exists");
        match pair.lease {
            Some(t) if t.elapsed() < limit => true,
            Some(_) => {
                pair.lease = None;
                self.n.leases_expired += 1;
                false
            }
            None => false,
        }
    }

    /// §2.4 steps 6-9 (no pause, blocked or manager states in the simulator).
    fn get_agent_action(&mut self, agent: &str, project: &str) -> Result<Value, String> {
        if agent.is_empty() || project.is_empty() {
            return Err("Error: Missing required arguments: agent_id, project_id".into());
        }
        self.check_ids(agent, project)?;
        let key = (agent.to_string(), project.to_string());
        if let Some(PairScript::Action(v)) = self.scripts.get(&key) {
            return Ok(v.clone());
        }
        let spawning = self.spawn_in_progress(&key);
        let pair = &self.pairs[&key];
        let (task_work, chat_work) = (pair.has_task_work(), pair.has_chat_work());
        if (task_work || chat_work) && !spawning {
            let task_id = pair.task_id(agent, project);
            self.pairs.get_mut(&key).expect("pair").lease = Some(Instant::now());
            self.n.leases_taken += 1;
            self.n.start_answers += 1;
            self.live_pids();
            if self.pids.iter().any(|(k, _)| *k == key) {
                self.n.starts_beside_live += 1;
            }
            let provider = self.agent_providers.get(agent).unwrap_or(&self.provider).clone();
            let mut v = json!({"action": "start", "reason": if task_work {"has_task_work"} else {"has_chat_work"}, "provider": provider});
            v["model"] = json!(self.model_name.clone().unwrap_or_else(|| "claude-sonnet-4-5".into()));
            if let Some(t) = task_id {
                v["task_id"] = json!(t);
            }
            return Ok(v);
        }
        Ok(json!({"action": "hold", "reason": if spawning {"spawn_in_progress"} else {"no_work"}}))
    }

    /// §2.8: a system chat message in the agent's chat, unread, hence chat work.
    fn report_agent_error(&mut self, agent: &str, project: &str, message: &str) -> Value {
        let msg_id = format!("err_{}", crate::random_hex(12));
        self.n.agent_errors.push((agent.into(), project.into(), message.into()));
        self.add_chat_message(agent, project, &format!("⚠️ エージェントエラー:\n{message}"));
        json!({"success": true, "agent_id": agent, "project_id": project, "message_id": msg_id})
    }

    /// §2.6: all sessions go with the last process; otherwise only a detectable orphan does.
    fn process_exit(&mut self, agent: &str, project: &str, remaining: u64) -> Value {
        self.n.exit_reports += 1;
        let key = (agent.to_string(), project.to_string());
        let base = json!({"success": true, "agent_id": agent, "project_id": project});
        let with = |mut v: Value, extra: Value| {
            for (k, x) in extra.as_object().cloned().unwrap_or_default() {
                v[k] = x;
            }
            v
        };
        let Some(pair) = self.pairs.get(&key) else {
            return with(
                base,
                json!({"action": "invalidated_all", "deleted_agent_sessions": 0, "ended_workflow_sessions": 0, "ended_conversations": 0}),
            );
        };
        let (task, chat) = (pair.task_session.clone(), pair.chat_session.clone());
        if remaining == 0 {
            let deleted = [task, chat]
                .into_iter()
                .flatten()
                .filter(|t| self.end_session(t))
                .count();
            return with(
                base,
                json!({"action": "invalidated_all", "deleted_agent_sessions": deleted, "ended_workflow_sessions": 0, "ended_conversations": 0}),
            );
        }
        let (Some(task), Some(chat)) = (task, chat) else {
            return with(base, json!({"action": "none", "reason": "no_orphan_detected"}));
        };
        let (raw_task, raw_chat) = (pair.remaining > 0, !pair.unread.is_empty());
        let orphan = if raw_task {
            Some(("chat", chat))
        } else if raw_chat {
            Some(("task", task))
        } else {
            None
        };
        match orphan {
            Some((purpose, token)) => {
                self.end_session(&token);
                with(
                    base,
                    json!({"action": "deleted_orphan", "deleted_purpose": purpose, "deleted_session_id": token}),
                )
            }
            None => with(base, json!({"action": "none", "reason": "cannot_determine_orphan"})),
        }
    }

    fn register_log(&mut self, agent: &str, task: &str, path: &str) -> Value {
        match self.exec_logs.iter().rev().find(|(_, a, t)| a == agent && t == task) {
            Some((id, _, _)) => {
                self.n.log_registrations += 1;
                self.exec_log_paths.insert(id.clone(), path.to_string());
                json!({"success": true, "execution_log_id": id, "task_id": task, "agent_id": agent, "log_file_path": path})
            }
            None => json!({"success": false, "error": "execution_log_not_found"}),
        }
    }

    fn profile(&self, agent: &str) -> Result<Value, String> {
        let human = self.humans.iter().any(|h| h == agent);
        if !human && !self.agents.iter().any(|a| a == agent) {
            return Err(format!("Error: Agent not found: {agent}"));
        }
        use base64::Engine;
        let (prompt, skills) = self.profiles.get(agent).cloned().unwrap_or_default();
        let skills: Vec<Value> = skills
            .iter()
            .enumerate()
            .map(|(i, (dir, zip))| json!({"id": format!("skl_{i}"), "name": dir, "directory_name": dir, "archive_base64": base64::engine::general_purpose::STANDARD.encode(zip)}))
            .collect();
        Ok(
            json!({"id": agent, "name": format!("Agent {agent}"), "role": "Developer", "type": if human {"human"} else {"ai"}, "hierarchy_type": "worker", "status": "active", "system_prompt": prompt, "parent_agent_id": null, "ai_type": null, "kick_method": "cli", "max_parallel_tasks": 1, "skills": skills}),
        )
    }

    /// The upload endpoint stored a log: set the execution log's `log_file_path` (protocol doc §4.2; a
    /// missing row is silently ignored, as the real server does).
    pub fn set_log_file_path(&mut self, execution_log_id: &str, path: &str) {
        if self.exec_logs.iter().any(|(id, _, _)| id == execution_log_id) {
            self.exec_log_paths
                .insert(execution_log_id.to_string(), path.to_string());
        }
    }

    /// `GET /api/coordinator/config` body. Without a root every agent is listed, humans included (the
    /// server never checks the type); Swift's encoder omits nil members, so a human is `{}`.
    pub fn remote_config(&self, root: Option<&str>) -> Value {
        let listed = if root.is_some() {
            self.agents.clone()
        } else {
            self.all_agents()
        };
        let agents: Map<String, Value> = listed
            .iter()
            .map(|a| {
                (
                    a.clone(),
                    self.passkeys.get(a).map_or(json!({}), |k| json!({"passkey": k})),
                )
            })
            .collect();
        let mut v = json!({
            "coordinator_token": self.token, "polling_interval": self.remote_polling,
            "max_concurrent": self.remote_max_concurrent, "agents": agents,
            "ai_providers": {
                "claude": {"cli_command": "claude", "cli_args": ["--dangerously-skip-permissions", "--max-turns", "50", "--verbose"]},
                "gemini": {"cli_command": "gemini", "cli_args": ["-y", "-d"]}
            },
        });
        if let Some(r) = root {
            v["root_agent_id"] = json!(r);
        }
        if let Some(p) = &self.base_prompt {
            v["agent_base_prompt"] = json!(p);
        }
        v
    }

    pub fn project_dir(&self, project: &str) -> Option<PathBuf> {
        self.work_dirs.get(project).cloned()
    }
}

/// Alive and not a zombie (an exited child not yet reaped by its parent is not running).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, r)| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok() && !cfg!(target_os = "linux")
        }
    }
}
