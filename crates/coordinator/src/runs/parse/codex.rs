//! Codex `exec --json` (0.171): `thread.started` (thread id = session), `turn.started`, `turn.completed`
//! (the turn's usage), `turn.failed`, `item.started` / `item.updated` / `item.completed` (agent messages,
//! commands, MCP tool calls, …) and `error`. No cost and no end summary: the record sums the turns.
use super::{lenient, Provider};
use crate::runs::events::{RunEvent, TokenUsage};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Default)]
pub struct Codex;

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, deserialize_with = "lenient")]
    thread_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<Usage>,
    #[serde(default, deserialize_with = "lenient")]
    error: Option<ErrorInfo>,
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
    #[serde(default)]
    item: Option<Item>,
}

#[derive(Deserialize)]
struct Usage {
    /// Includes the cached input tokens.
    #[serde(default, deserialize_with = "lenient")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cached_input_tokens: Option<u64>,
    /// Reasoning tokens are part of it (OpenAI counts them as output).
    #[serde(default, deserialize_with = "lenient")]
    output_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorInfo {
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    text: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
    /// `mcp_tool_call`: the tool; `command_execution`: the command line.
    #[serde(default, deserialize_with = "lenient")]
    tool: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    command: Option<String>,
    /// An `error` item.
    #[serde(default, deserialize_with = "lenient")]
    message: Option<String>,
}

const TOOL_ITEMS: &[&str] = &[
    "command_execution",
    "mcp_tool_call",
    "file_change",
    "web_search",
    "collab_tool_call",
];

impl Provider for Codex {
    fn event(&mut self, json: &str, out: &mut Vec<RunEvent>) -> bool {
        let Ok(l) = serde_json::from_str::<Line>(json) else {
            return false;
        };
        match l.kind.as_ref() {
            "thread.started" => out.push(RunEvent::Init {
                session_id: l.thread_id,
                model: None,
            }),
            "turn.started" => {}
            "turn.completed" => {
                if let Some(u) = l.usage {
                    let cached = u.cached_input_tokens.unwrap_or(0);
                    out.push(RunEvent::Usage(TokenUsage {
                        input: u.input_tokens.unwrap_or(0).saturating_sub(cached),
                        output: u.output_tokens.unwrap_or(0),
                        cache_read: cached,
                        cache_write: 0,
                    }));
                }
                out.push(RunEvent::TurnDone);
            }
            "turn.failed" => {
                out.push(RunEvent::Error {
                    message: l.error.and_then(|e| e.message).unwrap_or_else(|| "turn failed".into()),
                    fatal: true,
                });
                out.push(RunEvent::TurnDone);
            }
            "error" => out.push(RunEvent::Error {
                message: l.message.unwrap_or_default(),
                fatal: true,
            }),
            "item.started" | "item.updated" | "item.completed" => {
                let Some(item) = l.item else { return true };
                let kind = item.kind.as_deref().unwrap_or("");
                let completed = l.kind == "item.completed";
                match kind {
                    "agent_message" if completed => out.push(RunEvent::Message {
                        text: item.text.unwrap_or_default(),
                        delta: false,
                    }),
                    "error" if completed => out.push(RunEvent::Error {
                        message: item.message.unwrap_or_default(),
                        fatal: false,
                    }),
                    k if TOOL_ITEMS.contains(&k) => {
                        if l.kind == "item.started" {
                            out.push(RunEvent::ToolUse {
                                name: item.tool.or(item.command).unwrap_or_else(|| k.to_string()),
                            });
                        } else if completed {
                            out.push(RunEvent::ToolResult {
                                is_error: item.status.as_deref() == Some("failed"),
                            });
                        }
                    }
                    _ => {}
                }
            }
            _ => out.push(RunEvent::Raw(json.to_string())),
        }
        true
    }
}
