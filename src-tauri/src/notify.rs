//! Which engine events become a desktop notification, and its text. Pure: the caller shows it.

use coordinator::api::Event;
use std::collections::HashSet;

pub const TITLE: &str = "AgentPM Coordinator";

/// Remembers quota cooldowns already announced: a quota failure is announced once, by its cooldown (which
/// the engine sends just before the exit), not again by the exit.
#[derive(Default)]
pub struct Notifier {
    quota_announced: HashSet<String>,
}

impl Notifier {
    /// The notification body for an event, or None for events the user need not be interrupted by.
    pub fn text(&mut self, ev: &Event) -> Option<String> {
        match ev {
            // `error` is set for failed runs only: not for a clean exit, nor for one the user stopped.
            Event::InstanceExited {
                instance,
                error: Some(error),
                ..
            } => (!self.quota_announced.remove(&instance.agent_id))
                .then(|| format!("{} failed on {}: {error}", instance.agent_id, instance.project_id)),
            Event::SpawnFailed { agent_id, error, .. } => Some(format!("{agent_id} could not start: {error}")),
            Event::CooldownStarted {
                agent_id,
                reason,
                until,
            } if reason == "quota" => {
                self.quota_announced.insert(agent_id.clone());
                Some(format!(
                    "{agent_id} hit a quota; cooling down until {}",
                    crate::status_words::clock(*until).unwrap_or_default()
                ))
            }
            Event::ServerUnreachable { error, .. } => Some(format!("PM server unreachable: {error}")),
            // Other attention states are announced by their own events (server down, token, quota, spawn).
            Event::AttentionStarted { item } if item.key.ends_with(":failing") || item.key.ends_with(":passkey") => {
                Some(format!("{} {}", item.reason, item.fix))
            }
            Event::TokenRejected { .. } => {
                Some("The PM server rejected the coordinator token — set the new one in Settings.".to_string())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::api::InstanceInfo;

    fn exited(agent: &str, error: Option<&str>) -> Event {
        let instance = InstanceInfo {
            id: 1,
            agent_id: agent.into(),
            project_id: "prj_1".into(),
            pid: 42,
            started_at: 0,
            provider: "claude".into(),
            model: None,
            task_id: None,
            log_path: "/l/1.log".into(),
            spawn_ms: 0.0,
            ..Default::default()
        };
        Event::InstanceExited {
            instance,
            exit_code: Some(1),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn failures_are_announced_and_clean_exits_are_not() {
        let mut n = Notifier::default();
        assert_eq!(
            n.text(&exited("agt_a", Some("exit code 1"))).as_deref(),
            Some("agt_a failed on prj_1: exit code 1")
        );
        assert_eq!(n.text(&exited("agt_a", None)), None);
        assert_eq!(
            n.text(&Event::SpawnFailed {
                agent_id: "agt_b".into(),
                project_id: "prj_1".into(),
                error: "no such file".into()
            })
            .as_deref(),
            Some("agt_b could not start: no such file")
        );
        assert_eq!(
            n.text(&Event::ServerUnreachable {
                since: 0,
                error: "connection refused".into()
            })
            .as_deref(),
            Some("PM server unreachable: connection refused")
        );
        assert_eq!(n.text(&Event::Started), None);
        assert_eq!(n.text(&Event::ServerReachable { after_ms: 5 }), None);
        let item = |key: &str| coordinator::api::Attention {
            key: key.into(),
            agent_id: Some("agt_a".into()),
            reason: "agt_a failed 3 runs in a row.".into(),
            fix: "Open its last log.".into(),
            action: None,
            until: None,
        };
        assert_eq!(
            n.text(&Event::AttentionStarted {
                item: item("agent:agt_a:failing")
            })
            .as_deref(),
            Some("agt_a failed 3 runs in a row. Open its last log.")
        );
        assert_eq!(
            n.text(&Event::AttentionStarted {
                item: item("server:down")
            }),
            None,
            "announced by ServerUnreachable already"
        );
    }

    #[test]
    fn a_quota_is_announced_once_by_its_cooldown_not_again_by_the_exit() {
        let mut n = Notifier::default();
        let until = coordinator::api::now_ms() + 3_600_000;
        let hhmm = crate::status_words::clock(until).unwrap();
        let cooldown = Event::CooldownStarted {
            agent_id: "agt_a".into(),
            until,
            reason: "quota".into(),
        };
        assert_eq!(
            n.text(&cooldown),
            Some(format!("agt_a hit a quota; cooling down until {hhmm}"))
        );
        assert_eq!(
            n.text(&exited("agt_a", Some("quota exceeded"))),
            None,
            "the quota exit was announced twice"
        );
        // The next failure of that agent is news again.
        assert!(n.text(&exited("agt_a", Some("exit code 1"))).is_some());
        // Other cooldowns (failure backoff) are not announced.
        assert_eq!(
            n.text(&Event::CooldownStarted {
                agent_id: "agt_a".into(),
                until,
                reason: "backoff".into()
            }),
            None
        );
    }
}
