//! Typed coordinator tool calls on top of a transport.

use super::transport::Transport;
use super::*;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct PmClient {
    transport: Transport,
    token: Option<String>,
    timeout: Duration,
    next_id: AtomicU64,
    /// Bounds calls in flight of every kind (questions, reports, registrations): 30,000 failing projects must
    /// not open thousands of connections and starve our own health check of file descriptors.
    in_flight: tokio::sync::Semaphore,
}

/// Server calls in flight at once, per client.
pub const MAX_IN_FLIGHT: usize = 64;

impl PmClient {
    /// `token` is the coordinator token (added to every call's arguments and, over HTTP, as Bearer).
    /// Plain http is allowed only to loopback (see [`super::transport::check_cleartext`]).
    pub fn new(address: &str, token: Option<String>, timeout: Duration) -> Result<PmClient, PmError> {
        Self::with_options(address, token, timeout, false)
    }

    pub fn with_options(address: &str, token: Option<String>, timeout: Duration, allow_insecure_http: bool) -> Result<PmClient, PmError> {
        let token = token.filter(|t| !t.is_empty());
        let transport = Transport::for_address(address, token.clone(), allow_insecure_http)?;
        Ok(PmClient { transport, token, timeout, next_id: AtomicU64::new(1), in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT) })
    }

    pub fn address(&self) -> String {
        self.transport.address()
    }

    /// Raw tool call: adds `coordinator_token`, unwraps `result.content[0].text` JSON.
    pub async fn call(&self, tool: &str, mut args: Map<String, Value>) -> Result<Value, PmError> {
        if let Some(t) = &self.token {
            args.insert("coordinator_token".into(), Value::String(t.clone()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req = json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}, "id": id});
        let _permit = self.in_flight.acquire().await.map_err(|_| PmError::Protocol { tool: tool.into(), message: "client closed".into() })?;
        let envelope = self.transport.roundtrip(tool, req, self.timeout).await?;
        parse_envelope(tool, &envelope)
    }

    pub async fn health_check(&self) -> Result<Health, PmError> {
        let v = self.call("health_check", Map::new()).await?;
        Ok(Health {
            status: str_field(&v, &["status"]).unwrap_or_else(|| "ok".into()),
            agent_count: v.get("agent_count").and_then(Value::as_u64),
            project_count: v.get("project_count").and_then(Value::as_u64),
        })
    }

    pub async fn list_active_projects_with_agents(&self, root_agent_id: Option<&str>) -> Result<Vec<ProjectInfo>, PmError> {
        let tool = "list_active_projects_with_agents";
        let mut args = Map::new();
        if let Some(r) = root_agent_id {
            args.insert("root_agent_id".into(), r.into());
        }
        let v = self.call(tool, args).await?;
        check_success(tool, &v)?;
        parse_projects(tool, &v)
    }

    pub async fn get_agent_action(&self, agent_id: &str, project_id: &str) -> Result<AgentAction, PmError> {
        let v = self.call("get_agent_action", pair_args(agent_id, project_id)).await?;
        check_success("get_agent_action", &v)?;
        Ok(parse_action(&v))
    }

    /// Returns the server's `success`.
    pub async fn register_execution_log_file(&self, agent_id: &str, task_id: &str, log_file_path: &str) -> Result<bool, PmError> {
        let mut args = Map::new();
        args.insert("agent_id".into(), agent_id.into());
        args.insert("task_id".into(), task_id.into());
        args.insert("log_file_path".into(), log_file_path.into());
        let v = self.call("register_execution_log_file", args).await?;
        Ok(v.get("success").and_then(Value::as_bool).unwrap_or(false))
    }

    pub async fn report_agent_error(&self, agent_id: &str, project_id: &str, error_message: &str) -> Result<(), PmError> {
        let mut args = pair_args(agent_id, project_id);
        args.insert("error_message".into(), crate::redact::global().redact(error_message).into());
        let v = self.call("report_agent_error", args).await?;
        check_success("report_agent_error", &v)
    }

    pub async fn report_process_exit(&self, agent_id: &str, project_id: &str, remaining_processes: u64) -> Result<(), PmError> {
        let mut args = pair_args(agent_id, project_id);
        args.insert("remaining_processes".into(), remaining_processes.into());
        let v = self.call("report_process_exit", args).await?;
        check_success("report_process_exit", &v)
    }

    pub async fn invalidate_session(&self, agent_id: &str, project_id: &str) -> Result<(), PmError> {
        let v = self.call("invalidate_session", pair_args(agent_id, project_id)).await?;
        check_success("invalidate_session", &v)
    }

    pub async fn get_subordinate_profile(&self, agent_id: &str) -> Result<AgentProfile, PmError> {
        let tool = "get_subordinate_profile";
        let mut args = Map::new();
        args.insert("agent_id".into(), agent_id.into());
        let v = self.call(tool, args).await?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(PmError::Tool { tool: tool.into(), message: e.to_string() });
        }
        let skills = v
            .get("skills")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        Some(Skill {
                            id: str_field(s, &["id"]).unwrap_or_default(),
                            name: str_field(s, &["name"]).unwrap_or_default(),
                            directory_name: str_field(s, &["directory_name", "directoryName"])?,
                            archive_base64: str_field(s, &["archive_base64", "archiveBase64"])?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(AgentProfile {
            id: str_field(&v, &["id"]).unwrap_or_else(|| agent_id.to_string()),
            name: str_field(&v, &["name"]).unwrap_or_default(),
            system_prompt: str_field(&v, &["system_prompt", "systemPrompt"]).unwrap_or_default(),
            skills,
        })
    }

    pub async fn get_app_settings(&self) -> Result<AppSettings, PmError> {
        let v = self.call("get_app_settings", Map::new()).await?;
        Ok(AppSettings { agent_base_prompt: str_field(&v, &["agent_base_prompt", "agentBasePrompt"]) })
    }
}

