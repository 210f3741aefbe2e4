//! Server state and tools. Everything runs under one mutex, in memory; each call is microseconds.

use crate::SimConfig;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};


#[derive(Debug, Clone)]
pub struct Workload {
    pub projects: usize,
    pub agents: usize,
    pub items_per_pair: usize,
    /// What `get_agent_action` names as provider.
    pub provider: String,
    pub model: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExitTool {
    /// Only `report_process_exit` (current server).
    Current,
    /// Only `invalidate_session` (0.1.x-era server).
    Legacy,
    Both,
}

/// Told to fake agents in the `authenticate` reply (`sim_behavior`).
#[derive(Debug, Clone, PartialEq)]
pub enum AgentBehavior {
    Succeed,
    Fail { message: String },
    Quota { message: String },
    Hang,
    SpawnGrandchild,
    WorkMs(u64),
    /// Prints its passkey (a misbehaving agent): the coordinator must mask it in the log.
    LeakPasskey,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PairScript {
    Default,
    /// Returned verbatim by `get_agent_action` for the pair.
    Action(Value),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay every reply by this much.
    pub delay_ms: u64,
    /// Read requests and never answer (the real server does this for lines it cannot parse).
    pub drop_replies: bool,
    /// Answer with bytes that are not JSON.
    pub garbage_replies: bool,
    /// Write half a reply and close the connection.
    pub close_mid_reply: bool,
    /// The next N uploads get HTTP 500.
    pub upload_failures: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ViolationKind {
    DoubleSpawn,
    MaxConcurrentExceeded,
    BadCoordinatorToken,
    BadPasskey,
    UnknownTool,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    pub detail: String,
    pub at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    pub tool: String,
    /// Arguments with secret values replaced by "<redacted>".
    pub args: Value,
    pub at_ms: i64,
    /// Microseconds since the simulator started (finer than `at_ms`, for benchmarks).
    pub at_us: u64,
    pub transport: &'static str,
}

#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub fields: BTreeMap<String, String>,
    pub file_name: Option<String>,
    pub bytes: usize,
    pub stored_at: Option<PathBuf>,
    /// The `log_file` part's Content-Type.
    pub content_type: Option<String>,
    /// The uploaded bytes themselves.
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub remaining_items: usize,
    pub completed_items: usize,
    pub start_answers: usize,
    pub authentications_ok: usize,
    pub authentications_failed: usize,
    pub exit_reports: usize,
    pub log_registrations: usize,
    /// (agent, project, message)
    pub agent_errors: Vec<(String, String, String)>,
    pub live_processes: usize,
    pub peak_live_processes: usize,
    pub calls: usize,
    /// execution_log_id → its `log_file_path` (set by an upload or `register_execution_log_file`).
    pub execution_log_paths: BTreeMap<String, String>,
    /// `GET /api/coordinator/config` requests received.
    pub remote_config_fetches: usize,
}

struct Pair {
    remaining: usize,
    next_item: usize,
    lease: Option<Instant>,
}

struct Session {
    agent: String,
    project: String,
    task: Option<String>,
}

/// An agent's system prompt and its skills as (directory name, zip archive bytes).
pub type Profile = (String, Vec<(String, Vec<u8>)>);

pub struct Model {
    pub token: String,
    pub agents: Vec<String>,
    pub projects: Vec<String>,
    pub passkeys: HashMap<String, String>,
    pub work_dirs: HashMap<String, PathBuf>,
    pub provider: String,
    pub model_name: Option<String>,
    pub exit_tool: ExitTool,
    pub max_concurrent: Option<usize>,
    pairs: HashMap<(String, String), Pair>,
    sessions: HashMap<String, Session>,
    /// execution_log_id → (agent, task)
    exec_logs: Vec<(String, String, String)>,
    /// execution_log_id → log_file_path, as the server's execution log row holds it.
    exec_log_paths: BTreeMap<String, String>,
    pub remote_config_fetches: usize,
    /// (pair, pid) of agents that authenticated
    pids: Vec<((String, String), u32)>,
    pub violations: Vec<Violation>,
    pub calls: Vec<CallRecord>,
    pub uploads: Vec<UploadRecord>,
    pub behaviors: HashMap<String, AgentBehavior>,
    pub scripts: HashMap<(String, String), PairScript>,
    pub faults: Faults,
    /// agent id → its profile (`get_subordinate_profile`).
    pub profiles: HashMap<String, Profile>,
    pub base_prompt: Option<String>,
    pub remote_polling: u64,
    pub remote_max_concurrent: usize,
    pub extra_projects: Vec<Value>,
    /// `spawn_started_at` lease (protocol doc §2.4).
    lease: Duration,
    started: Instant,
    completed: usize,
    start_answers: usize,
    auth_ok: usize,
    auth_failed: usize,
    exit_reports: usize,
    log_registrations: usize,
    agent_errors: Vec<(String, String, String)>,
    peak_live: usize,
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
const AGENT_TOOLS: &[&str] = &[
    "get_next_action",
    "get_my_task",
    "report_model",
    "report_execution_start",
    "report_execution_complete",
    "report_completed",
    "logout",
    "get_my_profile",
];

impl Model {
    pub fn new(cfg: &SimConfig, work_root: &Path) -> anyhow::Result<Model> {
        let w = &cfg.workload;
        let agents: Vec<String> = (1..=w.agents).map(|i| format!("agt_{i:02}")).collect();
        let projects: Vec<String> = (1..=w.projects).map(|i| format!("prj_{i:02}")).collect();
        let given: HashMap<String, String> = cfg.passkeys.iter().cloned().collect();
        let passkeys = agents.iter().map(|a| (a.clone(), given.get(a).cloned().unwrap_or_else(|| format!("pk-{}", crate::random_hex(20))))).collect();
        let mut work_dirs = HashMap::new();
        for p in &projects {
            let d = work_root.join(p);
            std::fs::create_dir_all(&d)?;
            work_dirs.insert(p.clone(), d);
        }
        let mut pairs = HashMap::new();
        for a in &agents {
            for p in &projects {
                pairs.insert((a.clone(), p.clone()), Pair { remaining: w.items_per_pair, next_item: 1, lease: None });
            }
        }
        Ok(Model {
            token: cfg.coordinator_token.clone(),
            agents,
            projects,
            passkeys,
            work_dirs,
            provider: w.provider.clone(),
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
            lease: cfg.lease,
            started: Instant::now(),
            completed: 0,
            start_answers: 0,
            auth_ok: 0,
            auth_failed: 0,
            exit_reports: 0,
            log_registrations: 0,
            agent_errors: Vec::new(),
            peak_live: 0,
        })
    }

