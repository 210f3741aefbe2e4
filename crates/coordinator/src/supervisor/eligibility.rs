//! Why a pair may or may not be asked or started: agent enabled, passkey, cooldown, pending exit report,
//! pair holds (unusable working directory, a pair-specific start failure).

use super::cycle::MAX_INSTANCES_PER_PAIR;
use super::protocol::PairKey;
use super::Supervisor;
use crate::api::*;
use crate::exit::Cooldowns;
use crate::pm::ProjectInfo;
use std::collections::HashMap;
use std::path::Path;

/// What blocks pairs: agent-wide cooldowns (persisted) and pair-only holds.
pub(super) struct Holds {
    pub(super) cooldowns: Cooldowns,
    /// Pairs held back for a pair-specific reason (see [`PairHold`]); the agent's other pairs are unaffected.
    pub(super) pairs: HashMap<PairKey, PairHold>,
    /// Agents the user paused (persisted): agent id → until (None = until resumed).
    pub(super) paused: std::collections::BTreeMap<String, Option<UnixMs>>,
}

impl Holds {
    /// Paused now? An expired pause is not one (it is dropped at the next persist).
    pub(super) fn paused_now(&self, agent: &str, now: UnixMs) -> Option<Option<UnixMs>> {
        self.paused.get(agent).copied().filter(|u| u.is_none_or(|t| t > now))
    }
}

/// A pair (not the whole agent) that must not be started: its project's working directory is unusable
/// (`dir`: re-checked every cycle, no lease is taken meanwhile), or a start failed for a pair-specific reason
/// (held with backoff until `until`).
pub(super) struct PairHold {
    pub(super) until: UnixMs,
    pub(super) failures: u32,
    pub(super) message: String,
    pub(super) dir: bool,
}

/// Why a project's working directory cannot be used (checked before asking, so no lease is taken).
pub(super) fn working_dir_problem(project: &ProjectInfo) -> Option<String> {
    let raw = &project.working_directory;
    let wd = raw.trim();
    if wd.is_empty() {
        return Some(format!(
            "project {} has no working directory on the server; set one in AI Agent PM",
            project.project_id
        ));
    }
    let path = Path::new(wd);
    if !path.is_absolute()
        || path.components().any(|c| matches!(c, std::path::Component::ParentDir))
        || raw.contains('\0')
    {
        return Some(format!(
            "project {} has an unsafe working directory {:?}; it must be an absolute path without `..`",
            project.project_id, raw
        ));
    }
    if !path.is_dir() {
        return Some(format!(
            "working directory {} of project {} does not exist; create it or fix the project in AI Agent PM",
            path.display(),
            project.project_id
        ));
    }
    None
}

impl Supervisor {
    /// Hold a pair whose project's working directory is unusable; say it once (status, log), not once per
    /// cycle. Never to the server: a report there becomes chat work, i.e. a paid agent run about a problem
    /// only the user can fix.
    pub(super) fn hold_pair_for_dir(&mut self, pair: &PairKey, msg: &str) {
        if self.holds.pairs.get(pair).is_some_and(|h| h.dir && h.message == msg) {
            return;
        }
        tracing::warn!(agent = %pair.agent_id, project = %pair.project_id, "{msg}; not starting this pair until it is fixed");
        self.push_error(Some(&pair.agent_id), Some(&pair.project_id), msg.to_string());
        let failures = self.holds.pairs.get(pair).map_or(0, |h| h.failures);
        self.holds.pairs.insert(
            pair.clone(),
            PairHold {
                until: UnixMs::MAX,
                failures,
                message: msg.to_string(),
                dir: true,
            },
        );
    }

    /// Hold one pair with exponential backoff after a pair-specific start failure.
    pub(super) fn hold_pair_after_failure(&mut self, pair: &PairKey, msg: &str) -> UnixMs {
        let ep = &self.settings.error_protection;
        let failures = self.holds.pairs.get(pair).map_or(0, |h| h.failures) + 1;
        let secs = crate::backoff::doubling(ep.default_cooldown_secs as f64, failures, 20)
            .min(ep.max_cooldown_secs as f64)
            .max(1.0);
        let until = now_ms() + (secs * 1000.0) as i64;
        self.holds.pairs.insert(
            pair.clone(),
            PairHold {
                until,
                failures,
                message: msg.to_string(),
                dir: false,
            },
        );
        self.queue().retain(|p| p != pair);
        until
    }

