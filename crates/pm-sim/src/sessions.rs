//! Agent sessions and the agent-side tools (protocol doc §3): `authenticate` picks the purpose from pending
//! work (task first, then chat) or refuses with "No valid purpose"; it always ends the spawn lease. A pair may
//! hold a task and a chat session at once; `logout` ends a session while its process may live on.

use crate::model::{Key, Model, Session};
use crate::types::*;
use serde_json::{json, Map, Value};

pub(crate) const AGENT_TOOLS: &[&str] = &[
    "get_next_action",
    "get_my_task",
    "report_model",
    "report_execution_start",
    "report_execution_complete",
    "report_completed",
    "logout",
    "get_my_profile",
    "get_pending_messages",
    "send_message",
];
const TASK_ONLY: &[&str] = &[
    "report_execution_start",
    "report_execution_complete",
    "report_completed",
];
const CHAT_ONLY: &[&str] = &["get_pending_messages"];

impl Model {
    /// Removes a session and its pair slot; false if it was not there.
    pub(crate) fn end_session(&mut self, token: &str) -> bool {
        let Some(s) = self.sessions.remove(token) else {
            return false;
        };
        if let Some(p) = self.pairs.get_mut(&(s.agent, s.project)) {
            let slot = match s.purpose {
                Purpose::Task => &mut p.task_session,
                Purpose::Chat => &mut p.chat_session,
            };
            if slot.as_deref() == Some(token) {
                *slot = None;
            }
        }
        true
    }

    /// `SessionAuth.authenticate` + `AuthenticateUseCase` (§3 step 2).
    pub(crate) fn authenticate(&mut self, agent: &str, passkey: &str, project: &str, pid: Option<u64>) -> Value {
        let key: Key = (agent.to_string(), project.to_string());
        let lease_was_set = match self.pairs.get_mut(&key) {
            Some(p) => p.lease.take().is_some(),
            None => false,
        };
        if lease_was_set {
            self.n.leases_cleared += 1;
        }
        let fail = |m: &mut Model, error: &str, instruction: &str| {
            m.n.auth_failed += 1;
            json!({"success": false, "error": error, "action": "exit", "instruction": instruction})
        };
        if !self.projects.iter().any(|p| p == project) {
            return fail(
                self,
                "Project not found",
                "The project was not found. Exit the process.",
            );
        }
        if !self.pairs.contains_key(&key) {
            return fail(
                self,
                "Agent not assigned to project",
                "You are not assigned to this project. Exit the process.",
            );
        }
        if self.passkeys.get(agent).map(String::as_str) != Some(passkey) {
            if !self.humans.iter().any(|h| h == agent) {
                self.violation(
                    ViolationKind::BadPasskey,
                    format!("{agent} authenticated with a wrong passkey"),
                );
            }
            return fail(
                self,
                "Invalid agent_id or passkey",
                "Authentication failed. Exit the process.",
            );
        }
        let pair = &self.pairs[&key];
        let purpose = if pair.has_task_work() {
            Purpose::Task
        } else if pair.has_chat_work() {
            Purpose::Chat
        } else {
            self.n.auth_no_purpose += 1;
            return fail(
                self,
                "No valid purpose for authentication",
                "Authentication failed: no work is assigned to you now. Exit the process.",
            );
        };
        let task = if purpose == Purpose::Task {
            pair.task_id(agent, project)
        } else {
            None
        };
        self.n.auth_ok += 1;
        match purpose {
            Purpose::Task => self.n.task_sessions += 1,
            Purpose::Chat => self.n.chat_sessions += 1,
        }
        if let Some(pid) = pid.map(|p| p as u32) {
            self.track_pid(&key, pid, lease_was_set);
        }
        let token = format!("sess_{}", crate::random_hex(24));
        let p = self.pairs.get_mut(&key).expect("pair");
        match purpose {
            Purpose::Task => p.task_session = Some(token.clone()),
            Purpose::Chat => p.chat_session = Some(token.clone()),
        }
        self.sessions.insert(
            token.clone(),
            Session {
                agent: agent.into(),
                project: project.into(),
                purpose,
                task,
            },
        );
        let mut behavior = match self.behaviors.get(agent).cloned().unwrap_or(AgentBehavior::Succeed) {
            AgentBehavior::Succeed => json!({"mode": "succeed"}),
            AgentBehavior::Fail { message } => json!({"mode": "fail", "message": message}),
            AgentBehavior::Quota { message } => json!({"mode": "quota", "message": message}),
            AgentBehavior::QuotaResetsIn { secs } => json!({"mode": "quota", "resets_in_secs": secs}),
            AgentBehavior::Hang => json!({"mode": "hang"}),
            AgentBehavior::SpawnGrandchild => json!({"mode": "grandchild"}),
            AgentBehavior::WorkMs(ms) => json!({"mode": "succeed", "work_ms": ms}),
            AgentBehavior::LeakPasskey => json!({"mode": "leak"}),
            AgentBehavior::LogoutThenLinger { work_ms, linger_ms } => {
                json!({"mode": "succeed", "work_ms": work_ms, "linger_ms": linger_ms})
            }
        };
        if let Some(r) = self.refill.as_mut() {
            // Continuous work: every run gets its length; a failing one fails after a sixth of it (it found
            // out early), so failure streaks and quotas show up within a minute.
            let ms = r.draw_run_ms();
            let fails = behavior["mode"] != "succeed";
            if behavior.get("work_ms").is_none() {
                behavior["work_ms"] = json!(if fails { ms / 6 } else { ms });
            }
        }
        let system_prompt = self.profiles.get(agent).map(|p| p.0.clone()).unwrap_or_default();
        json!({
            "success": true, "session_token": token, "expires_in": 3600, "agent_name": format!("Agent {agent}"),
            "instruction": "Call get_next_action and follow its instruction.", "system_prompt": system_prompt,
            "working_directory": self.work_dirs[project].display().to_string(), "sim_behavior": behavior
        })
    }

