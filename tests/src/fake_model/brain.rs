//! The scripted "model": from the tools a CLI offers and the tool calls/results already in the conversation,
//! the next step, as a model following the coordinator's prompt would take it: `authenticate` (no
//! arguments) → `get_next_action` → what its `action` says (`report_execution_start` + `report_completed`
//! for a task, `get_pending_messages` for a chat, `logout`) → a final text. Stateless: every request carries
//! the whole conversation, so concurrent agents need no bookkeeping here.
use serde_json::{json, Value};

/// The PM tools the script may call, by their server-side names. Each CLI prefixes them its own way.
pub const KNOWN_TOOLS: &[&str] = &[
    "authenticate",
    "get_next_action",
    "report_execution_start",
    "report_execution_complete",
    "report_completed",
    "get_pending_messages",
    "logout",
];

/// A tool call or result as a wire format decoded it (name as the CLI spelled it).
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    /// The result text the CLI sent back (None if the call has no result yet).
    pub result: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Call this tool (the CLI's own name for it) with these arguments.
    Call { name: String, args: Value },
    /// End the turn with this text.
    Text(String),
}

/// The server-side name of a CLI's tool name (`mcp__agent-pm__logout`, `mcp_agent-pm_logout`,
/// `mcp__agent_pm::logout` (a Codex namespace), `logout` → `logout`).
pub fn short_name(cli_name: &str) -> Option<&'static str> {
    KNOWN_TOOLS
        .iter()
        .copied()
        .filter(|k| {
            cli_name == *k
                || [format!("_{k}"), format!(":{k}")]
                    .iter()
                    .any(|x| cli_name.ends_with(x.as_str()))
        })
        .max_by_key(|k| k.len())
}

/// The CLI's name for a server-side tool among those offered (the shortest match, so `logout` never picks
/// some `..._logout` of another server).
fn offered<'a>(tools: &'a [String], short: &str) -> Option<&'a String> {
    tools
        .iter()
        .filter(|t| short_name(t) == Some(short))
        .min_by_key(|t| t.len())
}

