//! "Needs you": the few states a user has to act on, each with a one-line reason and the action that fixes
//! it. Derived from the snapshot (pure, so the tray, the window and `status` all say the same), plus two
//! facts the snapshot does not carry: consecutive failures per agent and agent-wide local problems.

use crate::api::{AgentState, Attention, AttentionAction as Act, Snapshot, UnixMs};
use std::collections::HashMap;

/// An agent that failed this many runs in a row needs a look (one failure is routine: it backs off).
pub const FAILURES_IN_A_ROW: u32 = 3;

/// What the engine knows beyond the snapshot.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// Consecutive failed runs per agent (the longest streak over its projects).
    pub failures_in_a_row: HashMap<String, u32>,
    /// Agent-wide problems only the user can fix (provider CLI missing, log folder unwritable).
    pub local_problems: HashMap<String, String>,
}

fn clock(at: UnixMs) -> String {
    crate::clock::clock(at).unwrap_or_else(|| "later".into())
}

fn item(key: String, agent_id: Option<&str>, reason: String, fix: &str, action: Act) -> Attention {
    Attention {
        key,
        agent_id: agent_id.map(str::to_string),
        reason,
        fix: fix.to_string(),
        action: Some(action),
        until: None,
    }
}

/// The attention list, most pressing first: the server, then the secret store, then each agent.
pub fn list(s: &Snapshot, f: &Facts) -> Vec<Attention> {
    let mut out = Vec::new();
    if s.running && s.server.token_rejected {
        out.push(item(
            "server:token".into(),
            None,
            "The PM server rejected the coordinator token.".into(),
            "Set the new token in Settings → Coordinator token.",
            Act::SetToken,
        ));
    } else if s.running && !s.server.reachable {
        if let Some(since) = s.server.unreachable_since {
            let why = s.server.last_error.as_deref().unwrap_or("no answer");
            out.push(item(
                "server:down".into(),
                None,
                format!(
                    "The PM server at {} is unreachable since {} ({why}).",
                    s.server.address,
                    clock(since)
                ),
                "Start AI Agent PM, or check the server address in Settings.",
                Act::CheckServer,
            ));
        }
    }
    if let Some(e) = &s.secret_store_error {
        out.push(item(
            "secrets".into(),
            None,
            format!("The secret store cannot be read: {e}"),
            "Unlock the keychain (or the login keyring) and press Start.",
            Act::UnlockSecrets,
        ));
    }
    for a in s.agents.iter().filter(|a| a.enabled) {
        let id = a.agent_id.as_str();
        if let Some(p) = f.local_problems.get(id) {
            let (fix, act) = if p.contains("log file") || p.contains("cannot write") {
                ("Choose a writable log folder in Settings.", Act::ChooseLogFolder)
            } else {
                (
                    "Fix the provider's command on the Providers page (Test shows what is found).",
                    Act::FixProvider,
                )
            };
            out.push(item(
                format!("agent:{id}:local"),
                Some(id),
                format!("{id} cannot start: {p}"),
                fix,
                act,
            ));
        }
        match &a.state {
            AgentState::NoPasskey => out.push(item(
                format!("agent:{id}:passkey"),
                Some(id),
                format!("{id} has no passkey."),
                "Set it on the Agents page.",
                Act::SetPasskey,
            )),
            AgentState::Cooldown { until, reason } if reason.starts_with("quota") => {
                let who = match reason.find("hit by ") {
                    Some(i) => format!(
                        "{id} waits for its provider's quota ({}); its work is parked until {}.",
                        reason[i..].trim_end_matches(')'),
                        clock(*until)
                    ),
                    None => format!(
                        "{id} hit its provider's quota; its work is parked until {}.",
                        clock(*until)
                    ),
                };
                let mut it = item(
                    format!("agent:{id}:quota"),
                    Some(id),
                    who,
                    "Nothing to do: it resumes by itself (or retry now if the limit was lifted).",
                    Act::RetryNow,
                );
                it.until = Some(*until);
                out.push(it)
            }
            _ => {}
        }
        if let Some(n) = f.failures_in_a_row.get(id).filter(|n| **n >= FAILURES_IN_A_ROW) {
            let last = match &a.state {
                AgentState::Error { message } => format!(": {message}"),
                _ => String::new(),
            };
            out.push(item(
                format!("agent:{id}:failing"),
                Some(id),
                format!("{id} failed {n} runs in a row{last}."),
                "Open its last run; pause it until the cause is fixed.",
                Act::OpenLastRun,
            ));
        }
    }
    out
}