    pub(super) fn pair_held(&self, pair: &PairKey) -> bool {
        self.holds.pairs.get(pair).is_some_and(|h| h.until > now_ms())
    }
    pub(super) fn pair_running(&self, pair: &PairKey) -> bool {
        self.instances_of(pair) > 0
    }
    pub(super) fn instances_of(&self, pair: &PairKey) -> usize {
        self.runs
            .instances
            .values()
            .filter(|i| i.info.agent_id == pair.agent_id && i.info.project_id == pair.project_id)
            .count()
    }

    /// The user paused an agent: drop its queued questions; "Stop and pause" stops its instances too.
    pub(super) fn pause_agent(&mut self, agent: String, until: Option<UnixMs>, stop_running: bool) {
        tracing::info!(agent = %agent, until = ?until, "paused by the user");
        self.purge_queue(&agent);
        if stop_running {
            let ids: Vec<u64> = self
                .runs
                .instances
                .iter()
                .filter(|(_, i)| i.info.agent_id == agent)
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                self.stop_instance_for_user(id);
            }
        }
        self.holds.paused.insert(agent, until);
        self.persist();
    }

    pub(super) fn resume_agent(&mut self, agent: &str) {
        if self.holds.paused.remove(agent).is_some() {
            tracing::info!(agent = %agent, "resumed by the user");
            self.cycle.next_at = tokio::time::Instant::now();
            self.persist();
        }
    }

    pub(super) fn retry_agent(&mut self, agent: &str) {
        if self.holds.cooldowns.lift(agent, now_ms()) {
            tracing::info!(agent = %agent, "cooldown lifted by the user (retry now)");
            self.cycle.next_at = tokio::time::Instant::now();
            self.status.dirty = true;
            self.persist();
        }
    }

    /// Everything that decides whether a pair may be asked or started, read from the owners' state.
    pub(super) fn pair_facts(&self, pair: &PairKey) -> PairFacts {
        PairFacts {
            running: self.running,
            spawning: self.cycle.asking.contains(pair),
            instances: self.instances_of(pair),
            enabled: self.settings.agents.get(&pair.agent_id).is_some_and(|a| a.enabled),
            has_passkey: self.secrets.passkeys.get(&pair.agent_id).is_some_and(|p| p.is_some()),
            cooling: self.settings.error_protection.enabled
                && self
                    .holds
                    .cooldowns
                    .active(&pair.agent_id, &pair.project_id, now_ms())
                    .is_some(),
            exit_pending: self.exits.pending.contains(pair),
            held: self.pair_held(pair),
            paused: self.holds.paused_now(&pair.agent_id, now_ms()).is_some(),
        }
    }

    /// Why a `start` for a pair must not be obeyed (it changed while the question was in flight).
    pub(super) fn blocked_for_start(&self, pair: &PairKey) -> Option<&'static str> {
        why_not_start(&self.pair_facts(pair))
    }

    /// Why a pair must not be asked now (None = ask). A missing passkey is announced once per agent.
    pub(super) fn blocked(&mut self, pair: &PairKey) -> Option<&'static str> {
        let f = self.pair_facts(pair);
        let why = why_not_ask(&f);
        if why == Some("no passkey") && self.secrets.warned_no_passkey.insert(pair.agent_id.clone()) {
            tracing::warn!(agent = %pair.agent_id, "no passkey in the secret store; not starting this agent (set one with `agentpm-coordinator passkey set {}`)", pair.agent_id);
            let _ = self.ev.send(Event::PasskeyMissing {
                agent_id: pair.agent_id.clone(),
            });
        }
        why
    }
}

