//! The tray (menu-bar) icon and its menu: status, start/stop, a submenu per agent, open window, the app's own
//! log, quit.

use coordinator::api::{AgentState, Snapshot};
use tauri::image::Image;
use tauri::menu::{Menu, MenuBuilder, MenuItem, SubmenuBuilder};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

pub const TRAY_ID: &str = "main";

const ICON_IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const ICON_RUNNING: &[u8] = include_bytes!("../../icons/tray-running.png");
const ICON_ERROR: &[u8] = include_bytes!("../../icons/tray-error.png");

/// The agent's state in the same words as the window (`status_words`), cut to fit a menu item.
fn state_text(s: &AgentState) -> String {
    cut(&crate::status_words::words(s).text)
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MENU_TEXT_MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Longer error messages are cut in the menu (the window shows them whole).
const MENU_TEXT_MAX: usize = 60;

/// Which icon fits the picture: error when the server is unreachable or an agent failed.
fn icon_for(s: &Snapshot) -> &'static [u8] {
    let server_bad = !s.attention.is_empty() || (s.running && (s.server.token_rejected || (!s.server.reachable && s.server.last_error.is_some())));
    let error = server_bad || s.agents.iter().any(|a| matches!(a.state, AgentState::Error { .. }));
    if error {
        ICON_ERROR
    } else if !s.instances.is_empty() {
        ICON_RUNNING
    } else {
        ICON_IDLE
    }
}

/// A string that changes exactly when the menu must be rebuilt (cheap to compare on every snapshot).
pub fn signature(s: &Snapshot) -> String {
    let mut sig = s.summary();
    for a in &s.agents {
        sig.push('|');
        sig.push_str(&a.agent_id);
        sig.push(':');
        sig.push_str(&state_text(&a.state));
    }
    sig.push_str(if s.running { "|on" } else { "|off" });
    for a in &s.attention {
        sig.push('|');
        sig.push_str(&a.key);
    }
    // The icon changes with states the summary does not name (an agent's error): redraw when it does.
    sig.push_str(if icon_for(s) == ICON_ERROR { "|error" } else if icon_for(s) == ICON_RUNNING { "|running" } else { "|idle" });
    sig
}

pub fn build_menu(app: &AppHandle, s: &Snapshot, status_text: Option<&str>) -> tauri::Result<Menu<Wry>> {
    let status = MenuItem::with_id(app, "status", status_text.map(str::to_string).unwrap_or_else(|| s.summary()), false, None::<&str>)?;
    let start = MenuItem::with_id(app, "start", "Start coordinator", !s.running, None::<&str>)?;
    let stop = MenuItem::with_id(app, "stop", "Stop coordinator", s.running, None::<&str>)?;
    let mut b = MenuBuilder::new(app).item(&status).separator();
    // "Needs you" first: each item says what is wrong and, on click, opens the window where it is fixed.
    if !s.attention.is_empty() {
        b = b.item(&MenuItem::with_id(app, "needs-you", format!("Needs you ({})", s.attention.len()), false, None::<&str>)?);
        for a in &s.attention {
            b = b.item(&MenuItem::with_id(app, "open", format!("⚠ {}", cut(&a.reason)), true, None::<&str>)?);
        }
        b = b.separator();
    }
    b = b.item(&start).item(&stop).separator();
    for a in &s.agents {
        let sub = SubmenuBuilder::new(app, format!("{} — {}", a.agent_id, state_text(&a.state)))
            .item(&MenuItem::with_id(app, format!("log:{}", a.agent_id), "Open latest log", a.last_log_path.is_some() || matches!(a.state, AgentState::Running { .. }), None::<&str>)?)
            .item(&MenuItem::with_id(app, format!("dir:{}", a.agent_id), "Open log folder", true, None::<&str>)?)
            .separator()
            .item(&match a.state {
                AgentState::Paused { .. } => MenuItem::with_id(app, format!("resume:{}", a.agent_id), "Resume", s.running, None::<&str>)?,
                _ => MenuItem::with_id(app, format!("pause:{}", a.agent_id), "Pause (stop its runs)", s.running && a.enabled, None::<&str>)?,
            })
            .item(&MenuItem::with_id(app, format!("pause1h:{}", a.agent_id), "Pause for 1 hour", s.running && a.enabled, None::<&str>)?)
            .build()?;
        b = b.item(&sub);
    }
    if !s.agents.is_empty() {
        b = b.separator();
    }
    b.item(&MenuItem::with_id(app, "open", "Open window…", true, None::<&str>)?)
        .item(&MenuItem::with_id(app, "applog", "Open coordinator log", true, None::<&str>)?)
        .item(&MenuItem::with_id(app, "quit", "Quit AgentPM Coordinator", true, None::<&str>)?)
        .build()
}

