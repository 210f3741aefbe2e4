//! Typed coordinator tool calls on top of a transport.

use super::transport::Transport;
use super::wire::*;
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

    pub fn with_options(
        address: &str,
        token: Option<String>,
        timeout: Duration,
        allow_insecure_http: bool,
    ) -> Result<PmClient, PmError> {
        let token = token.filter(|t| !t.is_empty());
        let transport = Transport::for_address(address, token.clone(), allow_insecure_http)?;
        Ok(PmClient {
            transport,
            token,
            timeout,
            next_id: AtomicU64::new(1),
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    pub fn address(&self) -> String {
        self.transport.address()
    }

    /// Raw tool call: adds `coordinator_token`, unwraps the envelope into the tool's reply (see [`wire`]).
    pub async fn call(&self, tool: &str, mut args: Map<String, Value>) -> Result<Reply, PmError> {
        if let Some(t) = &self.token {
            args.insert("coordinator_token".into(), Value::String(t.clone()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req =
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}, "id": id});
        let _permit = self.in_flight.acquire().await.map_err(|_| PmError::Protocol {
            tool: tool.into(),
            message: "client closed".into(),
        })?;
        let envelope = self.transport.roundtrip(tool, req, self.timeout).await?;
        envelope.into_reply(tool)
    }

    pub async fn health_check(&self) -> Result<Health, PmError> {
        let tool = "health_check";
        let h: HealthWire = self.call(tool, Map::new()).await?.parse(tool)?;
        Ok(Health {
            status: h.status.0.unwrap_or_else(|| "ok".into()),
            agent_count: h.agent_count.0,
            project_count: h.project_count.0,
        })
    }

    pub async fn list_active_projects_with_agents(
        &self,
        root_agent_id: Option<&str>,
    ) -> Result<Vec<ProjectInfo>, PmError> {
        let tool = "list_active_projects_with_agents";
        let mut args = Map::new();
        if let Some(r) = root_agent_id {
            args.insert("root_agent_id".into(), r.into());
        }
        let reply = self.call(tool, args).await?;
        reply.check_success(tool)?;
        parse_projects(tool, &reply)
    }

    pub async fn get_agent_action(&self, agent_id: &str, project_id: &str) -> Result<AgentAction, PmError> {
        let tool = "get_agent_action";
        let reply = self.call(tool, pair_args(agent_id, project_id)).await?;
        reply.check_success(tool)?;
        parse_action(tool, &reply)
    }

    /// `register_execution_log_file`: the server's `success` and, when it has one, its execution log id.
    pub async fn register_execution_log_file(
        &self,
        agent_id: &str,
        task_id: &str,
        log_file_path: &str,
    ) -> Result<LogRegistration, PmError> {
        let tool = "register_execution_log_file";
        let mut args = Map::new();
        args.insert("agent_id".into(), agent_id.into());
        args.insert("task_id".into(), task_id.into());
        args.insert("log_file_path".into(), log_file_path.into());
        let r: LogRegisteredWire = self.call(tool, args).await?.parse(tool)?;
        Ok(LogRegistration {
            success: r.success.0.unwrap_or(false),
            execution_log_id: r.execution_log_id.non_empty(),
            error: r.error.0,
        })
    }

    pub async fn report_agent_error(
        &self,
        agent_id: &str,
        project_id: &str,
        error_message: &str,
    ) -> Result<(), PmError> {
        let mut args = pair_args(agent_id, project_id);
        args.insert(
            "error_message".into(),
            crate::redact::global().redact(error_message).into(),
        );
        self.call("report_agent_error", args)
            .await?
            .check_success("report_agent_error")
    }

    pub async fn report_process_exit(
        &self,
        agent_id: &str,
        project_id: &str,
        remaining_processes: u64,
    ) -> Result<(), PmError> {
        let mut args = pair_args(agent_id, project_id);
        args.insert("remaining_processes".into(), remaining_processes.into());
        self.call("report_process_exit", args)
            .await?
            .check_success("report_process_exit")
    }

    pub async fn invalidate_session(&self, agent_id: &str, project_id: &str) -> Result<(), PmError> {
        self.call("invalidate_session", pair_args(agent_id, project_id))
            .await?
            .check_success("invalidate_session")
    }

    pub async fn get_subordinate_profile(&self, agent_id: &str) -> Result<AgentProfile, PmError> {
        let tool = "get_subordinate_profile";
        let mut args = Map::new();
        args.insert("agent_id".into(), agent_id.into());
        let p: ProfileWire = self.call(tool, args).await?.parse(tool)?;
        if let Some(e) = p.error.0 {
            return Err(PmError::Tool {
                tool: tool.into(),
                message: e,
            });
        }
        let skills = p.skills.0.map(|l| l.0).unwrap_or_default().into_iter().filter_map(|s| {
            Some(Skill {
                id: s.id.0.unwrap_or_default(),
                name: s.name.0.unwrap_or_default(),
                directory_name: first_of([s.directory_name, s.directory_name_camel])?,
                archive_base64: first_of([s.archive_base64, s.archive_base64_camel])?,
            })
        });
        Ok(AgentProfile {
            id: p.id.0.unwrap_or_else(|| agent_id.to_string()),
            name: p.name.0.unwrap_or_default(),
            system_prompt: first_of([p.system_prompt, p.system_prompt_camel]).unwrap_or_default(),
            skills: skills.collect(),
        })
    }

    pub async fn get_app_settings(&self) -> Result<AppSettings, PmError> {
        let tool = "get_app_settings";
        let s: AppSettingsWire = self.call(tool, Map::new()).await?.parse(tool)?;
        Ok(AppSettings {
            agent_base_prompt: first_of([s.agent_base_prompt, s.agent_base_prompt_camel]),
        })
    }
}

fn pair_args(agent_id: &str, project_id: &str) -> Map<String, Value> {
    let mut args = Map::new();
    args.insert("agent_id".into(), agent_id.into());
    args.insert("project_id".into(), project_id.into());
    args
}

fn parse_projects(tool: &str, reply: &Reply) -> Result<Vec<ProjectInfo>, PmError> {
    let w: ProjectsWire = reply.parse(tool)?;
    let Some(list) = w.projects else {
        return Err(PmError::Protocol {
            tool: tool.into(),
            message: "reply has no `projects` list".into(),
        });
    };
    let mut out = Vec::with_capacity(list.0.len());
    for p in list.0 {
        let Some(id) = first_of([p.project_id, p.project_id_camel]) else {
            tracing::warn!("{tool}: skipping a project without project_id");
            continue;
        };
        out.push(ProjectInfo {
            project_id: id,
            project_name: first_of([p.project_name, p.project_name_camel, p.name]).unwrap_or_default(),
            working_directory: first_of([p.working_directory, p.working_directory_camel]).unwrap_or_default(),
            agents: p.agents.0.map(|a| a.0).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn parse_action(tool: &str, reply: &Reply) -> Result<AgentAction, PmError> {
    let a: ActionWire = reply.parse(tool)?;
    Ok(AgentAction {
        action: a.action.non_empty().map_or(ServerAction::Hold, ServerAction::from),
        reason: a.reason.non_empty(),
        task_id: first_of([a.task_id, a.task_id_camel]).filter(|x| !x.is_empty()),
        provider: a.provider.non_empty(),
        model: a.model.non_empty(),
        kick_command: first_of([a.kick_command, a.kick_command_camel]).filter(|x| !x.is_empty()),
    })
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
        let calls: Vec<_> = (0..400)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.report_agent_error("agt_a", &format!("prj_{i}"), "x").await })
            })
            .collect();
        for h in calls {
            h.await.unwrap().unwrap();
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= MAX_IN_FLIGHT && peak > 1, "peak {peak} calls in flight");
    }

    use super::*;
    use proptest::prelude::*;

    fn envelope(v: &Value) -> Envelope {
        Envelope::parse(v.to_string().as_bytes(), "t").unwrap()
    }

    fn parse_envelope(tool: &str, v: &Value) -> Result<Reply, PmError> {
        envelope(v).into_reply(tool)
    }

    fn env_text(text: &str) -> Value {
        json!({"id": 1, "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": text}]}})
    }

    fn reply(v: Value) -> Reply {
        Reply::Json(v.to_string())
    }

    #[test]
    fn unwraps_pretty_json_text() {
        let r = parse_envelope(
            "health_check",
            &env_text("{\n  \"status\" : \"ok\",\n  \"success\" : true\n}"),
        )
        .unwrap();
        let h: HealthWire = r.parse("health_check").unwrap();
        assert_eq!(h.status.0.as_deref(), Some("ok"));
        assert!(envelope(&env_text("x")).answers(1) && !envelope(&env_text("x")).answers(2));
    }

    #[test]
    fn is_error_becomes_tool_error_with_text() {
        let e = json!({"id": 1, "jsonrpc": "2.0", "result": {"content": [{"type": "text", "text": "Error: Invalid coordinator token. Set MCP_COORDINATOR_TOKEN environment variable."}], "isError": true}});
        let err = parse_envelope("get_agent_action", &e).unwrap_err();
        assert!(err.is_auth());
        assert!(err
            .to_string()
            .starts_with("get_agent_action: Error: Invalid coordinator token"));
    }

    #[test]
    fn rpc_error_and_unknown_tool() {
        let e = json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found: x"}});
        assert!(envelope(&e).is_anonymous_error());
        let err = parse_envelope("x", &e).unwrap_err();
        assert!(err.is_unknown_tool());
        let e = json!({"id":1,"result":{"content":[{"type":"text","text":"Authorization Error: Tool 'report_process_exit' is not registered in authorization system"}],"isError":true}});
        assert!(parse_envelope("report_process_exit", &e).unwrap_err().is_unknown_tool());
        // `error: null` beside a result is no error.
        assert!(parse_envelope(
            "t",
            &json!({"id": 1, "error": null, "result": {"content": [{"type": "text", "text": "{}"}]}})
        )
        .is_ok());
    }

    #[test]
    fn non_json_text_and_structured_results() {
        assert_eq!(
            parse_envelope("t", &env_text("plain")).unwrap(),
            Reply::Text("plain".into())
        );
        let h: HealthWire = Reply::Text("plain".into()).parse("t").unwrap();
        assert!(h.status.0.is_none());
        // A result without content is the reply itself.
        assert_eq!(
            parse_envelope("t", &json!({"id": 1, "result": {"status": "ok"}})).unwrap(),
            reply(json!({"status": "ok"}))
        );
    }

    #[test]
    fn lenient_projects_and_action() {
        let v = reply(
            json!({"projects": [{"projectId": "prj_1", "name": "Demo", "workingDirectory": "/w", "agents": ["a", 3]}, {"agents": []}, 7, {"project_id": "p2", "projectId": "dup", "agents": "x"}]}),
        );
        let p = parse_projects("l", &v).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].working_directory, "/w");
        assert_eq!(p[0].agents, vec!["a"]);
        assert_eq!((p[1].project_id.as_str(), p[1].agents.len()), ("p2", 0));
        assert!(parse_projects("l", &reply(json!({"success": true})))
            .unwrap_err()
            .to_string()
            .contains("no `projects` list"));
        assert_eq!(parse_action("t", &reply(json!({}))).unwrap().action, "hold");
        let a = parse_action(
            "t",
            &reply(json!({"action": "start", "taskId": "tsk_1", "provider": 5, "kickCommand": "sh"})),
        )
        .unwrap();
        assert_eq!(
            (a.task_id.as_deref(), a.provider, a.kick_command.as_deref()),
            (Some("tsk_1"), None, Some("sh"))
        );
        assert!(reply(json!({"success": false, "error": "nope"}))
            .check_success("t")
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert!(reply(json!({})).check_success("t").is_ok());
        assert!(reply(json!({"success": "no"})).check_success("t").is_ok());
    }

    #[test]
    fn a_list_past_its_bound_is_refused_not_built() {
        let mut s = String::from("{\"projects\":[");
        for i in 0..=wire::MAX_PROJECTS {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{}");
        }
        s.push_str("]}");
        let err = parse_projects("l", &Reply::Json(s)).unwrap_err().to_string();
        assert!(err.contains("more than 100000 items"), "{err}");
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
                prop::collection::btree_map(
                    prop_oneof![
                        Just("result".to_string()),
                        Just("error".to_string()),
                        Just("content".to_string()),
                        Just("text".to_string()),
                        Just("isError".to_string()),
                        Just("projects".to_string()),
                        Just("action".to_string()),
                        Just("agents".to_string()),
                        Just("skills".to_string()),
                        Just("id".to_string()),
                        "[a-z_]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_any_json(v in arb_json()) {
            if let Ok(e) = Envelope::parse(v.to_string().as_bytes(), "t") {
                let _ = e.answers(1);
                let _ = e.is_anonymous_error();
                let _ = e.into_reply("t");
            }
            let r = reply(v);
            let _ = parse_projects("t", &r);
            let _ = parse_action("t", &r);
            let _ = r.check_success("t");
            let _ = r.parse::<ProfileWire>("t");
        }

        #[test]
        fn parser_never_panics_on_any_text(s in ".{0,200}") {
            let _ = parse_envelope("t", &env_text(&s));
            let _ = Envelope::parse(s.as_bytes(), "t");
        }

        #[test]
        fn well_formed_actions_round_trip(action in "[a-z]{1,10}", task in "[a-z0-9_]{1,12}") {
            let inner = json!({"action": action, "task_id": task}).to_string();
            let a = parse_action("t", &parse_envelope("t", &env_text(&inner)).unwrap()).unwrap();
            prop_assert_eq!(a.action, action);
            prop_assert_eq!(a.task_id, Some(task));
        }
    }
}
