//! Claude Code `--output-format stream-json --verbose`: `system`/`init`, `assistant` (with the message's
//! usage), `user` (tool results), `rate_limit_event`, and a final `result` with turns, duration, cost and
//! the run's total usage.
use super::{lenient, Provider};
use crate::runs::events::{RunEvent, RunResult, TokenUsage};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Default)]
pub struct Claude {
    /// Claude prints one `assistant` line per content block, each repeating its message's usage so far:
    /// only the growth since the last line of the same message is new.
    last_message: Option<(String, TokenUsage)>,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, deserialize_with = "lenient")]
    subtype: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    session_id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    model: Option<String>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default, deserialize_with = "lenient")]
    is_error: Option<bool>,
    #[serde(default, deserialize_with = "lenient")]
    num_turns: Option<u32>,
    #[serde(default, deserialize_with = "lenient")]
    duration_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    total_cost_usd: Option<f64>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<Usage>,
    #[serde(default, deserialize_with = "lenient")]
    result: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    errors: Option<Vec<String>>,
    /// The HTTP status of a failed model call (Claude Code 2.1: `"api_error_status":401`).
    #[serde(default, deserialize_with = "lenient")]
    api_error_status: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    rate_limit_info: Option<RateLimitInfo>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    usage: Option<Usage>,
    /// A string (plain user text) or a list of blocks; only blocks carry what we need.
    #[serde(default, deserialize_with = "blocks")]
    content: Vec<Block>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type", default, deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    text: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    is_error: Option<bool>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default, deserialize_with = "lenient")]
    input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "lenient")]
    cache_creation_input_tokens: Option<u64>,
}

impl Usage {
    fn tokens(&self) -> TokenUsage {
        TokenUsage {
            input: self.input_tokens.unwrap_or(0),
            output: self.output_tokens.unwrap_or(0),
            cache_read: self.cache_read_input_tokens.unwrap_or(0),
            cache_write: self.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct RateLimitInfo {
    #[serde(default, deserialize_with = "lenient")]
    status: Option<String>,
    /// Unix seconds.
    #[serde(rename = "resetsAt", default, deserialize_with = "lenient")]
    resets_at: Option<f64>,
    #[serde(rename = "rateLimitType", default, deserialize_with = "lenient")]
    rate_limit_type: Option<String>,
}

fn blocks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Block>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content {
        Blocks(Vec<Block>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Content::deserialize(d)? {
        Content::Blocks(b) => b,
        Content::Other(_) => Vec::new(),
    })
}

impl Provider for Claude {
    fn event(&mut self, json: &str, out: &mut Vec<RunEvent>) -> bool {
        let Ok(l) = serde_json::from_str::<Line>(json) else {
            return false;
        };
        match l.kind.as_ref() {
            "system" if l.subtype.as_deref() == Some("init") => out.push(RunEvent::Init {
                session_id: l.session_id,
                model: l.model,
            }),
            "assistant" => {
                let Some(m) = l.message else { return true };
                if let Some(u) = &m.usage {
                    let now = u.tokens();
                    let delta = match (&self.last_message, &m.id) {
                        (Some((id, before)), Some(mid)) if id == mid => now.minus(before),
                        _ => now,
                    };
                    self.last_message = m.id.clone().map(|id| (id, now));
                    if delta != TokenUsage::default() {
                        out.push(RunEvent::Usage(delta));
                    }
                }
                for b in m.content {
                    match b.kind.as_deref() {
                        Some("text") => out.push(RunEvent::Message {
                            text: b.text.unwrap_or_default(),
                            delta: false,
                        }),
                        Some("tool_use") => out.push(RunEvent::ToolUse {
                            name: b.name.unwrap_or_default(),
                        }),
                        _ => {}
                    }
                }
            }
            "user" => {
                for b in l.message.map(|m| m.content).unwrap_or_default() {
                    if b.kind.as_deref() == Some("tool_result") {
                        out.push(RunEvent::ToolResult {
                            is_error: b.is_error.unwrap_or(false),
                        });
                    }
                }
            }
            "rate_limit_event" => {
                let Some(i) = l.rate_limit_info else { return true };
                out.push(RunEvent::RateLimit {
                    status: i.status.unwrap_or_default(),
                    resets_at: i
                        .resets_at
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(|s| (s * 1000.0) as i64),
                    limit_type: i.rate_limit_type,
                });
            }
            "result" => {
                let is_error = l.is_error.unwrap_or(false) || l.subtype.as_deref().is_some_and(|s| s != "success");
                let error = if is_error {
                    l.errors
                        .map(|e| e.join("; "))
                        .filter(|e| !e.is_empty())
                        .or_else(|| l.result.clone())
                } else {
                    None
                };
                // Named as crate::exit::extract_error names it, so the record and the cooldown agree.
                let error = match (error, l.api_error_status) {
                    (Some(e), Some(s)) if !e.contains(&s.to_string()) => Some(format!("API Error ({s}): {e}")),
                    (None, Some(s)) if is_error => Some(format!("API Error ({s})")),
                    (e, _) => e,
                };
                out.push(RunEvent::Result(RunResult {
                    is_error,
                    status: l.subtype,
                    num_turns: l.num_turns,
                    duration_ms: l.duration_ms,
                    cost_usd: l.total_cost_usd,
                    usage: l.usage.map(|u| u.tokens()),
                    text: l.result,
                    error,
                    session_id: l.session_id,
                }))
            }
            // Partial-message deltas (`--include-partial-messages`) repeat what `assistant` lines say.
            "stream_event" => {}
            _ => out.push(RunEvent::Raw(json.to_string())),
        }
        true
    }
}
