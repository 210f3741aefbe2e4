//! The run record (one row of the run history) and the summary derived from a run's log.
use super::events::{RunEvent, TokenUsage};
use super::parse::{self, StreamParser};
use super::prices::PriceTable;
use super::quota;
use crate::api::UnixMs;
use serde::{Deserialize, Serialize};

/// Longest final message / error line kept in the record (the log has the rest).
pub const MAX_TEXT: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Stopped,
    /// The coordinator died while the run was going (closed on the next start).
    Interrupted,
    Running,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Stopped => "stopped",
            Outcome::Interrupted => "interrupted",
            Outcome::Running => "running",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Ok,
            Outcome::Failed,
            Outcome::Stopped,
            Outcome::Interrupted,
            Outcome::Running,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// Who ended a run that did not end by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoppedBy {
    Coordinator,
    User,
}

impl StoppedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            StoppedBy::Coordinator => "coordinator",
            StoppedBy::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<StoppedBy> {
        match s {
            "coordinator" => Some(StoppedBy::Coordinator),
            "user" => Some(StoppedBy::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub agent_id: String,
    pub project_id: String,
    pub task_id: Option<String>,
    /// The provider's name in the settings; `provider_kind` is what the CLI is ("claude", "custom", …).
    pub provider: String,
    pub provider_kind: String,
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub started_at: UnixMs,
    pub ended_at: Option<UnixMs>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped_by: Option<StoppedBy>,
    pub outcome: Outcome,
    pub turns: Option<u32>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_usd: Option<f64>,
    /// The cost is tokens × the price table, not the CLI's own figure.
    pub cost_is_estimate: bool,
    pub final_message: Option<String>,
    pub error_line: Option<String>,
    /// When a provider limit that this run hit resets.
    pub quota_reset_at: Option<UnixMs>,
    pub log_path: Option<String>,
    /// While running: when the log last showed activity (see [`RunStore::run_progress`](super::RunStore::run_progress)).
    pub last_activity_at: Option<UnixMs>,
}

/// Live fields of a running run, from its log so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunProgress {
    pub usage: TokenUsage,
    pub turns: Option<u32>,
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub last_activity_at: UnixMs,
    /// Cost so far: the CLI's own figure once its `result` came, else tokens × the price table.
    #[serde(default)]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub cost_is_estimate: bool,
    /// One short line: the last assistant text or "tool: <name>" (not yet redacted here: the relay feeds
    /// redacted bytes, and redacts this line again as it publishes it).
    #[serde(default)]
    pub last_activity: Option<String>,
}

/// Longest last-activity line.
pub const MAX_ACTIVITY: usize = 160;

/// What a run's log says about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub session_id: Option<String>,
    pub model: Option<String>,
    pub turns: Option<u32>,
    pub usage: TokenUsage,
    pub cost_usd: Option<f64>,
    pub cost_is_estimate: bool,
    pub final_message: Option<String>,
    pub error_line: Option<String>,
    /// The provider's end summary said the run failed (Claude / Gemini `result`).
    pub result_is_error: Option<bool>,
    /// The provider's own duration (Claude / Gemini `result`).
    pub duration_ms: Option<u64>,
    pub quota_reset_at: Option<UnixMs>,
}

/// Builds a [`RunSummary`] from a log fed in chunks, so a large log never has to be in memory whole.
pub struct Summarizer {
    kind: String,
    parser: Option<StreamParser>,
    /// A custom command's output so far, until its first JSON event names the format (a wrapper script
    /// around `claude -p --output-format stream-json`, the demo's fake agent); None when settled.
    sniff: Option<Vec<u8>>,
    events: Vec<RunEvent>,
    s: RunSummary,
    usage_sum: TokenUsage,
    result_usage: Option<TokenUsage>,
    turns_done: u32,
    /// Assistant text since the last tool call (Gemini streams it in deltas).
    text: String,
    last_fatal: Option<String>,
    /// Events that matter for the quota (kept; everything else is folded in and dropped).
    rate_limits: Vec<RunEvent>,
    /// The last tool called, when it came after the last assistant text.
    last_tool: Option<String>,
    /// Counts the events that change the live fields (the relay publishes when it moved).
    changes: u64,
    /// Counts the events that are activity (text, tool calls): the relay stamps the time when it moved.
    activities: u64,
}

