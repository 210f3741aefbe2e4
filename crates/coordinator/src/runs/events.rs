//! Run events: what a provider's JSON stream says, in one vocabulary for all providers.
use crate::api::UnixMs;
use serde::{Deserialize, Serialize};

/// Token counts. `input` is input that was *not* read from the prompt cache, so the four fields add up to
/// what was processed and none is counted twice (Codex and Gemini report input including cached tokens;
/// the parsers subtract).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl TokenUsage {
    pub fn add(&mut self, o: &TokenUsage) {
        self.input = self.input.saturating_add(o.input);
        self.output = self.output.saturating_add(o.output);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
        self.cache_write = self.cache_write.saturating_add(o.cache_write);
    }

    /// Field-wise `self - o`, never below zero.
    pub fn minus(&self, o: &TokenUsage) -> TokenUsage {
        TokenUsage {
            input: self.input.saturating_sub(o.input),
            output: self.output.saturating_sub(o.output),
            cache_read: self.cache_read.saturating_sub(o.cache_read),
            cache_write: self.cache_write.saturating_sub(o.cache_write),
        }
    }

    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_write)
    }
}

/// The provider's own summary at the end of a run (Claude `result`, Gemini `result`; Codex has none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub is_error: bool,
    /// Claude's `subtype` ("success", "error_max_turns", …) or Gemini's `status`.
    pub status: Option<String>,
    pub num_turns: Option<u32>,
    pub duration_ms: Option<u64>,
    /// Cost the CLI itself reports (Claude's `total_cost_usd`).
    pub cost_usd: Option<f64>,
    /// Totals for the whole run; these replace the sum of the per-message usage seen so far.
    pub usage: Option<TokenUsage>,
    /// Final answer text (Claude's `result`).
    pub text: Option<String>,
    pub error: Option<String>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunEvent {
    /// Session start: Claude `system/init`, Gemini `init`, Codex `thread.started`.
    Init {
        session_id: Option<String>,
        model: Option<String>,
    },
    /// Tokens used by one model call, as a delta to add to the running total.
    Usage(TokenUsage),
    /// A model turn finished (Codex `turn.completed`; Claude and Gemini count turns in their result).
    TurnDone,
    /// Assistant text. `delta`: a chunk to append to the text since the last tool call (Gemini streams so).
    Message {
        text: String,
        delta: bool,
    },
    ToolUse {
        name: String,
    },
    ToolResult {
        is_error: bool,
    },
    /// Claude `rate_limit_event`. `status` is "allowed", "allowed_warning" or "rejected".
    RateLimit {
        status: String,
        resets_at: Option<UnixMs>,
        limit_type: Option<String>,
    },
    /// An error or warning the CLI reported in its stream.
    Error {
        message: String,
        fatal: bool,
    },
    Result(RunResult),
    /// A line (or the part of one) that is not a known event: plain text, an unknown event type, a cut line.
    Raw(String),
}
