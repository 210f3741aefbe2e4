//! What the tray menu shows, as plain data built from a snapshot: no Tauri types, so the conventions are
//! unit-tested here and `tray.rs` only draws the model.
//!
//! Conventions: a "Demo" line when the engine runs on the built-in simulator; "Needs you" first; one line
//! per running instance with its elapsed time in whole minutes ("agt_a · prj_1 · 3 min"), so the menu's
//! signature (rebuild only when shown text changes) changes at most once a minute per instance; one
//! Start/Stop toggle; a submenu per agent with Pause/Resume and "Pause until…".

use coordinator::api::{AgentState, Snapshot, UnixMs};

/// Longer texts are cut in the menu (the window shows them whole).
pub const MENU_TEXT_MAX: usize = 60;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// id (what a click does, `menu::on_menu`), label, enabled.
    Item(String, String, bool),
    Separator,
    Submenu(String, Vec<Entry>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    Idle,
    Running,
    /// Something needs the user (attention), or an agent failed.
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrayModel {
    pub entries: Vec<Entry>,
    pub icon: Icon,
    pub tooltip: String,
}

impl TrayModel {
    /// A string that changes exactly when what the tray shows changes (cheap to compare per snapshot).
    pub fn signature(&self) -> String {
        format!("{:?}|{:?}|{}", self.entries, self.icon, self.tooltip)
    }
}

/// "Pause until…" choices: menu id prefix and label. The time is computed on click (`pause_until`).
pub const PAUSE_UNTIL: &[(&str, &str)] = &[
    ("pause1h", "1 hour"),
    ("pause4h", "4 hours"),
    ("pausetomorrow", "Tomorrow 9:00"),
];

/// When a "Pause until…" choice ends, from `now` in the local time zone `tz`.
pub fn pause_until<Tz: chrono::TimeZone>(kind: &str, now: UnixMs, tz: &Tz) -> Option<UnixMs> {
    match kind {
        "pause1h" => Some(now + 3_600_000),
        "pause4h" => Some(now + 4 * 3_600_000),
        "pausetomorrow" => {
            let today = chrono::DateTime::from_timestamp_millis(now)?
                .with_timezone(tz)
                .date_naive();
            let at = today.succ_opt()?.and_hms_opt(9, 0, 0)?;
            // On a DST change the earliest valid 9:00 (9:00 itself exists every day in practice).
            Some(at.and_local_timezone(tz.clone()).earliest()?.timestamp_millis())
        }
        _ => None,
    }
}

pub fn cut(text: &str) -> String {
    match text.char_indices().nth(MENU_TEXT_MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// The agent's state in the same words as the window (`status_words`), cut to fit a menu item.
pub fn state_text(s: &AgentState) -> String {
    cut(&crate::status_words::words(s).text)
}

/// Elapsed time in whole minutes: "<1 min", "3 min", "1 h 05 min".
pub fn elapsed(ms: i64) -> String {
    let min = ms.max(0) / 60_000;
    match min {
        0 => "<1 min".into(),
        m if m < 60 => format!("{m} min"),
        m => format!("{} h {:02} min", m / 60, m % 60),
    }
}

/// Which icon fits the picture: error when something needs the user or an agent failed.
pub fn icon_for(s: &Snapshot) -> Icon {
    let server_bad = !s.attention.is_empty()
        || (s.running && (s.server.token_rejected || (!s.server.reachable && s.server.last_error.is_some())));
    if server_bad || s.agents.iter().any(|a| matches!(a.state, AgentState::Error { .. })) {
        Icon::Error
    } else if !s.instances.is_empty() {
        Icon::Running
    } else {
        Icon::Idle
    }
}

fn item(id: impl Into<String>, label: impl Into<String>, enabled: bool) -> Entry {
    Entry::Item(id.into(), label.into(), enabled)
}

/// The menu for `s`. `status` replaces the summary line (e.g. "Not running: …"); `now` dates the elapsed times.
pub fn build(s: &Snapshot, demo: bool, status: Option<&str>, now: UnixMs) -> TrayModel {
    let mut e = Vec::new();
    if demo {
        e.push(item("demo", "Demo — built-in PM server, fake agents", false));
    }
    let summary = status.map(str::to_string).unwrap_or_else(|| s.summary());
    e.push(item("status", summary.clone(), false));
    e.push(Entry::Separator);
    // "Needs you" first: each item says what is wrong and, on click, opens the window where it is fixed.
    if !s.attention.is_empty() {
        e.push(item("needs-you", format!("Needs you ({})", s.attention.len()), false));
        for a in &s.attention {
            e.push(item("open", format!("⚠ {}", cut(&a.reason)), true));
        }
        e.push(Entry::Separator);
    }
    if !s.instances.is_empty() {
        let mut inst: Vec<_> = s.instances.iter().collect();
        inst.sort_by_key(|i| (i.started_at, i.id));
        for i in inst {
            // The project's name when the server gives one, else its id.
            let project = i
                .project_name
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(&i.project_id);
            e.push(item(
                "open",
                cut(&format!("{} · {project} · {}", i.agent_id, elapsed(now - i.started_at))),
                true,
            ));
        }
        e.push(Entry::Separator);
    }
    e.push(match s.running {
        true => item("stop", "Stop coordinator", true),
        false => item("start", "Start coordinator", true),
    });
    e.push(Entry::Separator);
    for a in &s.agents {
        let id = &a.agent_id;
        let can = s.running && a.enabled;
        let mut sub = vec![
            item(
                format!("log:{id}"),
                "Open latest log",
                a.last_log_path.is_some() || matches!(a.state, AgentState::Running { .. }),
            ),
            item(format!("dir:{id}"), "Open log folder", true),
            Entry::Separator,
        ];
        match a.state {
            AgentState::Paused { .. } => sub.push(item(format!("resume:{id}"), "Resume", s.running)),
            _ => {
                sub.push(item(format!("pause:{id}"), "Pause (stop its runs)", can));
                let until = PAUSE_UNTIL
                    .iter()
                    .map(|(k, label)| item(format!("{k}:{id}"), *label, can))
                    .collect();
                sub.push(Entry::Submenu("Pause until…".into(), until));
            }
        }
        e.push(Entry::Submenu(format!("{id} — {}", state_text(&a.state)), sub));
    }
    if !s.agents.is_empty() {
        e.push(Entry::Separator);
    }
    e.push(item("open", "Open window…", true));
    e.push(item("applog", "Open coordinator log", true));
    e.push(item("quit", "Quit AgentPM Coordinator", true));
    let tooltip = format!("AgentPM Coordinator — {}{}", if demo { "Demo · " } else { "" }, summary);
    TrayModel {
        entries: e,
        icon: icon_for(s),
        tooltip,
    }
}

/// Which glyph colour a Linux panel needs: `AGENTPM_TRAY_ICON` (`dark` = black glyph, `light` = white) wins,
/// else the desktop's `color-scheme` (`'prefer-light'` → black), else white: most panels are dark (GNOME's
/// top bar is, in both themes). True = the white (`-light`) glyph.
pub fn linux_light_glyph(override_: Option<&str>, color_scheme: Option<&str>) -> bool {
    match override_.map(str::trim) {
        Some("dark") => return false,
        Some("light") => return true,
        _ => {}
    }
    !color_scheme.is_some_and(|c| c.contains("prefer-light"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::api::{AgentStatus, Attention, InstanceInfo};

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

    fn instance(agent: &str, project: &str, started_at: UnixMs) -> InstanceInfo {
        InstanceInfo {
            id: started_at as u64,
            agent_id: agent.into(),
            project_id: project.into(),
            pid: 1,
            started_at,
            provider: "claude".into(),
            log_path: "x.log".into(),
            ..Default::default()
        }
    }

    fn labels(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .flat_map(|e| match e {
                Entry::Item(_, l, _) => vec![l.clone()],
                Entry::Separator => vec!["---".into()],
                Entry::Submenu(l, sub) => std::iter::once(format!("[{l}]"))
                    .chain(labels(sub).into_iter().map(|s| format!("  {s}")))
                    .collect(),
            })
            .collect()
    }

    fn ids(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| {
                if let Entry::Item(id, _, _) = e {
                    Some(id.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn one_line_per_instance_with_minutes_one_toggle_and_demo_marked() {
        let now = 10_000_000;
        let mut s = Snapshot {
            running: true,
            ..Default::default()
        };
        s.server.reachable = true;
        s.instances = vec![
            instance("agt_b", "prj_2", now - 30_000),
            instance("agt_a", "prj_1", now - 3 * 60_000 - 5_000),
        ];
        s.instances[0].project_name = Some("Web shop".into());
        s.agents = vec![
            agent("agt_a", AgentState::Running { instances: 1 }),
            agent("agt_b", AgentState::Running { instances: 1 }),
        ];
        let m = build(&s, true, None, now);
        let l = labels(&m.entries);
        assert!(l[0].starts_with("Demo"), "{l:?}");
        assert!(m.tooltip.contains("Demo"));
        // Oldest first.
        let (a, b) = (
            l.iter().position(|x| x == "agt_a · prj_1 · 3 min"),
            l.iter().position(|x| x == "agt_b · Web shop · <1 min"),
        );
        assert!(a.is_some() && b.is_some() && a < b, "{l:?}");
        let top = ids(&m.entries);
        assert!(
            top.contains(&"stop".to_string()) && !top.contains(&"start".to_string()),
            "one toggle: {top:?}"
        );
        assert_eq!(m.icon, Icon::Running);
        s.running = false;
        let top = ids(&build(&s, false, None, now).entries);
        assert!(top.contains(&"start".to_string()) && !top.contains(&"stop".to_string()));
        assert!(!labels(&build(&s, false, None, now).entries)[0].starts_with("Demo"));
    }

    #[test]
    fn the_signature_changes_with_the_minute_not_the_second() {
        let start = 1_000_000;
        let mut s = Snapshot {
            running: true,
            ..Default::default()
        };
        s.instances = vec![instance("agt_a", "prj_1", start)];
        let sig = |now| build(&s, false, None, now).signature();
        assert_eq!(sig(start + 61_000), sig(start + 119_000), "rebuilt within a minute");
        assert_ne!(sig(start + 119_000), sig(start + 121_000));
        s.agents.push(agent("agt_a", AgentState::Idle));
        assert_ne!(build(&s, false, None, start).signature(), {
            let mut t = s.clone();
            t.agents[0].state = AgentState::Paused { until: None };
            build(&t, false, None, start).signature()
        });
    }

    #[test]
    fn agent_submenu_has_pause_until_and_resume_when_paused() {
        let s = Snapshot {
            running: true,
            agents: vec![
                agent("agt_a", AgentState::Idle),
                agent("agt_p", AgentState::Paused { until: None }),
            ],
            ..Default::default()
        };
        let m = build(&s, false, None, 0);
        let l = labels(&m.entries).join("\n");
        assert!(
            l.contains("[agt_a — idle]")
                && l.contains("  [Pause until…]")
                && l.contains("    Tomorrow 9:00")
                && l.contains("    4 hours"),
            "{l}"
        );
        let Entry::Submenu(_, sub) = m
            .entries
            .iter()
            .find(|e| matches!(e, Entry::Submenu(l, _) if l.starts_with("agt_p")))
            .unwrap()
        else {
            unreachable!()
        };
        let sub_ids = ids(sub);
        assert!(
            sub_ids.contains(&"resume:agt_p".to_string()) && !sub_ids.iter().any(|i| i.starts_with("pause")),
            "{sub_ids:?}"
        );
    }

    #[test]
    fn needs_you_comes_first_and_turns_the_icon() {
        let mut s = Snapshot {
            running: true,
            ..Default::default()
        };
        s.server.reachable = true;
        assert_eq!(icon_for(&s), Icon::Idle);
        s.attention.push(Attention {
            key: "agent:a:failing".into(),
            agent_id: Some("a".into()),
            reason: "a failed 3 runs in a row.".into(),
            fix: "x".into(),
            action: None,
            until: None,
        });
        let l = labels(&build(&s, false, None, 0).entries);
        assert_eq!(
            (l[1].as_str(), l[2].as_str(), l[3].as_str()),
            ("---", "Needs you (1)", "⚠ a failed 3 runs in a row."),
            "{l:?}"
        );
        assert_eq!(icon_for(&s), Icon::Error);
        s.attention.clear();
        s.agents.push(agent("a", AgentState::Error { message: "boom".into() }));
        assert_eq!(icon_for(&s), Icon::Error);
    }

    #[test]
    fn pause_until_tomorrow_is_nine_local() {
        use chrono::TimeZone;
        let tz = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
        let now = tz.with_ymd_and_hms(2026, 3, 5, 23, 30, 0).unwrap().timestamp_millis();
        let t = pause_until("pausetomorrow", now, &tz).unwrap();
        assert_eq!(
            tz.timestamp_millis_opt(t).unwrap().to_string(),
            "2026-03-06 09:00:00 +02:00"
        );
        assert_eq!(pause_until("pause4h", now, &tz), Some(now + 4 * 3_600_000));
        assert_eq!(pause_until("nonsense", now, &tz), None);
    }

    #[test]
    fn elapsed_and_glyph_choice() {
        assert_eq!(elapsed(59_999), "<1 min");
        assert_eq!(elapsed(3 * 60_000 + 59_000), "3 min");
        assert_eq!(elapsed(65 * 60_000), "1 h 05 min");
        assert!(linux_light_glyph(None, None));
        assert!(linux_light_glyph(None, Some("'prefer-dark'")));
        assert!(linux_light_glyph(None, Some("'default'")));
        assert!(!linux_light_glyph(None, Some("'prefer-light'")));
        assert!(!linux_light_glyph(Some("dark"), Some("'prefer-dark'")));
        assert!(linux_light_glyph(Some("light"), Some("'prefer-light'")));
    }
}
