//! The fake model over real HTTP: each wire format answers with the script's next step, bodies are
//! recorded and searched for secrets, scripted errors and unknown paths are visible.
use super::FakeModel;
use serde_json::json;

async fn post(m: &FakeModel, path: &str, body: serde_json::Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", m.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn each_wire_format_gets_the_next_call_and_secrets_are_counted() {
    let m = FakeModel::start().await.unwrap();
    let (s, sse) = post(&m, "/v1/messages?beta=true", json!({"model": "claude-x", "stream": true, "tools": [{"name": "mcp__agent-pm__authenticate"}], "messages": [{"role": "user", "content": "go"}]})).await;
    assert_eq!(s, 200);
    assert!(
        sse.contains("event: message_start")
            && sse.contains("\"name\":\"mcp__agent-pm__authenticate\"")
            && sse.contains("\"stop_reason\":\"tool_use\""),
        "{sse}"
    );
    // Gemini: a wrapped authenticate result leads to get_next_action with the session token.
    let auth = "<untrusted_context>\n{\"success\": true, \"session_token\": \"sess_abc\"}\n</untrusted_context>";
    let body = json!({"tools": [{"functionDeclarations": [{"name": "mcp_agent-pm_authenticate"}, {"name": "mcp_agent-pm_get_next_action"}]}],
        "contents": [{"role": "user", "parts": [{"text": "working dir /p/pk-secret-1"}]},
                     {"role": "model", "parts": [{"functionCall": {"name": "mcp_agent-pm_authenticate", "args": {}}}]},
                     {"role": "user", "parts": [{"functionResponse": {"name": "mcp_agent-pm_authenticate", "response": {"output": auth}}}]}]});
    let (s, sse) = post(&m, "/v1beta/models/gemini-x:streamGenerateContent?alt=sse", body).await;
    assert_eq!(s, 200);
    assert!(
        sse.starts_with("data: ")
            && sse.contains("\"name\":\"mcp_agent-pm_get_next_action\"")
            && sse.contains("sess_abc"),
        "{sse}"
    );
    // Codex: namespaced tools are called with `namespace` + `name`.
    let body = json!({"model": "gpt-x", "tools": [{"type": "namespace", "name": "mcp__agent_pm", "tools": [{"type": "function", "name": "authenticate"}]}], "input": []});
    let (_, sse) = post(&m, "/v1/responses", body).await;
    assert!(
        sse.contains("\"namespace\":\"mcp__agent_pm\"")
            && sse.contains("\"name\":\"authenticate\"")
            && sse.contains("response.completed"),
        "{sse}"
    );
    assert_eq!(m.bodies_containing(&["pk-secret-1".into()]), 1);
    assert_eq!(m.bodies_containing(&["never-sent".into(), String::new()]), 0);
    assert!(m.unknown_paths().is_empty());
}

#[tokio::test]
async fn scripted_errors_and_unknown_paths() {
    let m = FakeModel::start().await.unwrap();
    m.fail_with(429);
    let (s, b) = post(&m, "/v1/messages", json!({"messages": []})).await;
    assert_eq!((s, b.contains("rate_limit_error")), (429, true), "{b}");
    m.fail_with(401);
    let (s, b) = post(&m, "/v1/responses", json!({"input": []})).await;
    assert_eq!((s, b.contains("invalid_api_key")), (401, true), "{b}");
    let (s, _) = post(&m, "/v2/whatever", json!({})).await;
    assert_eq!(s, 404);
    assert_eq!(m.unknown_paths(), vec!["POST /v2/whatever".to_string()]);
}
