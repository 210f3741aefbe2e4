//! One log line → one display item. Works on any of the streams the relay writes (Claude stream-json,
//! Gemini stream-json, Codex `exec --json`) without knowing which: their event types do not collide in a way
//! that matters for display, and a log can mix JSON events with plain text (stderr, the coordinator's notes).
//!
//! This is the display side of `runs::parse` (which keeps only what the run record needs: no tool inputs,
//! no result texts); it runs only on the lines of a window, a search hit or an error candidate, never on the
//! whole log at open time.
use serde::Serialize;
use serde_json::Value;

/// Longest text an item carries (the rest is summarized); a 5 MB tool result is not sent to the window whole.
pub const MAX_TEXT: usize = 64 * 1024;
/// Longest one-line preview of a collapsed item.
pub const MAX_PREVIEW: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    User,
    Assistant,
    ToolCall,
    ToolResult,
    Error,
    System,
    Raw,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Position in the transcript (0-based; blank lines are not items).
    pub index: usize,
    /// Line number in the log file (1-based).
    pub line: usize,
    pub kind: ItemKind,
    /// Full text (capped at [`MAX_TEXT`]): the message, the tool call's input, the result's output.
    pub text: String,
    /// The tool's name (tool calls), or the id of the call a result answers.
    pub tool: Option<String>,
    /// One line for the collapsed view.
    pub preview: String,
    pub is_error: bool,
}

/// What a line says, before it gets its place (`index`, `line`).
pub(crate) struct Shown {
    pub kind: ItemKind,
    pub text: String,
    pub tool: Option<String>,
    pub is_error: bool,
}

impl Shown {
    fn new(kind: ItemKind, text: impl Into<String>) -> Shown {
        Shown {
            kind,
            text: text.into(),
            tool: None,
            is_error: kind == ItemKind::Error,
        }
    }
    fn tool(mut self, t: Option<String>) -> Shown {
        self.tool = t;
        self
    }
    fn error(mut self, e: bool) -> Shown {
        self.is_error |= e;
        self
    }
    pub fn into_item(self, index: usize, line: usize) -> Item {
        let text = cap(self.text, MAX_TEXT);
        let preview = preview(&text);
        Item {
            index,
            line,
            kind: self.kind,
            text,
            tool: self.tool,
            preview,
            is_error: self.is_error,
        }
    }
}

/// Words that make a plain-text line an error line (checked ASCII-case-insensitively).
const ERROR_WORDS: &[&str] = &["error", "fatal", "panicked", "failed", "rejected", "denied"];
/// What an error line contains in its raw bytes, lowercased. A JSON event (a line starting with `{`) is an
/// error only through one of `JSON_ERROR_MARKS` (the CLIs write compact JSON; `"is_error":false` in every
/// tool result must not make each one a candidate); a text line through `TEXT_ERROR_MARKS`.
pub(crate) const JSON_ERROR_MARKS: &[&str] = &[
    "\"is_error\":true",
    "\"is_error\": true",
    "\"status\":\"error\"",
    "\"status\": \"error\"",
    "\"status\":\"failed\"",
    "\"status\": \"failed\"",
    "\"status\":\"rejected\"",
    "\"status\": \"rejected\"",
    "\"type\":\"error\"",
    "\"type\": \"error\"",
    "\"subtype\":\"error",
    "\"subtype\": \"error",
    "turn.failed",
];
pub(crate) const TEXT_ERROR_MARKS: &[&str] = &[
    "error",
    "fatal",
    "panicked",
    "failed",
    "rejected",
    "denied",
    "exit code=",
];

/// Map one line (without its newline, lossily decoded).
pub(crate) fn show(line: &str) -> Shown {
    let t = line.trim();
    if t.starts_with('{') {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(t) {
            let v = Value::Object(o);
            if let Some(kind) = v.get("type").and_then(Value::as_str) {
                if let Some(s) = event(kind, &v) {
                    return s;
                }
            }
            return Shown::new(ItemKind::Raw, compact(&v));
        }
        // A cut event: an error if it says so the way an event would.
        let lower = t.to_ascii_lowercase();
        return Shown::new(ItemKind::Raw, line.trim_end()).error(JSON_ERROR_MARKS.iter().any(|w| lower.contains(w)));
    }
    // The coordinator's own lines (start, exit) around the agent's output.
    if let Some(rest) = t.strip_prefix("[agentpm]") {
        let failed = rest
            .split_once("exit code=")
            .is_some_and(|(_, c)| c.split_whitespace().next() != Some("0"));
        return Shown::new(ItemKind::System, rest.trim()).error(failed);
    }
    let lower = t.to_ascii_lowercase();
    Shown::new(ItemKind::Raw, line.trim_end()).error(ERROR_WORDS.iter().any(|w| lower.contains(w)))
}

fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A tool input or output as text: strings as they are, anything else as pretty JSON.
fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) if o.is_empty() => String::new(),
        Some(other) => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// Claude's content: a string, or blocks whose `text` parts are joined.
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|b| match b.get("text").and_then(Value::as_str) {
                Some(t) => t.to_string(),
                None => as_text(Some(b)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => as_text(other),
    }
}

fn event(kind: &str, v: &Value) -> Option<Shown> {
    use ItemKind::*;
    Some(match kind {
        // ---- Claude Code stream-json ----
        "system" => {
            let sub = s(v, "subtype").unwrap_or("");
            if sub == "init" {
                let model = s(v, "model").unwrap_or("?");
                Shown::new(
                    System,
                    format!("session started · model {model} · {}", s(v, "cwd").unwrap_or("")),
                )
            } else {
                Shown::new(System, format!("{sub}: {}", compact(v)))
            }
        }
        "assistant" => claude_message(v.get("message")?, true),
        "user" => claude_message(v.get("message")?, false),
        "result" if v.get("subtype").is_some() || v.get("total_cost_usd").is_some() => {
            let err = v.get("is_error").and_then(Value::as_bool).unwrap_or(false)
                || s(v, "subtype").is_some_and(|x| x != "success");
            let mut head = format!(
                "result: {}",
                s(v, "subtype").unwrap_or(if err { "error" } else { "success" })
            );
            if let Some(n) = v.get("num_turns").and_then(Value::as_u64) {
                head.push_str(&format!(" · {n} turns"));
            }
            if let Some(ms) = v.get("duration_ms").and_then(Value::as_u64) {
                head.push_str(&format!(" · {:.1} s", ms as f64 / 1000.0));
            }
            if let Some(c) = v.get("total_cost_usd").and_then(Value::as_f64) {
                head.push_str(&format!(" · ${c:.4}"));
            }
            let mut body = s(v, "result").unwrap_or("").to_string();
            if let Some(Value::Array(es)) = v.get("errors") {
                for e in es.iter().filter_map(Value::as_str) {
                    body.push_str(&format!("\n{e}"));
                }
            }
            Shown::new(if err { Error } else { System }, join(&head, body.trim())).error(err)
        }
        "rate_limit_event" => {
            let i = v.get("rate_limit_info")?;
            let status = s(i, "status").unwrap_or("?");
            let mut text = format!("rate limit: {status}");
            if let Some(t) = s(i, "rateLimitType") {
                text.push_str(&format!(" ({t})"));
            }
            if let Some(at) = i.get("resetsAt").and_then(Value::as_f64) {
                if let Some(d) = chrono::DateTime::from_timestamp(at as i64, 0) {
                    text.push_str(&format!(
                        ", resets {}",
                        d.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M")
                    ));
                }
            }
            let rejected = status == "rejected";
            Shown::new(if rejected { Error } else { System }, text).error(rejected)
        }
        "stream_event" => Shown::new(System, "(partial message)"),
        // ---- Gemini CLI stream-json ----
        "init" => Shown::new(
            System,
            format!("session started · model {}", s(v, "model").unwrap_or("?")),
        ),
        "message" => {
            let text = s(v, "content").unwrap_or("").to_string();
            if s(v, "role") == Some("user") {
                Shown::new(User, text)
            } else {
                Shown::new(Assistant, text)
            }
        }
        "tool_use" => Shown::new(ToolCall, as_text(v.get("parameters"))).tool(s(v, "tool_name").map(str::to_string)),
        "tool_result" => {
            let err = s(v, "status") == Some("error");
            let mut text = as_text(v.get("output"));
            if let Some(m) = v.get("error").and_then(|e| s(e, "message")) {
                text = join(&text, m);
            }
            Shown::new(ToolResult, text)
                .tool(s(v, "tool_id").map(str::to_string))
                .error(err)
        }
        "error" if v.get("severity").is_some() => {
            let fatal = s(v, "severity") == Some("error");
            // A warning is shown like an error (highlighted) but is none (not in "errors only").
            let mut w = Shown::new(
                Error,
                format!("{}: {}", s(v, "severity").unwrap_or(""), s(v, "message").unwrap_or("")),
            );
            w.is_error = fatal;
            w
        }
        "result" => {
            let ok = s(v, "status") == Some("success");
            let mut text = format!("result: {}", s(v, "status").unwrap_or("?"));
            if let Some(st) = v.get("stats") {
                if let (Some(i), Some(o)) = (
                    st.get("input_tokens").and_then(Value::as_u64),
                    st.get("output_tokens").and_then(Value::as_u64),
                ) {
                    text.push_str(&format!(" · {i} in / {o} out tokens"));
                }
            }
            if let Some(e) = v.get("error") {
                text = join(
                    &text,
                    &format!("{}: {}", s(e, "type").unwrap_or("error"), s(e, "message").unwrap_or("")),
                );
            }
            Shown::new(if ok { System } else { Error }, text).error(!ok)
        }
        // ---- Codex exec --json ----
        "thread.started" => Shown::new(System, format!("thread started · {}", s(v, "thread_id").unwrap_or(""))),
        "turn.started" => Shown::new(System, "turn started"),
        "turn.completed" => {
            let u = v.get("usage");
            let n = |k: &str| u.and_then(|u| u.get(k)).and_then(Value::as_u64).unwrap_or(0);
            Shown::new(
                System,
                format!(
                    "turn completed · {} in / {} out tokens",
                    n("input_tokens"),
                    n("output_tokens")
                ),
            )
        }
        "turn.failed" => Shown::new(
            Error,
            format!(
                "turn failed: {}",
                v.get("error").and_then(|e| s(e, "message")).unwrap_or("")
            ),
        ),
        "error" => Shown::new(Error, s(v, "message").unwrap_or("").to_string()),
        "item.started" | "item.updated" | "item.completed" => codex_item(kind, v.get("item")?),
        _ => return None,
    })
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (_, true) => a.to_string(),
        (true, false) => b.to_string(),
        _ => format!("{a}\n{b}"),
    }
}

