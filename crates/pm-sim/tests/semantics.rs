//! The simulator's server semantics as upstream (protocol doc §2.4, §2.6, §2.8, §3, §4.3): sessions per
//! purpose, the spawn lease and its counters, "No valid purpose", chat work from error reports, humans,
//! provider names, outages. Every call goes over the real Unix socket or HTTP.

use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct T {
    _dir: tempfile::TempDir,
    sim: pm_sim::Simulator,
    a: String,
    p: String,
}

async fn sim(items: usize, humans: usize, http: bool) -> T {
    let dir = tempfile::tempdir().unwrap();
    let w = pm_sim::Workload {
        projects: 1,
        agents: 2,
        items_per_pair: items,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(w, dir.path().join("p"));
    cfg.socket_path = Some(dir.path().join("s.sock"));
    cfg.humans = humans;
    if http {
        cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    }
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    let (a, p) = (sim.agent_ids()[0].clone(), sim.project_ids()[0].clone());
    T { _dir: dir, sim, a, p }
}

impl T {
    /// One tool call on a fresh connection (as the Python client does): Ok(parsed text) or Err(isError text).
    async fn call(&self, tool: &str, mut args: Value) -> Result<Value, String> {
        if args.get("coordinator_token").is_none() && args.get("session_token").is_none() && tool != "authenticate" {
            args["coordinator_token"] = json!(self.sim.coordinator_token());
        }
        let req =
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}, "id": 1})
                .to_string()
                + "\n";
        let s = tokio::net::UnixStream::connect(self.sim.socket_path().unwrap())
            .await
            .map_err(|e| e.to_string())?;
        let (r, mut w) = s.into_split();
        w.write_all(req.as_bytes()).await.unwrap();
        let line = BufReader::new(r).lines().next_line().await.unwrap().unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        let text = v["result"]["content"][0]["text"].as_str().unwrap().to_string();
        if v["result"]["isError"] == true {
            return Err(text);
        }
        Ok(serde_json::from_str(&text).unwrap())
    }
    async fn action(&self, agent: &str) -> Value {
        self.call("get_agent_action", json!({"agent_id": agent, "project_id": self.p}))
            .await
            .unwrap()
    }
    async fn auth(&self, agent: &str) -> Value {
        let pk = self.sim.passkey(agent);
        self.call(
            "authenticate",
            json!({"agent_id": agent, "passkey": pk, "project_id": self.p}),
        )
        .await
        .unwrap()
    }
    async fn agent(&self, tool: &str, session: &Value, mut args: Value) -> Result<Value, String> {
        args["session_token"] = session["session_token"].clone();
        self.call(tool, args).await
    }
}

