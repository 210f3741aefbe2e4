//! The words for an agent's state: one function for the tray menu and the window, so both say the same.
//!
//! The window gets the words with every snapshot (`WindowSnapshot::agent_words`) instead of formatting the
//! state itself in JavaScript.

use coordinator::api::{AgentState, ServerHealth, Snapshot, UnixMs};
use serde::Serialize;
use std::collections::BTreeMap;

/// How a state should look: the window maps it to a CSS class of its pills.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    #[default]
    Neutral,
    Ok,
    Warn,
    Bad,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Words {
    pub text: String,
    pub tone: Tone,
}

/// A local clock time ("14:05" or "2:05 PM", see `coordinator::clock`), not a countdown: the tray menu is
/// only rebuilt when the state changes.
pub fn clock(at: UnixMs) -> Option<String> {
    coordinator::clock::clock(at)
}

pub fn words(state: &AgentState) -> Words {
    let (text, tone) = match state {
        AgentState::Idle => ("idle".to_string(), Tone::Neutral),
        AgentState::Running { instances } => (format!("running ({instances})"), Tone::Ok),
        AgentState::Cooldown { until, reason } => match clock(*until) {
            Some(t) => (format!("cooling down until {t} ({reason})"), Tone::Warn),
            None => (format!("cooling down ({reason})"), Tone::Warn),
        },
        AgentState::NoPasskey => ("no passkey".to_string(), Tone::Bad),
        AgentState::Disabled => ("disabled".to_string(), Tone::Neutral),
        AgentState::WaitingForServer => ("waiting for the server".to_string(), Tone::Warn),
        AgentState::Paused { until: None } => ("paused".to_string(), Tone::Warn),
        AgentState::Paused { until: Some(t) } => match clock(*t) {
            Some(c) => (format!("paused until {c}"), Tone::Warn),
            None => ("paused".to_string(), Tone::Warn),
        },
        AgentState::Error { message } => (format!("error: {message}"), Tone::Bad),
    };
    Words { text, tone }
}

/// The server's state in words, for the tray, the status line and the banner: a refused token is its own
/// state with the fix, not "unreachable".
pub fn server_words(server: &ServerHealth, running: bool) -> Words {
    let (text, tone) = if !running {
        ("stopped".to_string(), Tone::Neutral)
    } else if server.token_rejected {
        ("token rejected — set the new one in Settings".to_string(), Tone::Bad)
    } else if server.reachable {
        ("server OK".to_string(), Tone::Ok)
    } else if let Some(since) = server.unreachable_since.and_then(clock) {
        (format!("server unreachable since {since}"), Tone::Bad)
    } else {
        ("connecting to the server…".to_string(), Tone::Neutral)
    };
    Words { text, tone }
}

/// What the window receives: the engine's snapshot (same JSON fields) plus the words for each agent.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WindowSnapshot {
    #[serde(flatten)]
    pub snapshot: Snapshot,
    pub agent_words: BTreeMap<String, Words>,
    pub server_words: Words,
}

impl From<Snapshot> for WindowSnapshot {
    fn from(snapshot: Snapshot) -> Self {
        let agent_words = snapshot
            .agents
            .iter()
            .map(|a| (a.agent_id.clone(), words(&a.state)))
            .collect();
        let server_words = server_words(&snapshot.server, snapshot.running);
        WindowSnapshot {
            snapshot,
            agent_words,
            server_words,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::api::AgentStatus;

    #[test]
    fn each_state_has_its_words_and_tone() {
        let cases = [
            (AgentState::Idle, "idle", Tone::Neutral),
            (AgentState::Running { instances: 2 }, "running (2)", Tone::Ok),
            (AgentState::NoPasskey, "no passkey", Tone::Bad),
            (AgentState::Disabled, "disabled", Tone::Neutral),
            (
                AgentState::Error {
                    message: "spawn failed".into(),
                },
                "error: spawn failed",
                Tone::Bad,
            ),
        ];
        for (state, text, tone) in cases {
            assert_eq!(
                words(&state),
                Words {
                    text: text.into(),
                    tone
                },
                "{state:?}"
            );
        }
    }

    #[test]
    fn cooldown_names_a_local_clock_time_and_the_reason() {
        let until = coordinator::api::now_ms() + 90 * 60_000;
        let hhmm = chrono::DateTime::from_timestamp_millis(until)
            .unwrap()
            .with_timezone(&chrono::Local)
            .format("%H:%M")
            .to_string();
        let w = words(&AgentState::Cooldown {
            until,
            reason: "quota".into(),
        });
        assert_eq!(
            w,
            Words {
                text: format!("cooling down until {hhmm} (quota)"),
                tone: Tone::Warn
            }
        );
        // Out of chrono's range: no clock time, still the reason.
        assert_eq!(
            words(&AgentState::Cooldown {
                until: i64::MAX,
                reason: "backoff".into()
            })
            .text,
            "cooling down (backoff)"
        );
    }

    #[test]
    fn a_rejected_token_is_not_an_unreachable_server() {
        let mut h = ServerHealth {
            reachable: true,
            token_rejected: true,
            ..Default::default()
        };
        let w = server_words(&h, true);
        assert!(w.text.contains("token rejected") && w.tone == Tone::Bad, "{w:?}");
        h.token_rejected = false;
        assert_eq!(server_words(&h, true).text, "server OK");
        h.reachable = false;
        h.unreachable_since = Some(coordinator::api::now_ms());
        assert!(server_words(&h, true).text.starts_with("server unreachable since "));
        assert_eq!(server_words(&h, false).text, "stopped");
    }

    #[test]
    fn the_window_payload_keeps_the_snapshot_fields_and_adds_the_words() {
        let agent = AgentStatus {
            agent_id: "agt_a".into(),
            enabled: true,
            has_passkey: false,
            state: AgentState::NoPasskey,
            last_exit_code: None,
            last_log_path: None,
        };
        let snap = Snapshot {
            running: true,
            agents: vec![agent],
            ..Default::default()
        };
        let v = serde_json::to_value(WindowSnapshot::from(snap.clone())).unwrap();
        let plain = serde_json::to_value(&snap).unwrap();
        for (k, val) in plain.as_object().unwrap() {
            assert_eq!(&v[k], val, "field {k} changed");
        }
        assert_eq!(
            v["agent_words"]["agt_a"],
            serde_json::json!({"text": "no passkey", "tone": "bad"})
        );
    }
}