/// Keys that appeared and disappeared between two lists (for the start/end events).
pub fn diff<'a>(before: &'a [Attention], after: &'a [Attention]) -> (Vec<&'a Attention>, Vec<&'a Attention>) {
    let started = after
        .iter()
        .filter(|a| !before.iter().any(|b| b.key == a.key))
        .collect();
    let ended = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.key == b.key))
        .collect();
    (started, ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{AgentStatus, ServerHealth};

    fn agent(id: &str, state: AgentState) -> AgentStatus {
        AgentStatus {
            agent_id: id.into(),
            enabled: true,
            has_passkey: true,
            state,
            last_exit_code: None,
            last_log_path: None,
        }
    }

    fn snap() -> Snapshot {
        Snapshot {
            running: true,
            server: ServerHealth {
                address: "/tmp/pm.sock".into(),
                reachable: true,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn a_healthy_coordinator_needs_nothing() {
        let mut s = snap();
        s.agents = vec![
            agent("a", AgentState::Idle),
            agent("b", AgentState::Running { instances: 1 }),
        ];
        assert!(list(&s, &Facts::default()).is_empty());
    }

    #[test]
    fn a_rejected_token_is_named_and_not_also_an_outage() {
        let mut s = snap();
        s.server.token_rejected = true;
        let l = list(&s, &Facts::default());
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].key, "server:token");
        assert!(l[0].fix.contains("token"));
        s.server = ServerHealth {
            address: "x".into(),
            reachable: false,
            unreachable_since: Some(0),
            last_error: Some("connection refused".into()),
            ..Default::default()
        };
        let l = list(&s, &Facts::default());
        assert_eq!(l[0].key, "server:down");
        assert!(l[0].reason.contains("connection refused"));
        // Stopped: nothing about the server.
        s.running = false;
        assert!(list(&s, &Facts::default()).is_empty());
    }

    #[test]
    fn agents_need_you_for_a_passkey_a_quota_a_missing_cli_and_a_failure_streak() {
        let mut s = snap();
        s.agents = vec![
            agent("nokey", AgentState::NoPasskey),
            agent(
                "quota",
                AgentState::Cooldown {
                    until: 0,
                    reason: "quota".into(),
                },
            ),
            agent(
                "err",
                AgentState::Cooldown {
                    until: 0,
                    reason: "error in 1 project".into(),
                },
            ),
            agent(
                "failing",
                AgentState::Error {
                    message: "Error: boom".into(),
                },
            ),
            agent("nocli", AgentState::Idle),
        ];
        let f = Facts {
            failures_in_a_row: HashMap::from([("failing".to_string(), 3), ("err".to_string(), 2)]),
            local_problems: HashMap::from([(
                "nocli".to_string(),
                "provider command `claude` not found on PATH".to_string(),
            )]),
        };
        let keys: Vec<String> = list(&s, &f).into_iter().map(|a| a.key).collect();
        assert_eq!(
            keys,
            vec![
                "agent:nokey:passkey",
                "agent:quota:quota",
                "agent:failing:failing",
                "agent:nocli:local"
            ]
        );
        // A disabled agent needs nothing.
        s.agents[0].enabled = false;
        assert!(!list(&s, &f).iter().any(|a| a.key == "agent:nokey:passkey"));
    }

    #[test]
    fn diff_names_what_started_and_ended() {
        let a = |k: &str| Attention {
            key: k.into(),
            agent_id: None,
            reason: String::new(),
            fix: String::new(),
            action: None,
            until: None,
        };
        let before = vec![a("x"), a("y")];
        let after = vec![a("y"), a("z")];
        let (started, ended) = diff(&before, &after);
        assert_eq!(started.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), vec!["z"]);
        assert_eq!(ended.iter().map(|a| a.key.as_str()).collect::<Vec<_>>(), vec!["x"]);
    }
}