#[tokio::test]
async fn logout_ends_the_session_and_the_next_item_is_a_new_start_beside_the_live_process() {
    let t = sim(2, 0, false).await;
    let st = t.action(&t.a).await;
    assert_eq!(
        (st["action"].as_str(), st["reason"].as_str()),
        (Some("start"), Some("has_task_work"))
    );
    assert_eq!(st["task_id"], format!("tsk_{}_{}_1", t.a, t.p));
    assert_eq!(t.action(&t.a).await["reason"], "spawn_in_progress");
    // Our own pid stands in for the agent process that stays alive after its logout.
    let pk = t.sim.passkey(&t.a);
    let s = t
        .call(
            "authenticate",
            json!({"agent_id": t.a, "passkey": pk, "project_id": t.p, "pid": std::process::id()}),
        )
        .await
        .unwrap();
    assert_eq!(s["success"], true);
    assert_eq!(
        t.action(&t.a).await["reason"],
        "no_work",
        "a live task session suppresses start"
    );
    t.agent("report_completed", &s, json!({"result": "success"}))
        .await
        .unwrap();
    assert_eq!(t.action(&t.a).await["reason"], "no_work");
    t.agent("logout", &s, json!({})).await.unwrap();
    // The process lives on, the session is gone: the server answers start (and takes the lease) again.
    let st = t.action(&t.a).await;
    assert_eq!(st["action"], "start");
    let n = t.sim.stats();
    assert_eq!(
        (
            n.leases_taken,
            n.leases_cleared_by_auth,
            n.leases_outstanding,
            n.starts_beside_live_process
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(n.leases_expired_unused, 0);
    assert!(
        t.agent("get_my_task", &s, json!({})).await.is_err(),
        "a logged-out session still works"
    );
}

#[tokio::test]
async fn task_and_chat_sessions_live_side_by_side_and_error_reports_create_chat_work() {
    let t = sim(1, 0, false).await;
    assert_eq!(t.action(&t.a).await["action"], "start");
    let task = t.auth(&t.a).await;
    let r = t
        .call(
            "report_agent_error",
            json!({"agent_id": t.a, "project_id": t.p, "error_message": "Error: boom"}),
        )
        .await
        .unwrap();
    assert!(r["message_id"].as_str().unwrap().starts_with("err_"));
    // The unread system message is chat work: start for chat while the task session lives, with task_id
    // because a task is in progress.
    let st = t.action(&t.a).await;
    assert_eq!(
        (st["action"].as_str(), st["reason"].as_str()),
        (Some("start"), Some("has_chat_work"))
    );
    assert!(st["task_id"].is_string());
    let chat = t.auth(&t.a).await;
    assert_eq!(chat["success"], true);
    assert_eq!(t.sim.stats().chat_sessions, 1);
    assert!(t
        .agent("report_completed", &chat, json!({"result": "success"}))
        .await
        .unwrap_err()
        .contains("task session"));
    assert!(t
        .agent("get_pending_messages", &task, json!({}))
        .await
        .unwrap_err()
        .contains("chat session"));
    assert_eq!(
        t.agent("get_next_action", &chat, json!({})).await.unwrap()["action"],
        "get_pending_messages"
    );
    let m = t.agent("get_pending_messages", &chat, json!({})).await.unwrap();
    assert!(m["messages"][0]["content"].as_str().unwrap().contains("Error: boom"));
    assert_eq!(t.sim.stats().unread_chat_messages, 0);
    // Two sessions, one process gone, a task still in progress: the chat session is the orphan.
    let r = t
        .call(
            "report_process_exit",
            json!({"agent_id": t.a, "project_id": t.p, "remaining_processes": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r["action"].as_str(), r["deleted_purpose"].as_str()),
        (Some("deleted_orphan"), Some("chat"))
    );
    let r = t
        .call(
            "report_process_exit",
            json!({"agent_id": t.a, "project_id": t.p, "remaining_processes": 0}),
        )
        .await
        .unwrap();
    assert_eq!(
        (r["action"].as_str(), r["deleted_agent_sessions"].as_u64()),
        (Some("invalidated_all"), Some(1))
    );
}

#[tokio::test]
async fn authenticate_without_work_fails_but_still_ends_the_lease() {
    let t = sim(0, 0, false).await;
    assert_eq!(t.action(&t.a).await["reason"], "no_work");
    let r = t.auth(&t.a).await;
    assert_eq!(
        (r["success"].as_bool(), r["error"].as_str()),
        (Some(false), Some("No valid purpose for authentication"))
    );
    t.sim.add_chat_message(&t.a, &t.p, "hello");
    let st = t.action(&t.a).await;
    assert_eq!(st["reason"], "has_chat_work");
    assert!(st.get("task_id").is_none(), "task_id without a task in progress: {st}");
    let pk = "wrong-passkey";
    let r = t
        .call(
            "authenticate",
            json!({"agent_id": t.a, "passkey": pk, "project_id": t.p}),
        )
        .await
        .unwrap();
    assert_eq!(r["error"], "Invalid agent_id or passkey");
    let n = t.sim.stats();
    assert_eq!(
        (n.leases_taken, n.leases_cleared_by_auth, n.authentications_no_purpose),
        (1, 1, 1)
    );
    assert_eq!(
        t.action(&t.a).await["action"],
        "start",
        "a failed authenticate ended the lease too"
    );
}

#[tokio::test]
async fn an_unused_lease_expires_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let w = pm_sim::Workload {
        projects: 1,
        agents: 1,
        items_per_pair: 1,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(w, dir.path().join("p"));
    cfg.socket_path = Some(dir.path().join("s.sock"));
    cfg.lease = Duration::from_millis(300);
    let sim = pm_sim::Simulator::start(cfg).await.unwrap();
    let t = T {
        a: sim.agent_ids()[0].clone(),
        p: sim.project_ids()[0].clone(),
        sim,
        _dir: dir,
    };
    assert_eq!(t.action(&t.a).await["action"], "start");
    assert_eq!(t.sim.stats().leases_outstanding, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(t.sim.stats().leases_expired_unused, 1);
    assert_eq!(t.action(&t.a).await["action"], "start");
    let n = t.sim.stats();
    assert_eq!(
        (n.leases_taken, n.leases_expired_unused, n.leases_outstanding),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn humans_are_listed_without_passkeys_and_providers_are_any_name() {
    let t = sim(1, 1, true).await;
    let h = t.sim.human_ids()[0].clone();
    let list = t.call("list_active_projects_with_agents", json!({})).await.unwrap();
    assert!(list["projects"][0]["agents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| *a == json!(h)));
    let managed = t.call("list_managed_agents", json!({})).await.unwrap();
    assert!(
        !managed["agent_ids"].as_array().unwrap().iter().any(|a| *a == json!(h)),
        "humans are not managed agents"
    );
    // get_agent_action never checks the agent's type.
    assert_eq!(t.action(&h).await["action"], "start");
    t.sim.set_agent_provider(&t.a, "openai");
    assert_eq!(t.action(&t.a).await["provider"], "openai");
    let c = reqwest::Client::new();
    let base = t.sim.http_base().unwrap();
    let cfg: Value = c
        .get(format!("{base}/api/coordinator/config"))
        .bearer_auth(t.sim.coordinator_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["agents"][&h], json!({}), "a human has no passkey: {cfg}");
    assert!(cfg["agents"][&t.a]["passkey"].is_string());
    assert!(cfg.get("root_agent_id").is_none() && cfg["ai_providers"]["gemini"]["cli_command"] == "gemini");
    let r = c
        .get(format!("{base}/api/coordinator/config?root_agent_id={}", t.a))
        .bearer_auth(t.sim.coordinator_token())
        .send()
        .await
        .unwrap();
    let cfg: Value = r.json().await.unwrap();
    assert!(cfg["agents"].get(&h).is_none());
    // Wrong token over HTTP: 401 with the server's message; the counters endpoint is guarded the same way.
    let r = c
        .post(format!("{base}/mcp"))
        .bearer_auth("nope")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Invalid coordinator token"})
    );
    let st: Value = c
        .get(format!("{base}/sim/stats"))
        .bearer_auth(t.sim.coordinator_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["leases_taken"], 2);
}

#[tokio::test]
async fn an_outage_drops_connections_and_the_server_comes_back_with_its_state() {
    let t = sim(1, 0, true).await;
    assert_eq!(t.action(&t.a).await["action"], "start");
    let h = t
        .sim
        .schedule_outage(Duration::from_millis(50), Duration::from_millis(400));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(t.sim.is_down());
    assert!(
        t.call("health_check", json!({})).await.is_err(),
        "answered during the outage"
    );
    let c = reqwest::Client::new();
    assert!(c
        .get(format!("{}/health", t.sim.http_base().unwrap()))
        .send()
        .await
        .is_err());
    h.await.unwrap();
    assert!(!t.sim.is_down());
    assert_eq!(
        t.action(&t.a).await["reason"],
        "spawn_in_progress",
        "state kept across the outage"
    );
    assert!(c
        .get(format!("{}/health", t.sim.http_base().unwrap()))
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
}

#[tokio::test]
async fn tools_list_carries_the_servers_input_schemas() {
    let t = sim(1, 0, false).await;
    let s = tokio::net::UnixStream::connect(t.sim.socket_path().unwrap())
        .await
        .unwrap();
    let (r, mut w) = s.into_split();
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"id\":1}\n")
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&BufReader::new(r).lines().next_line().await.unwrap().unwrap()).unwrap();
    let tools = v["result"]["tools"].as_array().unwrap();
    let auth = tools.iter().find(|t| t["name"] == "authenticate").unwrap();
    assert_eq!(
        auth["inputSchema"]["required"],
        json!(["agent_id", "passkey", "project_id"])
    );
    let next = tools.iter().find(|t| t["name"] == "get_next_action").unwrap();
    assert_eq!(next["inputSchema"]["properties"]["timeout_seconds"]["type"], "integer");
    assert!(tools.iter().all(|t| t["description"]
        .as_str()
        .is_some_and(|d| d != t["name"].as_str().unwrap())));
}

#[tokio::test]
async fn refill_keeps_a_pair_in_work_and_gives_each_run_a_length() {
    let t = sim(1, 0, false).await;
    t.sim.set_refill(Some(pm_sim::Refill {
        items: 2,
        run_ms: (1000, 3000),
        seed: 42,
        warmup: None,
    }));
    let mut lengths = Vec::new();
    for round in 1..=3 {
        assert_eq!(
            t.action(&t.a).await["action"],
            "start",
            "round {round}: the pair ran out of work"
        );
        let s = t.auth(&t.a).await;
        assert_eq!(s["success"], true, "{s}");
        let ms = s["sim_behavior"]["work_ms"].as_u64().expect("a run length");
        assert!((1000..=3000).contains(&ms), "{ms}");
        lengths.push(ms);
        let task = t.agent("get_my_task", &s, json!({})).await.unwrap();
        assert_eq!(task["task"]["id"], format!("tsk_{}_{}_{round}", t.a, t.p));
        t.agent("report_completed", &s, json!({"result": "success"}))
            .await
            .unwrap();
        t.agent("logout", &s, json!({})).await.unwrap();
    }
    let st = t.sim.stats();
    assert_eq!(st.completed_items, 3);
    // One item at first, then refills of 2 whenever it ran out: after 3 completions, 1 + 2 - 3 = 0 → refilled again.
    assert_eq!(st.refilled_items, 4);
    assert_eq!(
        st.remaining_items,
        2 + 1,
        "the other agent's item and this pair's refill"
    );
    assert!(!t.sim.all_done());
    // A failing agent fails after a sixth of its run.
    t.sim
        .set_agent_behavior(&t.a, pm_sim::AgentBehavior::QuotaResetsIn { secs: 90 });
    let s = t.auth(&t.a).await;
    assert_eq!(s["sim_behavior"]["mode"], "quota");
    assert_eq!(s["sim_behavior"]["resets_in_secs"], 90);
    assert!(s["sim_behavior"]["work_ms"].as_u64().unwrap() <= 500);
    // The same seed gives the same lengths.
    let u = sim(1, 0, false).await;
    u.sim.set_refill(Some(pm_sim::Refill {
        items: 2,
        run_ms: (1000, 3000),
        seed: 42,
        warmup: None,
    }));
    let s = u.auth(&u.a).await;
    assert_eq!(s["sim_behavior"]["work_ms"].as_u64(), Some(lengths[0]));
}