/// A Claude `assistant` or `user` message. Claude prints one line per content block; a line with several is
/// shown as one item of the most telling kind (a tool call or result over text).
fn claude_message(m: &Value, assistant: bool) -> Shown {
    use ItemKind::*;
    let Some(Value::Array(blocks)) = m.get("content") else {
        return Shown::new(if assistant { Assistant } else { User }, content_text(m.get("content")));
    };
    let mut parts = Vec::new();
    let mut kind = if assistant { Assistant } else { User };
    let (mut tool, mut err) = (None, false);
    for b in blocks {
        match s(b, "type").unwrap_or("") {
            "text" => parts.push(s(b, "text").unwrap_or("").to_string()),
            "thinking" => parts.push(format!("(thinking) {}", s(b, "thinking").unwrap_or(""))),
            "tool_use" => {
                kind = ToolCall;
                tool = s(b, "name").map(str::to_string);
                parts.push(as_text(b.get("input")));
            }
            "tool_result" => {
                kind = ToolResult;
                tool = s(b, "tool_use_id").map(str::to_string);
                err |= b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
                parts.push(content_text(b.get("content")));
            }
            _ => parts.push(compact(b)),
        }
    }
    let text = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Shown::new(kind, text).tool(tool).error(err)
}

fn codex_item(event: &str, item: &Value) -> Shown {
    use ItemKind::*;
    let kind = s(item, "type").unwrap_or("");
    let done = event == "item.completed";
    let failed = s(item, "status") == Some("failed");
    match kind {
        "agent_message" => Shown::new(Assistant, s(item, "text").unwrap_or("")),
        "reasoning" => Shown::new(System, format!("(reasoning) {}", s(item, "text").unwrap_or(""))),
        "error" => Shown::new(Error, s(item, "message").unwrap_or("")),
        "command_execution" if !done => {
            Shown::new(ToolCall, s(item, "command").unwrap_or("")).tool(Some("shell".into()))
        }
        "command_execution" => {
            let mut text = s(item, "aggregated_output").unwrap_or("").to_string();
            if let Some(c) = item.get("exit_code").and_then(Value::as_i64) {
                text = join(&text, &format!("exit code {c}"));
            }
            Shown::new(ToolResult, text).tool(Some("shell".into())).error(failed)
        }
        "mcp_tool_call" => {
            let name = match (s(item, "server"), s(item, "tool")) {
                (Some(sv), Some(t)) => Some(format!("{sv}.{t}")),
                (_, t) => t.map(str::to_string),
            };
            if done {
                let mut text = as_text(item.get("result"));
                if let Some(e) = item.get("error") {
                    text = join(&text, &content_text(e.get("message").or(Some(e))));
                }
                Shown::new(ToolResult, text).tool(name).error(failed)
            } else {
                Shown::new(ToolCall, as_text(item.get("arguments"))).tool(name)
            }
        }
        "file_change" => {
            let files = item
                .get("changes")
                .and_then(Value::as_array)
                .map(|c| c.iter().filter_map(|x| s(x, "path")).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Shown::new(if done { ToolResult } else { ToolCall }, files)
                .tool(Some("file_change".into()))
                .error(failed)
        }
        other => Shown::new(System, format!("{other}: {}", compact(item))),
    }
}

/// `s` cut to at most `max` bytes on a character boundary, saying how much was left out.
fn cap(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let rest = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("\n… ({rest} more bytes; the raw log has it all)"));
    s
}

/// The text on one line (whitespace squeezed), at most [`MAX_PREVIEW`] characters.
fn preview(text: &str) -> String {
    let first: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if first.chars().count() <= MAX_PREVIEW {
        return first;
    }
    let mut p: String = first.chars().take(MAX_PREVIEW).collect();
    p.push('…');
    p
}
