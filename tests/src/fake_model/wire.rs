//! The three wire formats: decode a request into (tools offered, tool steps so far), encode a decision as
//! the streamed reply the CLI expects, and each provider's error body for a scripted 401/429.
use super::brain::{Decision, Step};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    Gemini,
    OpenAi,
}

fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

/// Tool names the request offers.
pub fn tools(wire: Wire, body: &Value) -> Vec<String> {
    match wire {
        Wire::Anthropic => names(body.get("tools")),
        Wire::Gemini => body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| names(t.get("functionDeclarations")))
            .collect(),
        // Responses tools are `{type: "function", name}`. Codex 0.171 groups each MCP server's tools in a
        // `{type: "namespace", name: "mcp__agent_pm", tools: [...]}`; those are named `<namespace>::<tool>` here.
        Wire::OpenAi => body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| match (t["type"].as_str(), t["name"].as_str()) {
                (Some("namespace"), Some(ns)) => names(t.get("tools"))
                    .into_iter()
                    .map(|n| format!("{ns}::{n}"))
                    .collect(),
                _ => t["name"]
                    .as_str()
                    .or(t["function"]["name"].as_str())
                    .map(str::to_string)
                    .into_iter()
                    .collect::<Vec<_>>(),
            })
            .collect(),
    }
}

/// Tool calls and their results, in conversation order.
pub fn steps(wire: Wire, body: &Value) -> Vec<Step> {
    let mut out: Vec<(String, Step)> = Vec::new();
    let fill = |out: &mut Vec<(String, Step)>, key: &str, by_name: bool, result: String| {
        let slot = out
            .iter_mut()
            .rev()
            .find(|(k, s)| s.result.is_none() && if by_name { s.name == key } else { k == key });
        if let Some((_, s)) = slot {
            s.result = Some(result);
        }
    };
    match wire {
        Wire::Anthropic => {
            for m in body["messages"].as_array().into_iter().flatten() {
                for b in m["content"].as_array().into_iter().flatten() {
                    match b["type"].as_str() {
                        Some("tool_use") => out.push((
                            b["id"].as_str().unwrap_or("").into(),
                            Step {
                                name: b["name"].as_str().unwrap_or("").into(),
                                result: None,
                            },
                        )),
                        Some("tool_result") => fill(
                            &mut out,
                            b["tool_use_id"].as_str().unwrap_or(""),
                            false,
                            b["content"].to_string(),
                        ),
                        _ => {}
                    }
                }
            }
        }
        Wire::Gemini => {
            for c in body["contents"].as_array().into_iter().flatten() {
                for p in c["parts"].as_array().into_iter().flatten() {
                    if let Some(fc) = p.get("functionCall") {
                        out.push((
                            String::new(),
                            Step {
                                name: fc["name"].as_str().unwrap_or("").into(),
                                result: None,
                            },
                        ));
                    } else if let Some(fr) = p.get("functionResponse") {
                        fill(
                            &mut out,
                            fr["name"].as_str().unwrap_or(""),
                            true,
                            fr["response"].to_string(),
                        );
                    }
                }
            }
        }
        Wire::OpenAi => {
            for i in body["input"].as_array().into_iter().flatten() {
                match i["type"].as_str() {
                    Some("function_call") => {
                        let name = i["name"].as_str().unwrap_or("");
                        let name = i["namespace"]
                            .as_str()
                            .map_or_else(|| name.to_string(), |ns| format!("{ns}::{name}"));
                        out.push((i["call_id"].as_str().unwrap_or("").into(), Step { name, result: None }))
                    }
                    Some("function_call_output") => fill(
                        &mut out,
                        i["call_id"].as_str().unwrap_or(""),
                        false,
                        i["output"].to_string(),
                    ),
                    _ => {}
                }
            }
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// The streamed (server-sent events) reply carrying `d`. `n` numbers ids so they are unique per reply.
pub fn stream(wire: Wire, model: &str, d: &Decision, n: u64) -> String {
    match wire {
        Wire::Anthropic => {
            let mut s = sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": {"id": format!("msg_fake{n}"), "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 100, "output_tokens": 1}}}),
            );
            let (start, delta, stop_reason) = match d {
                Decision::Call { name, args } => (
                    json!({"type": "tool_use", "id": format!("toolu_fake{n}"), "name": name, "input": {}}),
                    json!({"type": "input_json_delta", "partial_json": args.to_string()}),
                    "tool_use",
                ),
                Decision::Text(t) => (
                    json!({"type": "text", "text": ""}),
                    json!({"type": "text_delta", "text": t}),
                    "end_turn",
                ),
            };
            s += &sse(
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": 0, "content_block": start}),
            );
            s += &sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            );
            s += &sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": 0}),
            );
            s += &sse(
                Some("message_delta"),
                &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 20}}),
            );
            s + &sse(Some("message_stop"), &json!({"type": "message_stop"}))
        }
        Wire::Gemini => sse(None, &gemini_response(model, d)),
        Wire::OpenAi => {
            let id = format!("resp_fake{n}");
            let item = match d {
                Decision::Call { name, args } => {
                    let mut item = json!({"type": "function_call", "id": format!("fc_fake{n}"), "call_id": format!("call_fake{n}"), "name": name, "arguments": args.to_string(), "status": "completed"});
                    if let Some((ns, tool)) = name.split_once("::") {
                        item["namespace"] = ns.into();
                        item["name"] = tool.into();
                    }
                    item
                }
                Decision::Text(t) => {
                    json!({"type": "message", "id": format!("msg_fake{n}"), "role": "assistant", "status": "completed", "content": [{"type": "output_text", "text": t, "annotations": []}]})
                }
            };
            let usage = json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 120});
            let created =
                json!({"id": id, "object": "response", "status": "in_progress", "model": model, "output": []});
            let mut s = sse(
                Some("response.created"),
                &json!({"type": "response.created", "response": created}),
            );
            s += &sse(
                Some("response.output_item.added"),
                &json!({"type": "response.output_item.added", "output_index": 0, "item": item}),
            );
            s += &sse(
                Some("response.output_item.done"),
                &json!({"type": "response.output_item.done", "output_index": 0, "item": item}),
            );
            let done = json!({"id": id, "object": "response", "status": "completed", "model": model, "output": [item], "usage": usage});
            s + &sse(
                Some("response.completed"),
                &json!({"type": "response.completed", "response": done}),
            )
        }
    }
}

/// One Gemini `GenerateContentResponse` (a streamed chunk, or the whole non-streamed reply).
pub fn gemini_response(model: &str, d: &Decision) -> Value {
    let part = match d {
        Decision::Call { name, args } => json!({"functionCall": {"name": name, "args": args}}),
        Decision::Text(t) => json!({"text": t}),
    };
    json!({
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120},
        "modelVersion": model
    })
}

/// The body each provider sends with a 401 or 429 (shapes as their public APIs document them).
pub fn error_body(wire: Wire, status: u16) -> Value {
    let quota = status == 429;
    match wire {
        Wire::Anthropic if quota => {
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "This request would exceed your account's rate limit. Please try again later."}})
        }
        Wire::Anthropic => {
            json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        }
        Wire::Gemini if quota => {
            json!({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}})
        }
        Wire::Gemini => {
            json!({"error": {"code": 401, "message": "API key not valid. Please pass a valid API key.", "status": "UNAUTHENTICATED"}})
        }
        Wire::OpenAi if quota => {
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})
        }
        Wire::OpenAi => {
            json!({"error": {"message": "Incorrect API key provided: dummy.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
        }
    }
}