/// What decides a pair's eligibility (pure data, so the rules below are unit-tested).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PairFacts {
    pub(super) running: bool,
    pub(super) spawning: bool,
    pub(super) instances: usize,
    pub(super) enabled: bool,
    pub(super) has_passkey: bool,
    pub(super) cooling: bool,
    pub(super) exit_pending: bool,
    pub(super) held: bool,
    pub(super) paused: bool,
}

/// Why a pair must not be asked: every question holds a slot and may be answered `start`, so only pairs we
/// could start right now are asked (a running pair too: its other purpose). An unreported exit waits, so
/// the server knows the old session is gone before it decides.
pub(super) fn why_not_ask(f: &PairFacts) -> Option<&'static str> {
    if f.spawning || f.instances >= MAX_INSTANCES_PER_PAIR {
        Some("busy")
    } else if !f.enabled {
        Some("disabled")
    } else if f.paused {
        Some("paused")
    } else if !f.has_passkey {
        Some("no passkey")
    } else if f.cooling {
        Some("cooldown")
    } else if f.exit_pending {
        Some("exit not yet reported")
    } else if f.held {
        Some("pair held")
    } else {
        None
    }
}

/// Why a `start` answer must not be obeyed (each is a lost lease, counted and shown).
pub(super) fn why_not_start(f: &PairFacts) -> Option<&'static str> {
    if !f.running {
        Some("the coordinator was stopped while asking")
    } else if f.spawning {
        Some("an instance of this pair is being started")
    } else if f.instances >= MAX_INSTANCES_PER_PAIR {
        Some("this pair already runs an instance per purpose")
    } else if !f.enabled {
        Some("agent disabled")
    } else if f.paused {
        Some("agent paused by you")
    } else if !f.has_passkey {
        Some("no passkey")
    } else if f.cooling {
        Some("agent cooling down")
    } else if f.held {
        Some("this project's last start failed or its working directory is unusable")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> PairFacts {
        PairFacts {
            running: true,
            enabled: true,
            has_passkey: true,
            ..Default::default()
        }
    }

    #[test]
    fn an_idle_enabled_pair_with_a_passkey_is_asked_and_started() {
        assert_eq!(why_not_ask(&ok()), None);
        assert_eq!(why_not_start(&ok()), None);
    }

    #[test]
    fn a_running_pair_is_asked_for_its_other_purpose_but_never_a_third_instance() {
        assert_eq!(why_not_ask(&PairFacts { instances: 1, ..ok() }), None);
        assert_eq!(why_not_start(&PairFacts { instances: 1, ..ok() }), None);
        assert_eq!(why_not_ask(&PairFacts { instances: 2, ..ok() }), Some("busy"));
        assert!(why_not_start(&PairFacts { instances: 2, ..ok() }).is_some());
        assert_eq!(why_not_ask(&PairFacts { spawning: true, ..ok() }), Some("busy"));
    }

    #[test]
    fn each_block_has_its_reason() {
        assert_eq!(why_not_ask(&PairFacts { enabled: false, ..ok() }), Some("disabled"));
        assert_eq!(
            why_not_ask(&PairFacts {
                has_passkey: false,
                ..ok()
            }),
            Some("no passkey")
        );
        assert_eq!(why_not_ask(&PairFacts { cooling: true, ..ok() }), Some("cooldown"));
        assert_eq!(
            why_not_ask(&PairFacts {
                exit_pending: true,
                ..ok()
            }),
            Some("exit not yet reported")
        );
        assert_eq!(why_not_ask(&PairFacts { held: true, ..ok() }), Some("pair held"));
        assert_eq!(why_not_ask(&PairFacts { paused: true, ..ok() }), Some("paused"));
        assert!(why_not_start(&PairFacts { paused: true, ..ok() }).is_some());
        assert!(why_not_start(&PairFacts { running: false, ..ok() })
            .unwrap()
            .contains("stopped"));
        // A start that arrives while the previous exit's report is in flight is obeyed (the lease is ours).
        assert_eq!(
            why_not_start(&PairFacts {
                exit_pending: true,
                ..ok()
            }),
            None
        );
    }
}