fn pair_args(agent_id: &str, project_id: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("agent_id".into(), agent_id.into());
    args.insert("project_id".into(), project_id.into());
    args
}

/// First string among `keys` (lenient: camelCase fallbacks).
fn str_field(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_string))
}

/// `success: false` → a tool error naming the server's reason; a missing `success` counts as true.
fn check_success(tool: &str, v: &Value) -> Result<(), PmError> {
    if v.get("success").and_then(Value::as_bool) == Some(false) {
        let reason = str_field(v, &["error", "message", "text"]).unwrap_or_else(|| "success: false".into());
        return Err(PmError::Tool { tool: tool.into(), message: crate::redact::global().redact(&reason) });
    }
    Ok(())
}

/// Unwrap a JSON-RPC response envelope (protocol doc §1.2). Never panics on any input.
pub fn parse_envelope(tool: &str, envelope: &Value) -> Result<Value, PmError> {
    let redact = |s: &str| crate::redact::global().redact(s);
    if let Some(err) = envelope.get("error").filter(|e| !e.is_null()) {
        return Err(PmError::Rpc {
            tool: tool.into(),
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: redact(err.get("message").and_then(Value::as_str).unwrap_or("unknown error")),
        });
    }
    let Some(result) = envelope.get("result") else {
        return Err(PmError::Protocol { tool: tool.into(), message: "reply has neither result nor error".into() });
    };
    let first = result.get("content").and_then(Value::as_array).and_then(|c| c.first());
    let text = first.filter(|c| c.get("type").and_then(Value::as_str).unwrap_or("text") == "text").and_then(|c| c.get("text")).and_then(Value::as_str);
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(PmError::Tool { tool: tool.into(), message: redact(text.unwrap_or("tool failed without a message")) });
    }
    match (first, text) {
        (None, _) => Ok(result.clone()),
        (Some(_), Some(t)) => Ok(serde_json::from_str(t).unwrap_or_else(|_| json!({ "text": t }))),
        (Some(c), None) => Ok(c.clone()),
    }
}

fn parse_projects(tool: &str, v: &Value) -> Result<Vec<ProjectInfo>, PmError> {
    let Some(arr) = v.get("projects").and_then(Value::as_array) else {
        return Err(PmError::Protocol { tool: tool.into(), message: "reply has no `projects` list".into() });
    };
    let mut out = Vec::with_capacity(arr.len());
    for p in arr {
        let Some(id) = str_field(p, &["project_id", "projectId"]) else {
            tracing::warn!("{tool}: skipping a project without project_id");
            continue;
        };
        let agents = p.get("agents").and_then(Value::as_array).map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default();
        out.push(ProjectInfo {
            project_id: id,
            project_name: str_field(p, &["project_name", "projectName", "name"]).unwrap_or_default(),
            working_directory: str_field(p, &["working_directory", "workingDirectory"]).unwrap_or_default(),
            agents,
        });
    }
    Ok(out)
}