impl Summarizer {
    pub fn new(provider_kind: &str) -> Summarizer {
        let parser = parse::for_kind(provider_kind);
        Summarizer {
            kind: provider_kind.to_string(),
            sniff: if parser.is_none() { Some(Vec::new()) } else { None },
            parser,
            events: Vec::new(),
            s: RunSummary::default(),
            usage_sum: TokenUsage::default(),
            result_usage: None,
            turns_done: 0,
            text: String::new(),
            last_fatal: None,
            rate_limits: Vec::new(),
            last_tool: None,
            changes: 0,
            activities: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if let Some(buf) = &mut self.sniff {
            let checked = buf.len() - buf.iter().rev().position(|&b| b == b'\n').unwrap_or(buf.len());
            buf.extend_from_slice(bytes);
            match sniff_kind(buf, checked) {
                Some(Some(kind)) => {
                    let buf = self.sniff.take().unwrap_or_default();
                    self.kind = kind.to_string();
                    self.parser = parse::for_kind(kind);
                    return self.feed(&buf);
                }
                Some(None) => self.sniff = None,
                None => {}
            }
            return;
        }
        if let Some(p) = &mut self.parser {
            p.feed(bytes, &mut self.events);
            self.fold();
        }
    }

    fn fold(&mut self) {
        for e in self.events.drain(..) {
            match &e {
                RunEvent::Message { .. } | RunEvent::ToolUse { .. } => {
                    self.activities += 1;
                    self.changes += 1;
                }
                RunEvent::Init { .. } | RunEvent::Usage(_) | RunEvent::TurnDone | RunEvent::Result(_) => {
                    self.changes += 1
                }
                _ => {}
            }
            match e {
                RunEvent::Init { session_id, model } => {
                    self.s.session_id = session_id.or(self.s.session_id.take());
                    self.s.model = model.or(self.s.model.take());
                }
                RunEvent::Usage(u) => self.usage_sum.add(&u),
                RunEvent::TurnDone => self.turns_done += 1,
                RunEvent::Message { text, delta } => {
                    self.last_tool = None;
                    if !delta {
                        self.text.clear();
                    }
                    if self.text.len() < 4 * MAX_TEXT {
                        self.text.push_str(&text);
                    }
                }
                RunEvent::ToolUse { name } => {
                    self.text.clear();
                    self.last_tool = Some(name);
                }
                RunEvent::ToolResult { .. } | RunEvent::Raw(_) => {}
                e @ RunEvent::RateLimit { .. } => self.rate_limits.push(e),
                RunEvent::Error { message, fatal } => {
                    if fatal {
                        self.last_fatal = Some(message);
                    }
                }
                RunEvent::Result(r) => {
                    self.s.result_is_error = Some(r.is_error);
                    self.s.turns = r.num_turns.or(self.s.turns);
                    self.s.duration_ms = r.duration_ms.or(self.s.duration_ms);
                    self.s.cost_usd = r.cost_usd.or(self.s.cost_usd);
                    self.result_usage = r.usage.or(self.result_usage);
                    self.s.session_id = r.session_id.or(self.s.session_id.take());
                    if let Some(t) = r.text.filter(|t| !t.is_empty()) {
                        self.text = t;
                    }
                    if let Some(e) = r.error.filter(|e| !e.is_empty()) {
                        self.last_fatal = Some(e);
                    }
                }
            }
        }
    }

    /// The live fields so far (the log relay feeds the bytes it writes and reports this now and then), with
    /// the cost so far estimated from `prices` until the CLI states its own.
    pub fn progress(&self, last_activity_at: UnixMs, prices: &PriceTable) -> RunProgress {
        let usage = self.result_usage.unwrap_or(self.usage_sum);
        let (cost_usd, cost_is_estimate) = match self.s.cost_usd {
            Some(c) => (Some(c), false),
            None if usage.total() > 0 => {
                let c = prices.estimate(&self.kind, self.s.model.as_deref(), &usage);
                (c, c.is_some())
            }
            None => (None, false),
        };
        RunProgress {
            usage,
            turns: self.s.turns.or(Some(self.turns_done).filter(|t| *t > 0)),
            session_id: self.s.session_id.clone(),
            model: self.s.model.clone(),
            last_activity_at,
            cost_usd,
            cost_is_estimate,
            last_activity: self.last_activity(),
        }
    }

    /// "tool: <name>" or the last line of the assistant's latest text, on one line, at most
    /// [`MAX_ACTIVITY`] bytes.
    pub fn last_activity(&self) -> Option<String> {
        let line = match &self.last_tool {
            Some(t) => format!("tool: {t}"),
            None => self.text.lines().map(str::trim).rfind(|l| !l.is_empty())?.to_string(),
        };
        let line: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        Some(clip_to(&line, MAX_ACTIVITY - '…'.len_utf8()))
    }

    /// How many events so far changed the live fields / were activity (cheap to compare after a feed).
    pub fn counters(&self) -> (u64, u64) {
        (self.changes, self.activities)
    }

    /// `tail`: the last part of the log as text (for the plain-text error and quota fallbacks);
    /// `ended_at`: when the run ended (relative reset times count from it).
    pub fn finish(self, tail: &str, prices: &PriceTable, ended_at: UnixMs) -> RunSummary {
        self.finish_run(tail, prices, ended_at, false)
    }

    /// [`finish`](Self::finish) knowing whether the process exited 0 by itself: then, unless the
    /// provider's own summary says it failed, the plain-text error and quota fallbacks are skipped (a run
    /// that worked has no error line, whatever its text says; and it saves the regexes on every run).
    pub fn finish_run(mut self, tail: &str, prices: &PriceTable, ended_at: UnixMs, exited_ok: bool) -> RunSummary {
        if let Some(mut buf) = self.sniff.take() {
            // The last line may have had no newline.
            buf.push(b'\n');
            if let Some(Some(kind)) = sniff_kind(&buf, 0) {
                self.kind = kind.to_string();
                self.parser = parse::for_kind(kind);
                self.feed(&buf);
            }
        }
        if let Some(p) = &mut self.parser {
            p.finish(&mut self.events);
            self.fold();
        }
        let mut s = self.s;
        // The end summary's totals replace the per-message sum (they include what no message showed).
        s.usage = self.result_usage.unwrap_or(self.usage_sum);
        if s.turns.is_none() && self.turns_done > 0 {
            s.turns = Some(self.turns_done);
        }
        if s.cost_usd.is_none() && s.usage.total() > 0 {
            s.cost_usd = prices.estimate(&self.kind, s.model.as_deref(), &s.usage);
            s.cost_is_estimate = s.cost_usd.is_some();
        }
        s.final_message = Some(clip(self.text.trim())).filter(|t| !t.is_empty());
        let fallbacks = !exited_ok || s.result_is_error == Some(true);
        s.error_line = self
            .last_fatal
            .map(|e| clip(e.trim()))
            .filter(|e| !e.is_empty())
            .or_else(|| {
                if fallbacks {
                    crate::exit::extract_error(tail)
                } else {
                    None
                }
            });
        s.quota_reset_at = if fallbacks {
            quota::detect(&self.rate_limits, tail, ended_at)
        } else {
            None
        };
        s
    }
}

/// Longest custom output looked at for a JSON event format.
const SNIFF_BYTES: usize = 64 << 10;

/// The provider whose event opens the first JSON line: Some(Some(kind)); Some(None): none will be found;
/// None: not known yet. Lines before `from` (a line start) were looked at already.
fn sniff_kind(buf: &[u8], from: usize) -> Option<Option<&'static str>> {
    let complete = match buf.iter().rposition(|&b| b == b'\n') {
        Some(i) if i >= from => &buf[from..i],
        Some(_) => &[][..],
        None if buf.len() >= SNIFF_BYTES => return Some(None),
        None => return None,
    };
    for line in complete.split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let l = line.trim_start();
        if !l.starts_with('{') {
            continue;
        }
        // By the `type` field wherever it is: a writer may order keys (serde_json without preserve_order
        // sorts them, so `type` comes last in the fake agent's events when built alone).
        #[derive(Deserialize)]
        struct Typed<'a> {
            #[serde(rename = "type", borrow)]
            t: Option<std::borrow::Cow<'a, str>>,
        }
        let t = serde_json::from_str::<Typed>(l.trim_end()).ok().and_then(|v| v.t);
        let kind = match t.as_deref() {
            Some("system") => "claude",
            Some("init") => "gemini",
            Some("thread.started") => "codex",
            _ => continue,
        };
        return Some(Some(kind));
    }
    if buf.len() >= SNIFF_BYTES {
        Some(None)
    } else {
        None
    }
}

