//! The simulator speaks the server's protocol: framing, envelopes, handshake, errors, HTTP auth.

use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

async fn sim(http: bool) -> (tempfile::TempDir, pm_sim::Simulator) {
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
    if http {
        cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    }
    let s = pm_sim::Simulator::start(cfg).await.unwrap();
    (dir, s)
}

fn call(id: u64, tool: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}, "id": id}).to_string()
        + "\n"
}

fn text(v: &Value) -> Value {
    serde_json::from_str(v["result"]["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn one_connection_carries_a_whole_session_and_garbage_gets_no_reply() {
    let (_d, s) = sim(false).await;
    let stream = tokio::net::UnixStream::connect(s.socket_path().unwrap()).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"initialize\",\"id\":1}\n")
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["result"]["serverInfo"]["name"], "mcp-server-pm");
    // A notification and a line that is not JSON: no reply to either; the connection stays usable.
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\nthis is not json\n")
        .await
        .unwrap();
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\",\"id\":\"two\"}\n")
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["id"], "two");
    assert!(v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "get_agent_action"));
    let tok = s.coordinator_token();
    w.write_all(call(3, "health_check", json!({"coordinator_token": tok})).as_bytes())
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(text(&v)["status"], "ok");
    // The lease: start, then hold spawn_in_progress until the agent authenticates.
    let (a, p) = (s.agent_ids()[0].clone(), s.project_ids()[0].clone());
    w.write_all(
        call(
            4,
            "get_agent_action",
            json!({"coordinator_token": tok, "agent_id": a, "project_id": p}),
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(text(&v)["action"], "start");
    w.write_all(
        call(
            5,
            "get_agent_action",
            json!({"coordinator_token": tok, "agent_id": a, "project_id": p}),
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(text(&v)["reason"], "spawn_in_progress");
    // Wrong token: an isError result with the server's text, and a recorded violation.
    w.write_all(call(6, "health_check", json!({"coordinator_token": "nope"})).as_bytes())
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["result"]["isError"], true);
    assert!(v["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("Error: Invalid coordinator token"));
    assert_eq!(s.violations().len(), 1);
    // Unknown method.
    w.write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"bogus\",\"id\":7}\n")
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["error"]["code"], -32601);
}

#[tokio::test]
async fn http_checks_the_bearer_like_the_server() {
    let (_d, s) = sim(true).await;
    let c = reqwest::Client::new();
    let url = s.mcp_url().unwrap();
    let body = json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "health_check", "arguments": {"coordinator_token": s.coordinator_token()}}, "id": 1});
    let r = c.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Authorization header required"})
    );
    let r = c.post(&url).bearer_auth("wrong").json(&body).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Invalid coordinator token"})
    );
    let r = c
        .post(&url)
        .bearer_auth(s.coordinator_token())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(text(&r.json::<Value>().await.unwrap())["status"], "ok");
    let r = c
        .post(&url)
        .bearer_auth(s.coordinator_token())
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"code": -32700, "message": "Parse error"}, "jsonrpc": "2.0"})
    );
    let cfg: Value = c
        .get(format!("{}/api/coordinator/config", s.http_base().unwrap()))
        .bearer_auth(s.coordinator_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cfg["max_concurrent"], 3);
    assert!(cfg["agents"].as_object().unwrap().contains_key(&s.agent_ids()[0]));
    tokio::time::timeout(Duration::from_secs(5), s.shutdown())
        .await
        .unwrap();
}