/// Every JSON object inside `text`, unwrapping JSON-in-strings (CLIs wrap MCP results in their own envelopes).
fn objects_in(v: &Value, out: &mut Vec<serde_json::Map<String, Value>>, depth: usize) {
    if depth > 6 {
        return;
    }
    match v {
        Value::Object(m) => {
            out.push(m.clone());
            m.values().for_each(|x| objects_in(x, out, depth + 1));
        }
        Value::Array(a) => a.iter().for_each(|x| objects_in(x, out, depth + 1)),
        Value::String(s) => {
            // The JSON may be wrapped in prose or markup (Gemini CLI: `<untrusted_context>…</untrusted_context>`).
            let t = s.trim();
            let inner = serde_json::from_str::<Value>(t)
                .ok()
                .filter(|v| v.is_object() || v.is_array())
                .or_else(|| {
                    let (a, b) = (t.find('{')?, t.rfind('}')?);
                    (a < b).then(|| serde_json::from_str::<Value>(&t[a..=b]).ok()).flatten()
                });
            if let Some(inner) = inner {
                objects_in(&inner, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// The first object in a result text having `key`.
fn field(result: &str, key: &str) -> Option<Value> {
    let mut objs = Vec::new();
    objects_in(&Value::String(result.to_string()), &mut objs, 0);
    objs.into_iter().find_map(|o| o.get(key).cloned())
}

fn session_of(steps: &[Step]) -> Option<String> {
    steps
        .iter()
        .rev()
        .filter(|s| short_name(&s.name) == Some("authenticate"))
        .find_map(|s| {
            field(s.result.as_deref()?, "session_token")?
                .as_str()
                .map(str::to_string)
        })
}

/// The next step. `tools` are the tool names the CLI offered in this request.
pub fn decide(tools: &[String], steps: &[Step]) -> Decision {
    let call = |short: &str, args: Value| match offered(tools, short) {
        Some(n) => Decision::Call { name: n.clone(), args },
        None => Decision::Text(format!(
            "I cannot continue: the agent-pm tool `{short}` is not offered (tools: {tools:?})."
        )),
    };
    // Bound the conversation like a model with a turn budget would stop.
    if steps.len() > 24 {
        return Decision::Text("Stopping: too many tool calls.".into());
    }
    let Some(last) = steps.last() else {
        if tools.is_empty() {
            // A side request without tools (e.g. a title or a classifier): answer briefly.
            return Decision::Text("OK".into());
        }
        return call("authenticate", json!({}));
    };
    let result = last.result.clone().unwrap_or_default();
    let session = session_of(steps);
    let with_session = |extra: Value| {
        let mut a = json!({"session_token": session.clone().unwrap_or_default()});
        if let (Some(o), Value::Object(e)) = (a.as_object_mut(), extra) {
            o.extend(e);
        }
        a
    };
    match short_name(&last.name) {
        Some("authenticate") => {
            if field(&result, "success") != Some(Value::Bool(true)) || session.is_none() {
                return Decision::Text("Authentication did not succeed; exiting as instructed.".into());
            }
            call("get_next_action", with_session(json!({})))
        }
        Some("get_next_action") => match field(&result, "action").as_ref().and_then(Value::as_str) {
            Some("execute") => {
                let task = field(&result, "task_id")
                    .and_then(|t| t.as_str().map(str::to_string))
                    .unwrap_or_default();
                call("report_execution_start", with_session(json!({"task_id": task})))
            }
            Some("get_pending_messages") => call("get_pending_messages", with_session(json!({}))),
            Some("logout") => call("logout", with_session(json!({}))),
            Some(other) => Decision::Text(format!("The server said `{other}`; stopping.")),
            None => Decision::Text(format!(
                "get_next_action gave no action: {}",
                result.chars().take(200).collect::<String>()
            )),
        },
        Some("report_execution_start") => call(
            "report_completed",
            with_session(json!({"result": "success", "summary": "Simulated work done."})),
        ),
        Some("report_completed") | Some("get_pending_messages") | Some("report_execution_complete") => {
            call("get_next_action", with_session(json!({})))
        }
        Some("logout") => Decision::Text("Logged out. All work is done.".into()),
        _ => Decision::Text(format!("Unexpected tool `{}`; stopping.", last.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<String> {
        KNOWN_TOOLS
            .iter()
            .map(|t| format!("mcp__agent-pm__{t}"))
            .chain(["Bash".to_string()])
            .collect()
    }

    fn step(name: &str, result: &str) -> Step {
        Step {
            name: format!("mcp__agent-pm__{name}"),
            result: Some(result.into()),
        }
    }

    #[test]
    fn a_task_session_from_authenticate_to_logout() {
        let t = tools();
        assert_eq!(
            decide(&t, &[]),
            Decision::Call {
                name: "mcp__agent-pm__authenticate".into(),
                args: json!({})
            }
        );
        // Results arrive wrapped (Claude: content array; Gemini: {"output": "..."}).
        let auth = json!([{"type": "text", "text": "{\n  \"session_token\" : \"sess_1\",\n  \"success\" : true\n}"}])
            .to_string();
        let mut h = vec![step("authenticate", &auth)];
        assert_eq!(
            decide(&t, &h),
            Decision::Call {
                name: "mcp__agent-pm__get_next_action".into(),
                args: json!({"session_token": "sess_1"})
            }
        );
        h.push(step("get_next_action", &json!({"output": "<untrusted_context>\n{\"action\":\"execute\",\"task_id\":\"tsk_9\"}\n</untrusted_context>"}).to_string()));
        assert_eq!(
            decide(&t, &h),
            Decision::Call {
                name: "mcp__agent-pm__report_execution_start".into(),
                args: json!({"session_token": "sess_1", "task_id": "tsk_9"})
            }
        );
        h.push(step("report_execution_start", "{\"success\":true}"));
        assert!(matches!(decide(&t, &h), Decision::Call { name, .. } if name.ends_with("__report_completed")));
        h.push(step("report_completed", "{\"success\":true}"));
        h.push(step("get_next_action", "{\"action\":\"logout\"}"));
        assert_eq!(
            decide(&t, &h),
            Decision::Call {
                name: "mcp__agent-pm__logout".into(),
                args: json!({"session_token": "sess_1"})
            }
        );
        h.push(step("logout", "{\"success\":true}"));
        assert!(matches!(decide(&t, &h), Decision::Text(_)));
    }

    #[test]
    fn failed_authentication_and_missing_tools_end_the_turn() {
        let h = vec![step("authenticate", "{\"success\":false,\"action\":\"exit\"}")];
        assert!(matches!(decide(&tools(), &h), Decision::Text(t) if t.contains("did not succeed")));
        assert!(matches!(decide(&["Bash".into()], &[]), Decision::Text(t) if t.contains("not offered")));
        assert_eq!(short_name("agent-pm__report_completed"), Some("report_completed"));
        assert_eq!(short_name("mcp_agent-pm_logout"), Some("logout"));
        assert_eq!(short_name("Bash"), None);
        assert_eq!(short_name("mcp__agent_pm::get_next_action"), Some("get_next_action"));
    }
}