fn clip(s: &str) -> String {
    clip_to(s, MAX_TEXT)
}

fn clip_to(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Summary of a whole log with the default prices, reset times counted from now.
pub fn summarize(provider_kind: &str, log_text: &str) -> RunSummary {
    summarize_with(provider_kind, log_text, &PriceTable::default(), crate::api::now_ms())
}

pub fn summarize_with(provider_kind: &str, log_text: &str, prices: &PriceTable, ended_at: UnixMs) -> RunSummary {
    let mut z = Summarizer::new(provider_kind);
    z.feed(log_text.as_bytes());
    z.finish(log_text, prices, ended_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::parse::tests::CLAUDE_RUN;

    #[test]
    fn claude_summary_is_what_the_result_line_says() {
        let log = format!("[agentpm] 2026-12-03 10:00:00.000 start pid=1 cwd=/w command=claude\n{CLAUDE_RUN}[agentpm] 2026-12-03 10:00:02.000 exit code=0\n");
        let s = summarize("claude", &log);
        assert_eq!(s.session_id.as_deref(), Some("s-1"));
        assert_eq!(s.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(
            (s.turns, s.duration_ms, s.cost_usd, s.cost_is_estimate),
            (Some(2), Some(1234), Some(0.0123), false)
        );
        assert_eq!(
            s.usage,
            TokenUsage {
                input: 15,
                output: 27,
                cache_read: 100,
                cache_write: 100
            }
        );
        assert_eq!(s.final_message.as_deref(), Some("No task; done."));
        assert_eq!(
            (s.result_is_error, s.error_line.as_deref(), s.quota_reset_at),
            (Some(false), None, None)
        );
    }

    #[test]
    fn codex_cost_is_an_estimate_from_summed_turns() {
        let log = r#"{"type":"thread.started","thread_id":"th-1"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"i0","type":"agent_message","text":"Working"}}
{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":400,"output_tokens":100}}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"i1","type":"agent_message","text":"All done."}}
{"type":"turn.completed","usage":{"input_tokens":2000,"cached_input_tokens":1000,"output_tokens":50}}
"#;
        let s = summarize_with("codex", log, &PriceTable::default(), 0);
        assert_eq!(s.session_id.as_deref(), Some("th-1"));
        assert_eq!(s.turns, Some(2));
        assert_eq!(
            s.usage,
            TokenUsage {
                input: 1600,
                output: 150,
                cache_read: 1400,
                cache_write: 0
            }
        );
        // gpt-5 prices (the codex default): 1.25 / 10 / 0.125 per Mtok.
        let want = (1600.0 * 1.25 + 150.0 * 10.0 + 1400.0 * 0.125) / 1e6;
        assert!(
            s.cost_is_estimate && (s.cost_usd.unwrap() - want).abs() < 1e-12,
            "{:?}",
            s.cost_usd
        );
        assert_eq!(s.final_message.as_deref(), Some("All done."));
    }

    #[test]
    fn gemini_failure_names_the_error_and_the_reset() {
        let log = r#"{"type":"init","session_id":"g","model":"gemini-2.5-pro"}
{"type":"message","role":"assistant","content":"Try","delta":true}
{"type":"result","status":"error","error":{"type":"TerminalQuotaError","message":"You have exhausted your capacity on this model. Your quota will reset after 1h2m3s."},"stats":{"input_tokens":10,"output_tokens":0,"cached":0,"input":10,"duration_ms":0}}
"#;
        let s = summarize_with("gemini", log, &PriceTable::default(), 1_000_000);
        assert_eq!(s.result_is_error, Some(true));
        assert!(
            s.error_line
                .as_deref()
                .unwrap()
                .starts_with("TerminalQuotaError: You have exhausted"),
            "{:?}",
            s.error_line
        );
        assert_eq!(s.quota_reset_at, Some(1_000_000 + 3723 * 1000));
        assert!(s.cost_is_estimate);
        assert_eq!(s.final_message.as_deref(), Some("Try"));
    }

    #[test]
    fn custom_commands_fall_back_to_plain_text() {
        let s = summarize_with(
            "custom",
            "working\nError: simulated failure\n",
            &PriceTable::default(),
            0,
        );
        assert_eq!(s.error_line.as_deref(), Some("Error: simulated failure"));
        assert_eq!((s.usage, s.cost_usd, s.turns), (TokenUsage::default(), None, None));
        let s = summarize_with(
            "custom",
            "TerminalQuotaError: quota will reset after 0m5s\n",
            &PriceTable::default(),
            0,
        );
        assert_eq!(s.quota_reset_at, Some(5000));
    }

    #[test]
    fn a_custom_command_speaking_stream_json_is_read_as_that_provider() {
        let log =
            format!("[agentpm] start pid=1 command=./wrap.sh\nfake-agent: received a prompt of 10 bytes\n{CLAUDE_RUN}");
        // Fed in small chunks, as a relay would.
        let mut z = Summarizer::new("custom");
        for c in log.as_bytes().chunks(7) {
            z.feed(c);
        }
        let s = z.finish(&log, &PriceTable::default(), 0);
        assert_eq!(
            (s.session_id.as_deref(), s.turns, s.cost_usd, s.cost_is_estimate),
            (Some("s-1"), Some(2), Some(0.0123), false)
        );
        let codex = "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":10,\"cached_input_tokens\":0,\"output_tokens\":1}}";
        let s = summarize_with("custom", codex, &PriceTable::default(), 0);
        assert_eq!((s.turns, s.usage.input, s.cost_is_estimate), (Some(1), 10, true));
        // Whatever the key order (a writer that sorts keys puts `type` last).
        let sorted =
            "{\"model\":\"claude-sonnet-4-5\",\"session_id\":\"s-9\",\"subtype\":\"init\",\"type\":\"system\"}\n";
        assert_eq!(
            summarize_with("custom", sorted, &PriceTable::default(), 0)
                .session_id
                .as_deref(),
            Some("s-9")
        );
        // Plain JSON that is no provider's event stays plain text.
        let s = summarize_with(
            "custom",
            "{\"status\":\"ok\"}\nError: boom\n",
            &PriceTable::default(),
            0,
        );
        assert_eq!((s.turns, s.error_line.as_deref()), (None, Some("Error: boom")));
    }

    /// What the real CLIs printed against a model endpoint answering 401 or 429 (scripts/real-agents
    /// --errors: Claude Code 2.1.197 with stream-json, Gemini CLI 0.61.0, Codex 0.171.0).
    fn real(name: &str) -> &'static str {
        match name {
            "claude-401" => include_str!("../../tests/data/real-cli-errors/claude-401.log"),
            "claude-429" => include_str!("../../tests/data/real-cli-errors/claude-429.log"),
            "gemini-401" => include_str!("../../tests/data/real-cli-errors/gemini-401.log"),
            "gemini-429" => include_str!("../../tests/data/real-cli-errors/gemini-429.log"),
            "codex-401" => include_str!("../../tests/data/real-cli-errors/codex-401.log"),
            "codex-429" => include_str!("../../tests/data/real-cli-errors/codex-429.log"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn real_cli_failures_summarize_as_the_cli_said() {
        let t0 = 1_000_000;
        let sum = |name: &str| summarize_with(name.split('-').next().unwrap(), real(name), &PriceTable::default(), t0);
        let c = sum("claude-401");
        assert_eq!(c.session_id.as_deref(), Some("32e038bf-43ab-425d-b46b-4fbf7d8836a7"));
        assert_eq!(
            (c.result_is_error, c.turns, c.cost_usd, c.cost_is_estimate),
            (Some(true), Some(1), Some(0.0), false)
        );
        assert_eq!(
            c.error_line.as_deref(),
            Some("API Error (401): Invalid API key · Fix external API key")
        );
        assert_eq!((c.usage, c.quota_reset_at), (TokenUsage::default(), None));
        // The error line is the one the cooldown logic reads from the same log.
        assert_eq!(c.error_line, crate::exit::extract_error(real("claude-401")));
        let c = sum("claude-429");
        assert!(
            c.error_line
                .as_deref()
                .unwrap()
                .starts_with("API Error: Request rejected (429)"),
            "{:?}",
            c.error_line
        );
        assert_eq!(c.error_line, crate::exit::extract_error(real("claude-429")));
        // "Please try again later" names no time: the fallback's wait, counted from the end.
        let wait = crate::exit::detect_quota(real("claude-429"), 0, 8 * 24 * 3600).unwrap() as i64;
        assert_eq!(c.quota_reset_at, Some(t0 + wait * 1000));
        for name in ["gemini-401", "gemini-429", "codex-401", "codex-429"] {
            let s = sum(name);
            assert_eq!(s.error_line, crate::exit::extract_error(real(name)), "{name}");
            // Gemini's 429 log ends in 50 lines of stack trace: no error line there, but the quota below.
            assert!(s.error_line.is_some() || name == "gemini-429", "{name}");
            let quota = crate::exit::detect_quota(real(name), 0, 8 * 24 * 3600).map(|w| t0 + w as i64 * 1000);
            assert_eq!(s.quota_reset_at, quota, "{name}");
        }
        assert!(sum("gemini-429").quota_reset_at.is_some());
        assert_eq!(
            (
                sum("gemini-401").quota_reset_at,
                sum("codex-401").quota_reset_at,
                sum("codex-429").quota_reset_at
            ),
            (None, None, None)
        );
    }

    #[test]
    fn a_clean_exit_skips_the_plain_text_fallbacks() {
        let log = "Error: rate limit exceeded, retry in 30 seconds\ndone anyway\n";
        let fin = |ok| {
            let mut z = Summarizer::new("custom");
            z.feed(log.as_bytes());
            z.finish_run(log, &PriceTable::default(), 0, ok)
        };
        let failed = fin(false);
        assert_eq!(
            (failed.error_line.as_deref(), failed.quota_reset_at),
            (Some("Error: rate limit exceeded, retry in 30 seconds"), Some(30_000))
        );
        let ok = fin(true);
        assert_eq!((ok.error_line, ok.quota_reset_at), (None, None));
    }

    proptest::proptest! {
        /// Any bytes in any chunking, for every kind (custom ones sniff): no panic, and the same summary
        /// however the bytes were cut.
        #[test]
        fn any_log_any_chunks(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600), cut in 1usize..64, kind in "(claude|gemini|codex|custom)", with_run in proptest::prelude::any::<bool>()) {
            let mut text = String::from_utf8_lossy(&bytes).into_owned();
            if with_run {
                // A real run after some noise: what the noise does to it must not depend on the chunking.
                text.push('\n');
                text.push_str(CLAUDE_RUN);
            }
            let whole = summarize_with(&kind, &text, &PriceTable::default(), 0);
            let mut z = Summarizer::new(&kind);
            for c in text.as_bytes().chunks(cut) {
                z.feed(c);
            }
            proptest::prop_assert_eq!(z.finish(&text, &PriceTable::default(), 0), whole);
        }
    }

    #[test]
    fn long_texts_are_clipped_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let c = clip(&long);
        assert!(c.len() <= MAX_TEXT + '…'.len_utf8() && c.ends_with('…'));
    }
}