    fn track_pid(&mut self, key: &Key, pid: u32, leased: bool) {
        self.live_pids();
        if !leased {
            if let Some((_, other)) = self.pids.iter().find(|(k, p)| k == key && *p != pid) {
                let detail = format!(
                    "{}/{}: pid {pid} authenticated without a start answer while pid {other} runs",
                    key.0, key.1
                );
                self.violation(ViolationKind::DoubleSpawn, detail);
            }
        }
        self.pids.push((key.clone(), pid));
        let live = self.pids.len();
        self.n.peak_live = self.n.peak_live.max(live);
        if let Some(max) = self.max_concurrent {
            if live > max {
                self.violation(
                    ViolationKind::MaxConcurrentExceeded,
                    format!("{live} agent processes alive, max_concurrent {max}"),
                );
            }
        }
    }

    pub(crate) fn agent_tool(&mut self, name: &str, args: &Map<String, Value>) -> Result<Value, String> {
        let token = args
            .get("session_token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (agent, project, purpose, task) = {
            let s = &self.sessions[&token];
            (s.agent.clone(), s.project.clone(), s.purpose, s.task.clone())
        };
        if (purpose == Purpose::Chat && TASK_ONLY.contains(&name))
            || (purpose == Purpose::Task && CHAT_ONLY.contains(&name))
        {
            let want = if purpose == Purpose::Chat { "task" } else { "chat" };
            return Err(format!(
                "Authorization Error: Tool '{name}' is only available in a {want} session"
            ));
        }
        let key = (agent.clone(), project.clone());
        match name {
            "get_my_task" => Ok(match &task {
                Some(t) => {
                    json!({"success": true, "task": {"id": t, "title": format!("Work item {t}"), "status": "in_progress", "description": "Simulated work"}})
                }
                None => json!({"success": true, "task": null}),
            }),
            "get_next_action" => Ok(match (purpose, &task) {
                (Purpose::Task, Some(t)) => {
                    json!({"action": "execute", "instruction": format!("Execute task {t}, then report_completed"), "task_id": t})
                }
                (Purpose::Chat, _) if !self.pairs[&key].unread.is_empty() => {
                    json!({"action": "get_pending_messages", "instruction": "Read your messages with get_pending_messages and answer them."})
                }
                _ => {
                    json!({"action": "logout", "instruction": "Nothing more to do: call logout, then exit the process."})
                }
            }),
            "get_pending_messages" => {
                let msgs = std::mem::take(&mut self.pairs.get_mut(&key).expect("pair").unread);
                let msgs: Vec<Value> = msgs
                    .iter()
                    .map(|m| json!({"sender_id": "system", "content": m}))
                    .collect();
                Ok(json!({"success": true, "messages": msgs}))
            }
            "send_message" => Ok(json!({"success": true, "message_id": format!("msg_{}", crate::random_hex(12))})),
            "report_model" | "get_my_profile" => Ok(json!({"success": true})),
            "report_execution_start" => {
                let t = args
                    .get("task_id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(task)
                    .ok_or("Error: no task")?;
                let id = format!("exl_{}", crate::random_hex(12));
                self.exec_logs.push((id.clone(), agent.clone(), t.clone()));
                Ok(
                    json!({"success": true, "execution_log_id": id, "task_id": t, "agent_id": agent, "status": "running", "started_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
                )
            }
            "report_execution_complete" => Ok(json!({"success": true})),
            "report_completed" => {
                let ok = args.get("result").and_then(Value::as_str) == Some("success");
                if ok && task.is_some() {
                    let p = self.pairs.get_mut(&key).expect("pair");
                    if p.remaining > 0 {
                        p.remaining -= 1;
                        p.next_item += 1;
                        self.n.completed += 1;
                    }
                    if let Some(r) = self.refill.as_mut() {
                        p.remaining += r.top_up(p.remaining);
                    }
                    if let Some(s) = self.sessions.get_mut(&token) {
                        s.task = None;
                    }
                }
                Ok(json!({"success": true}))
            }
            "logout" => {
                self.end_session(&token);
                Ok(json!({"success": true}))
            }
            _ => Err(format!(
                "Authorization Error: Tool '{name}' is not registered in authorization system"
            )),
        }
    }
}
