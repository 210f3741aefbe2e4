//! Gemini CLI `--output-format stream-json` (0.61): `init` (session id, model), `message` (assistant text
//! as deltas), `tool_use`, `tool_result`, `error` (severity "warning" | "error"), and `result` with
//! `status` and `stats` (tokens, duration). No cost: the record estimates it from the price table.
use super::{lenient, Provider};
use crate::runs::events::{RunEvent, RunResult, TokenUsage};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Default)]
pub struct Gemini;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, deserialize_with = "lenient")]
    session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    model: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    role: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    content: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    delta: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    tool_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    severity: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    error: Option<ErrorInfo>,
    #[serde(default, deserialize_with = "lenient")]
    stats: Option<Stats>,
}

#[derive(Deserialize)]
struct ErrorInfo {
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Stats {
    /// Prompt tokens, cached ones included.
    #[serde(default, deserialize_with = "lenient")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cached: Option<u64>,
    /// Prompt tokens not from the cache (prompt − cached).
    #[serde(default, deserialize_with = "lenient")]
    input: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    duration_ms: Option<u64>,
}

impl Provider for Gemini {
    fn event(&mut self, json: &str, out: &mut Vec<RunEvent>) -> bool {
        let Ok(l) = serde_json::from_str::<Line>(json) else {
            return false;
        };
        match l.kind.as_ref() {
            "init" => out.push(RunEvent::Init {
                session_id: l.session_id,
                model: l.model,
            }),
            "message" => {
                if l.role.as_deref() == Some("assistant") {
                    out.push(RunEvent::Message {
                        text: l.content.unwrap_or_default(),
                        delta: l.delta.unwrap_or(false),
                    });
                }
            }
            "tool_use" => out.push(RunEvent::ToolUse {
                name: l.tool_name.unwrap_or_default(),
            }),
            "tool_result" => out.push(RunEvent::ToolResult {
                is_error: l.status.as_deref() == Some("error"),
            }),
            "error" => out.push(RunEvent::Error {
                message: l.message.unwrap_or_default(),
                fatal: l.severity.as_deref() == Some("error"),
            }),
            "result" => {
                let is_error = l.status.as_deref() != Some("success");
                let usage = l.stats.as_ref().map(|s| {
                    let cached = s.cached.unwrap_or(0);
                    let input = s
                        .input
                        .unwrap_or_else(|| s.input_tokens.unwrap_or(0).saturating_sub(cached));
                    TokenUsage {
                        input,
                        output: s.output_tokens.unwrap_or(0),
                        cache_read: cached,
                        cache_write: 0,
                    }
                });
                let error = l.error.map(|e| match (e.kind, e.message) {
                    (Some(k), Some(m)) => format!("{k}: {m}"),
                    (k, m) => m.or(k).unwrap_or_default(),
                });
                out.push(RunEvent::Result(RunResult {
                    is_error,
                    status: l.status,
                    num_turns: None,
                    // Error results report 0 ms; the record then keeps the wall-clock duration.
                    duration_ms: l.stats.as_ref().and_then(|s| s.duration_ms).filter(|d| *d > 0),
                    cost_usd: None,
                    usage,
                    text: None,
                    error,
                    session_id: l.session_id,
                }))
            }
            _ => out.push(RunEvent::Raw(json.to_string())),
        }
        true
    }
}
