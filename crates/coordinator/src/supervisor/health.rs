//! Server reachability: up/down transitions, events, and the retry backoff while it is down.

use super::protocol::PairKey;
use super::Supervisor;
use crate::api::*;
use crate::pm::PmError;
use std::time::Duration;

#[derive(Default)]
pub(super) struct Health {
    pub(super) server: ServerHealth,
    pub(super) streak: u32,
    /// When the server last failed to answer: runs that overlap an outage fail for the server's sake, not
    /// the agent's, so they do not count towards the agent's backoff.
    pub(super) last_outage_at: Option<UnixMs>,
    /// Recent error backoffs (pair, when): the engine may learn of an outage only after an agent that
    /// tripped over it has exited (a silent server costs a full call timeout to notice).
    pub(super) recent_backoffs: Vec<(PairKey, UnixMs)>,
}

/// The longest wait between checks while the server is down.
pub(super) const OUTAGE_RECHECK_MAX: Duration = Duration::from_secs(1);

impl Supervisor {
    // ----- server health -----

    pub(super) fn server_failed(&mut self, e: &PmError) {
        let msg = self.redactor.redact(&e.to_string());
        if e.is_auth() {
            return self.token_rejected(msg);
        }
        self.health.streak = self.health.streak.saturating_add(1);
        let now = now_ms();
        self.health.last_outage_at = Some(now);
        // Failures just before we noticed the outage were most likely caused by it: no backoff for those.
        let recent: Vec<PairKey> = self
            .health
            .recent_backoffs
            .drain(..)
            .filter(|(_, at)| now - at < 30_000)
            .map(|(p, _)| p)
            .collect();
        for pair in recent {
            self.holds.cooldowns.clear_pair(&pair.agent_id, &pair.project_id);
        }
        if self.health.server.reachable || self.health.server.unreachable_since.is_none() {
            let since = now_ms();
            self.health.server.unreachable_since = Some(since);
            tracing::warn!("PM server unreachable: {msg}");
            let _ = self.ev.send(Event::ServerUnreachable {
                since,
                error: msg.clone(),
            });
        }
        self.health.server.reachable = false;
        self.health.server.token_rejected = false;
        self.health.server.last_error = Some(msg);
    }

    /// The server answered, but not to our token: its own state (no outage, no "unreachable"), announced
    /// once; the cycle retries at the normal interval so a new token is picked up.
    fn token_rejected(&mut self, msg: String) {
        self.health.streak = 0;
        if !self.health.server.token_rejected {
            tracing::error!("the PM server rejected the coordinator token; set the new one: {msg}");
            let _ = self.ev.send(Event::TokenRejected { error: msg.clone() });
        }
        self.server_ok();
        self.health.server.token_rejected = true;
        self.health.server.last_error = Some(format!("token rejected — set the new one ({msg})"));
    }

    pub(super) fn server_ok(&mut self) {
        if !self.health.server.reachable {
            if let Some(since) = self.health.server.unreachable_since.take() {
                let after = now_ms() - since;
                tracing::info!("PM server reachable again after {after} ms");
                let _ = self.ev.send(Event::ServerReachable { after_ms: after });
            }
        }
        self.health.streak = 0;
        self.health.server.reachable = true;
        self.health.server.token_rejected = false;
        self.health.server.last_error = None;
    }
}

/// Exponential backoff with ±20 % jitter, from 0.5 s up to the polling interval but never more than
/// [`OUTAGE_RECHECK_MAX`]: a down server is not hammered, and work resumes within about a second of it coming
/// back even with a long polling interval (a health check is one small call).
pub(super) fn backoff_delay(streak: u32, interval: Duration) -> Duration {
    let cap = interval.as_secs_f64().clamp(0.5, OUTAGE_RECHECK_MAX.as_secs_f64());
    Duration::from_secs_f64(crate::backoff::jitter(
        crate::backoff::doubling(0.5, streak, 10).min(cap),
    ))
}