    pub fn add_items(&mut self, agent: &str, project: &str, n: usize) {
        if let Some(p) = self.pairs.get_mut(&(agent.to_string(), project.to_string())) {
            p.remaining += n;
        }
    }

    pub fn stats(&mut self) -> SimStats {
        let live = self.live_pids();
        SimStats {
            remaining_items: self.pairs.values().map(|p| p.remaining).sum(),
            completed_items: self.completed,
            start_answers: self.start_answers,
            authentications_ok: self.auth_ok,
            authentications_failed: self.auth_failed,
            exit_reports: self.exit_reports,
            log_registrations: self.log_registrations,
            agent_errors: self.agent_errors.clone(),
            live_processes: live,
            peak_live_processes: self.peak_live,
            calls: self.calls.len(),
            execution_log_paths: self.exec_log_paths.clone(),
            remote_config_fetches: self.remote_config_fetches,
        }
    }

    fn violation(&mut self, kind: ViolationKind, detail: String) {
        self.violations.push(Violation { kind, detail, at_ms: now_ms() });
    }

    fn live_pids(&mut self) -> usize {
        self.pids.retain(|(_, pid)| pid_alive(*pid));
        self.pids.len()
    }

    /// One JSON-RPC request → the response (None for notifications).
    pub fn handle(&mut self, req: &Value, transport: &'static str) -> Option<Value> {
        let id = req.get("id").cloned();
        let method = req.get("method").and_then(Value::as_str).unwrap_or("");
        let reply = |result: Value| Some(json!({"jsonrpc": "2.0", "id": id.clone(), "result": result}));
        let err = |code: i64, msg: String| Some(json!({"jsonrpc": "2.0", "id": id.clone(), "error": {"code": code, "message": msg}}));
        id.as_ref()?; // a notification gets no reply
        match method {
            "initialize" => reply(json!({
                "protocolVersion": "2024-11-05",
                "serverInfo": {"name": "mcp-server-pm", "version": "0.2.0"},
                "capabilities": {"tools": {}, "resources": {}, "prompts": {}}
            })),
            "tools/list" => {
                let tools: Vec<Value> = COORDINATOR_TOOLS.iter().chain(AGENT_TOOLS).chain(&["authenticate", "help"]).map(|t| json!({"name": t, "description": t, "inputSchema": {"type": "object"}})).collect();
                reply(json!({"tools": tools}))
            }
            "resources/list" => reply(json!({"resources": []})),
            "prompts/list" => reply(json!({"prompts": []})),
            "tools/call" => {
                let Some(name) = req.pointer("/params/name").and_then(Value::as_str) else {
                    return err(-32602, "Invalid params".into());
                };
                let args = req.pointer("/params/arguments").and_then(Value::as_object).cloned().unwrap_or_default();
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
        self.calls.push(CallRecord { tool: tool.into(), args: Value::Object(a), at_ms: now_ms(), at_us: self.started.elapsed().as_micros() as u64, transport });
    }

    fn tool(&mut self, name: &str, args: &Map<String, Value>) -> Value {
        let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        if COORDINATOR_TOOLS.contains(&name) {
            match args.get("coordinator_token").and_then(Value::as_str) {
                None => return error_result(&format!("Authorization Error: Tool '{name}' requires Coordinator privilege")),
                Some(t) if t != self.token => {
                    self.violation(ViolationKind::BadCoordinatorToken, format!("{name} with a wrong coordinator token"));
                    return error_result("Error: Invalid coordinator token. Set MCP_COORDINATOR_TOKEN environment variable.");
                }
                Some(_) => {}
            }
        } else if AGENT_TOOLS.contains(&name) {
            if !self.sessions.contains_key(&s("session_token")) {
                return error_result(&format!("Authorization Error: Tool '{name}' requires authentication. Call authenticate first."));
            }
        } else if name != "authenticate" && name != "help" {
            self.violation(ViolationKind::UnknownTool, name.to_string());
            return error_result(&format!("Authorization Error: Tool '{name}' is not registered in authorization system"));
        }
        let r = match name {
            "health_check" => Ok(json!({"success": true, "status": "ok", "agent_count": self.agents.len(), "project_count": self.projects.len()})),
            "get_app_settings" => Ok(json!({"agent_base_prompt": self.base_prompt, "pending_purpose_ttl_seconds": 300, "allow_remote_access": false})),
            "list_managed_agents" => Ok(json!({"success": true, "agent_ids": self.agents})),
            "list_active_projects_with_agents" => Ok(self.list_projects()),
            "get_agent_action" => self.get_agent_action(&s("agent_id"), &s("project_id")),
            "register_execution_log_file" => Ok(self.register_log(&s("agent_id"), &s("task_id"), &s("log_file_path"))),
            "report_agent_error" => {
                let msg_id = format!("err_{}", crate::random_hex(12));
                self.agent_errors.push((s("agent_id"), s("project_id"), s("error_message")));
                Ok(json!({"success": true, "agent_id": s("agent_id"), "project_id": s("project_id"), "message_id": msg_id}))
            }
            "report_process_exit" if self.exit_tool == ExitTool::Legacy => Err("Authorization Error: Tool 'report_process_exit' is not registered in authorization system".to_string()),
            "invalidate_session" if self.exit_tool == ExitTool::Current => Err("Authorization Error: Tool 'invalidate_session' is not registered in authorization system".to_string()),
            "report_process_exit" | "invalidate_session" => {
                let remaining = args.get("remaining_processes").and_then(Value::as_u64).unwrap_or(0);
                let (a, p) = (s("agent_id"), s("project_id"));
                self.exit_reports += 1;
                let mut deleted = 0;
                if remaining == 0 {
                    let before = self.sessions.len();
                    self.sessions.retain(|_, x| !(x.agent == a && x.project == p));
                    deleted = before - self.sessions.len();
                }
                Ok(json!({"success": true, "agent_id": a, "project_id": p, "action": if remaining == 0 {"invalidated_all"} else {"none"}, "deleted_agent_sessions": deleted, "ended_workflow_sessions": 0, "ended_conversations": 0}))
            }
            "get_subordinate_profile" => self.profile(&s("agent_id")),
            "authenticate" => Ok(self.authenticate(&s("agent_id"), &s("passkey"), &s("project_id"), args.get("pid").and_then(Value::as_u64))),
            "help" => Ok(json!({"text": "AI Agent PM simulator"})),
            _ => self.agent_tool(name, args),
        };
        match r {
            Ok(v) => text_result(&v),
            Err(e) => error_result(&e),
        }
    }

    fn list_projects(&self) -> Value {
        let mut projects: Vec<Value> = self
            .projects
            .iter()
            .map(|p| json!({"project_id": p, "project_name": format!("Project {p}"), "working_directory": self.work_dirs[p].display().to_string(), "agents": self.agents}))
            .collect();
        projects.extend(self.extra_projects.iter().cloned());
        json!({"projects": projects})
    }

    fn check_ids(&self, agent: &str, project: &str) -> Result<(), String> {
        if !self.agents.iter().any(|a| a == agent) {
            return Err(format!("Error: Agent not found: {agent}"));
        }
        if !self.projects.iter().any(|p| p == project) {
            return Err(format!("Error: Project not found: {project}"));
        }
        Ok(())
    }

    fn get_agent_action(&mut self, agent: &str, project: &str) -> Result<Value, String> {
        if agent.is_empty() || project.is_empty() {
            return Err("Error: Missing required arguments: agent_id, project_id".into());
        }
        self.check_ids(agent, project)?;
        let key = (agent.to_string(), project.to_string());
        if let Some(PairScript::Action(v)) = self.scripts.get(&key) {
            return Ok(v.clone());
        }
        let has_session = self.sessions.values().any(|x| x.agent == agent && x.project == project);
        let pair = self.pairs.get_mut(&key).expect("pair exists");
        let has_work = pair.remaining > 0 && !has_session;
        let spawning = pair.lease.is_some_and(|t| t.elapsed() < self.lease);
        if has_work && spawning {
            return Ok(json!({"action": "hold", "reason": "spawn_in_progress"}));
        }
        if has_work {
            pair.lease = Some(Instant::now());
            let task = format!("tsk_{agent}_{project}_{}", pair.next_item);
            self.start_answers += 1;
            let mut v = json!({"action": "start", "reason": "has_task_work", "provider": self.provider, "task_id": task});
            v["model"] = json!(self.model_name.clone().unwrap_or_else(|| "claude-sonnet-4-5".into()));
            return Ok(v);
        }
        Ok(json!({"action": "hold", "reason": "no_work"}))
    }

    fn authenticate(&mut self, agent: &str, passkey: &str, project: &str, pid: Option<u64>) -> Value {
        let key = (agent.to_string(), project.to_string());
        // Success or failure, authenticate ends the spawn lease.
        if let Some(p) = self.pairs.get_mut(&key) {
            p.lease = None;
        }
        if self.check_ids(agent, project).is_err() {
            self.auth_failed += 1;
            return json!({"success": false, "error": "Project not found", "action": "exit", "instruction": "exit"});
        }
        if self.passkeys.get(agent).map(String::as_str) != Some(passkey) {
            self.auth_failed += 1;
            self.violation(ViolationKind::BadPasskey, format!("{agent} authenticated with a wrong passkey"));
            return json!({"success": false, "error": "Invalid credentials", "action": "exit", "instruction": "Authentication failed. Exit."});
        }
        self.auth_ok += 1;
        if let Some(pid) = pid.map(|p| p as u32) {
            self.live_pids();
            if let Some((_, other)) = self.pids.iter().find(|(k, p)| *k == key && *p != pid) {
                let other = *other;
                self.violation(ViolationKind::DoubleSpawn, format!("{agent}/{project}: pid {pid} started while pid {other} still runs"));
            }
            self.pids.push((key.clone(), pid));
            let live = self.pids.len();
            self.peak_live = self.peak_live.max(live);
            if let Some(max) = self.max_concurrent {
                if live > max {
                    self.violation(ViolationKind::MaxConcurrentExceeded, format!("{live} agent processes alive, max_concurrent {max}"));
                }
            }
        }
        let pair = &self.pairs[&key];
        let task = (pair.remaining > 0).then(|| format!("tsk_{agent}_{project}_{}", pair.next_item));
        let token = format!("sess_{}", crate::random_hex(24));
        self.sessions.insert(token.clone(), Session { agent: agent.into(), project: project.into(), task });
        let behavior = match self.behaviors.get(agent).cloned().unwrap_or(AgentBehavior::Succeed) {
            AgentBehavior::Succeed => json!({"mode": "succeed"}),
            AgentBehavior::Fail { message } => json!({"mode": "fail", "message": message}),
            AgentBehavior::Quota { message } => json!({"mode": "quota", "message": message}),
            AgentBehavior::Hang => json!({"mode": "hang"}),
            AgentBehavior::SpawnGrandchild => json!({"mode": "grandchild"}),
            AgentBehavior::WorkMs(ms) => json!({"mode": "succeed", "work_ms": ms}),
            AgentBehavior::LeakPasskey => json!({"mode": "leak"}),
        };
        json!({
            "success": true, "session_token": token, "expires_in": 3600, "agent_name": format!("Agent {agent}"),
            "instruction": "Call get_next_action.", "working_directory": self.work_dirs[project].display().to_string(),
            "sim_behavior": behavior
        })
    }

    fn agent_tool(&mut self, name: &str, args: &Map<String, Value>) -> Result<Value, String> {
        let token = args.get("session_token").and_then(Value::as_str).unwrap_or("").to_string();
        let (agent, project, task) = {
            let s = &self.sessions[&token];
            (s.agent.clone(), s.project.clone(), s.task.clone())
        };
        match name {
            "get_my_task" => Ok(match &task {
                Some(t) => json!({"success": true, "task": {"id": t, "title": format!("Work item {t}"), "status": "in_progress", "description": "Simulated work"}}),
                None => json!({"success": true, "task": null}),
            }),
            "get_next_action" => Ok(match &task {
                Some(t) => json!({"action": "execute", "instruction": format!("Execute task {t}"), "task_id": t}),
                None => json!({"action": "exit", "instruction": "No work. Logout and exit."}),
            }),
            "report_model" | "get_my_profile" => Ok(json!({"success": true})),
            "report_execution_start" => {
                let t = args.get("task_id").and_then(Value::as_str).map(str::to_string).or(task).ok_or("Error: no task")?;
                let id = format!("exl_{}", crate::random_hex(12));
                self.exec_logs.push((id.clone(), agent.clone(), t.clone()));
                Ok(json!({"success": true, "execution_log_id": id, "task_id": t, "agent_id": agent, "status": "running", "started_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}))
            }
            "report_execution_complete" => Ok(json!({"success": true})),
            "report_completed" => {
                let ok = args.get("result").and_then(Value::as_str) == Some("success");
                if ok && task.is_some() {
                    let p = self.pairs.get_mut(&(agent.clone(), project.clone())).expect("pair");
                    if p.remaining > 0 {
                        p.remaining -= 1;
                        p.next_item += 1;
                        self.completed += 1;
                    }
                    if let Some(s) = self.sessions.get_mut(&token) {
                        s.task = None;
                    }
                }
                Ok(json!({"success": true}))
            }
            "logout" => {
                self.sessions.remove(&token);
                Ok(json!({"success": true}))
            }
            _ => Err(format!("Authorization Error: Tool '{name}' is not registered in authorization system")),
        }
    }

    fn register_log(&mut self, agent: &str, task: &str, path: &str) -> Value {
        match self.exec_logs.iter().rev().find(|(_, a, t)| a == agent && t == task) {
            Some((id, _, _)) => {
                self.log_registrations += 1;
                self.exec_log_paths.insert(id.clone(), path.to_string());
                json!({"success": true, "execution_log_id": id, "task_id": task, "agent_id": agent, "log_file_path": path})
            }
            None => json!({"success": false, "error": "execution_log_not_found"}),
        }
    }

    fn profile(&self, agent: &str) -> Result<Value, String> {
        if !self.agents.iter().any(|a| a == agent) {
            return Err(format!("Error: Agent not found: {agent}"));
        }
        use base64::Engine;
        let (prompt, skills) = self.profiles.get(agent).cloned().unwrap_or_default();
        let skills: Vec<Value> = skills
            .iter()
            .enumerate()
            .map(|(i, (dir, zip))| json!({"id": format!("skl_{i}"), "name": dir, "directory_name": dir, "archive_base64": base64::engine::general_purpose::STANDARD.encode(zip)}))
            .collect();
        Ok(json!({"id": agent, "name": format!("Agent {agent}"), "role": "Developer", "type": "ai", "hierarchy_type": "worker", "status": "active", "system_prompt": prompt, "parent_agent_id": null, "ai_type": null, "kick_method": "cli", "max_parallel_tasks": 1, "skills": skills}))
    }

    /// The upload endpoint stored a log: set the execution log's `log_file_path` (protocol doc §4.2; a
    /// missing row is silently ignored, as the real server does).
    pub fn set_log_file_path(&mut self, execution_log_id: &str, path: &str) {
        if self.exec_logs.iter().any(|(id, _, _)| id == execution_log_id) {
            self.exec_log_paths.insert(execution_log_id.to_string(), path.to_string());
        }
    }

    /// `GET /api/coordinator/config` body.
    pub fn remote_config(&self, root: Option<&str>) -> Value {
        let agents: Map<String, Value> = self.agents.iter().map(|a| (a.clone(), json!({"passkey": self.passkeys.get(a)}))).collect();
        json!({
            "coordinator_token": self.token, "root_agent_id": root, "polling_interval": self.remote_polling,
            "max_concurrent": self.remote_max_concurrent, "agents": agents,
            "ai_providers": {"claude": {"cli_command": "claude", "cli_args": ["--dangerously-skip-permissions", "--max-turns", "50", "--verbose"]}},
            "agent_base_prompt": self.base_prompt
        })
    }

    pub fn project_dir(&self, project: &str) -> Option<PathBuf> {
        self.work_dirs.get(project).cloned()
    }
}

/// Alive and not a zombie (an exited child not yet reaped by its parent is not running).
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit_once(')').map(|(_, r)| !r.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok() && !cfg!(target_os = "linux"),
    }
}