/// `on_menu` handles a click on a menu item, by its id (`menu::on_menu`).
pub fn create(app: &AppHandle, on_menu: fn(&AppHandle, &str)) -> tauri::Result<TrayIcon> {
    let menu = build_menu(app, &Snapshot::default(), None)?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(ICON_IDLE)?)
        // macOS tints template images for light and dark menu bars.
        .icon_as_template(true)
        .tooltip("AgentPM Coordinator")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, ev| on_menu(app, ev.id.as_ref()))
        .build(app)
}

/// `demo`: the engine runs on the embedded simulator; the menu and the tooltip say so.
pub fn update(app: &AppHandle, s: &Snapshot, demo: bool) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
    let status = demo.then(|| format!("Demo · {}", s.summary()));
    if let Ok(menu) = build_menu(app, s, status.as_deref()) {
        let _ = tray.set_menu(Some(menu));
    }
    if let Ok(img) = Image::from_bytes(icon_for(s)) {
        let _ = tray.set_icon(Some(img));
        let _ = tray.set_icon_as_template(true);
    }
    let _ = tray.set_tooltip(Some(format!("AgentPM Coordinator — {}{}", if demo { "Demo · " } else { "" }, s.summary())));
}

/// The engine could not start (e.g. another coordinator holds the lock): error icon, the reason in the
/// tooltip, and "Start coordinator" enabled to try again.
pub fn show_not_running(app: &AppHandle, reason: &str) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
    if let Ok(menu) = build_menu(app, &Snapshot::default(), Some("Not running: open the window for why")) {
        let _ = tray.set_menu(Some(menu));
    }
    if let Ok(img) = Image::from_bytes(ICON_ERROR) {
        let _ = tray.set_icon(Some(img));
        let _ = tray.set_icon_as_template(true);
    }
    let _ = tray.set_tooltip(Some(format!("AgentPM Coordinator — {reason}")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use coordinator::api::AgentStatus;

    fn agent(id: &str, state: AgentState) -> AgentStatus {
        AgentStatus { agent_id: id.into(), enabled: true, has_passkey: true, state, last_exit_code: None, last_log_path: None }
    }

    #[test]
    fn icon_follows_errors_then_instances() {
        let mut s = Snapshot { running: true, ..Default::default() };
        s.server.reachable = true;
        assert_eq!(icon_for(&s), ICON_IDLE);
        s.agents.push(agent("a", AgentState::Error { message: "boom".into() }));
        assert_eq!(icon_for(&s), ICON_ERROR);
        s.agents.clear();
        s.server.reachable = false;
        s.server.last_error = Some("connection refused".into());
        assert_eq!(icon_for(&s), ICON_ERROR);
    }

    #[test]
    fn the_menu_uses_the_window_words_and_its_signature_is_stable_while_a_cooldown_runs() {
        let until = coordinator::api::now_ms() + 90 * 60_000;
        let cooldown = AgentState::Cooldown { until, reason: "quota".into() };
        assert_eq!(state_text(&cooldown), crate::status_words::words(&cooldown).text);
        let long = AgentState::Error { message: "x".repeat(200) };
        assert_eq!(state_text(&long).chars().count(), MENU_TEXT_MAX + 1);
        assert!(state_text(&long).starts_with("error: xxx") && state_text(&long).ends_with('…'));
        let s = Snapshot { agents: vec![agent("a", cooldown)], ..Default::default() };
        let first = signature(&s);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(signature(&s), first, "the menu would be rebuilt every second");
        let mut other = s.clone();
        other.agents[0].state = AgentState::Idle;
        assert_ne!(signature(&other), first);
    }
}
