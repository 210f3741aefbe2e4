//! Analysis of a finished run (error line, quota detection) and per-agent cooldown book-keeping.
//! OWNER: process helper. Contract below.
use crate::api::UnixMs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Error line from the last lines of a log (see protocol doc §5.5, made stricter).
pub fn extract_error(log_text: &str) -> Option<String> {
    let _ = log_text;
    todo!()
}

/// Seconds to wait, with margin and cap, when the log shows a quota / rate limit; None otherwise.
pub fn detect_quota(log_text: &str, margin_percent: u32, max_secs: u64) -> Option<u64> {
    let _ = (log_text, margin_percent, max_secs);
    todo!()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cooldown {
    pub until: UnixMs,
    /// "quota" or "error"
    pub reason: String,
    pub consecutive_failures: u32,
}

/// Per-agent cooldowns; serializable so they survive a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Cooldowns {
    pub agents: BTreeMap<String, Cooldown>,
}

impl Cooldowns {
    /// Record a failed run: quota seconds if detected, else exponential backoff with jitter from
    /// `default_secs` doubling per consecutive failure, capped at `max_secs`. Returns the new cooldown.
    pub fn record_failure(&mut self, agent_id: &str, quota_secs: Option<u64>, default_secs: u64, max_secs: u64, now: UnixMs) -> Cooldown {
        let _ = (agent_id, quota_secs, default_secs, max_secs, now);
        todo!()
    }
    /// A clean exit clears the agent's cooldown and failure count.
    pub fn record_success(&mut self, agent_id: &str) {
        self.agents.remove(agent_id);
    }
    /// The active cooldown, if any (expired ones are not returned; failure count is kept until success).
    pub fn active(&self, agent_id: &str, now: UnixMs) -> Option<&Cooldown> {
        self.agents.get(agent_id).filter(|c| c.until > now)
    }
}