fn parse_action(v: &Value) -> AgentAction {
    let s = |k: &[&str]| str_field(v, k).filter(|x| !x.is_empty());
    AgentAction {
        action: s(&["action"]).map_or(ServerAction::Hold, ServerAction::from),
        reason: s(&["reason"]),
        task_id: s(&["task_id", "taskId"]),
        provider: s(&["provider"]),
        model: s(&["model"]),
        kick_command: s(&["kick_command", "kickCommand"]),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_in_flight_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("slow.sock");
        let l = tokio::net::UnixListener::bind(&path).unwrap();
        let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (n, p) = (now.clone(), peak.clone());
        tokio::spawn(async move {
            while let Ok((c, _)) = l.accept().await {
                let (n, p) = (n.clone(), p.clone());
                tokio::spawn(async move {
                    let (r, mut w) = c.into_split();
                    let mut lines = tokio::io::BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let busy = n.fetch_add(1, Ordering::SeqCst) + 1;
                        p.fetch_max(busy, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        n.fetch_sub(1, Ordering::SeqCst);
                        let id = serde_json::from_str::<Value>(&line).unwrap()["id"].clone();
                        let reply = json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":"{\"success\":true}"}]}});
                        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
                    }
                });
            }
        });
        let c = Arc::new(PmClient::new(&path.display().to_string(), None, Duration::from_secs(20)).unwrap());
        let calls: Vec<_> = (0..400).map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.report_agent_error("agt_a", &format!("prj_{i}"), "x").await })
        }).collect();
        for h in calls {
            h.await.unwrap().unwrap();
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= MAX_IN_FLIGHT && peak > 1, "peak {peak} calls in flight");
    }

    use super::*;
    use proptest::prelude::*;

    fn env_text(text: &str) -> Value {
        json!({"id": 1, "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": text}]}})
    }

    #[test]
    fn unwraps_pretty_json_text() {
        let v = parse_envelope("health_check", &env_text("{\n  \"status\" : \"ok\",\n  \"success\" : true\n}")).unwrap();
        assert_eq!(v["status"], "ok");
    }

    #[test]
    fn is_error_becomes_tool_error_with_text() {
        let e = json!({"id": 1, "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": "Error: Invalid coordinator token. Set MCP_COORDINATOR_TOKEN environment variable."}], "isError": true}});
        let err = parse_envelope("get_agent_action", &e).unwrap_err();
        assert!(err.is_auth());
        assert!(err.to_string().starts_with("get_agent_action: Error: Invalid coordinator token"));
    }

    #[test]
    fn rpc_error_and_unknown_tool() {
        let e = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: x"}});
        let err = parse_envelope("x", &e).unwrap_err();
        assert!(err.is_unknown_tool());
        let e = json!({"id":1,"result":{"content":[{"type":"text","text":"Authorization Error: Tool 'report_process_exit' is not registered in authorization system"}],"isError":true}});
        assert!(parse_envelope("report_process_exit", &e).unwrap_err().is_unknown_tool());
    }

    #[test]
    fn non_json_text_falls_back() {
        assert_eq!(parse_envelope("t", &env_text("plain")).unwrap(), json!({"text": "plain"}));
    }

    #[test]
    fn lenient_projects_and_action() {
        let v = json!({"projects": [{"projectId": "prj_1", "name": "Demo", "workingDirectory": "/w", "agents": ["a", 3]}, {"agents": []}]});
        let p = parse_projects("l", &v).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].working_directory, "/w");
        assert_eq!(p[0].agents, vec!["a"]);
        assert_eq!(parse_action(&json!({})).action, "hold");
        assert!(check_success("t", &json!({"success": false, "error": "nope"})).is_err());
        assert!(check_success("t", &json!({})).is_ok());
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,20}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(prop_oneof![Just("result".to_string()), Just("error".to_string()), Just("content".to_string()), Just("text".to_string()), Just("isError".to_string()), Just("projects".to_string()), Just("action".to_string()), "[a-z_]{1,8}"], inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_any_json(v in arb_json()) {
            let _ = parse_envelope("t", &v);
            let _ = parse_projects("t", &v);
            let _ = parse_action(&v);
            let _ = check_success("t", &v);
        }

        #[test]
        fn parser_never_panics_on_any_text(s in ".{0,200}") {
            let _ = parse_envelope("t", &env_text(&s));
        }

        #[test]
        fn well_formed_actions_round_trip(action in "[a-z]{1,10}", task in "[a-z0-9_]{1,12}") {
            let inner = json!({"action": action, "task_id": task}).to_string();
            let a = parse_action(&parse_envelope("t", &env_text(&inner)).unwrap());
            prop_assert_eq!(a.action, action);
            prop_assert_eq!(a.task_id, Some(task));
        }
    }
}
