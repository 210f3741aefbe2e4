//! The tray (menu-bar) icon and its menu, drawn from `tray_model` (the pure part: what is shown, tested
//! there). This file only turns the model into Tauri menus and picks the icon images.

use crate::tray_model::{self, Entry, Icon, TrayModel};
use coordinator::api::Snapshot;
use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Wry};

pub const TRAY_ID: &str = "main";

const ICON_IDLE: &[u8] = include_bytes!("../../icons/tray-idle.png");
const ICON_RUNNING: &[u8] = include_bytes!("../../icons/tray-running.png");
const ICON_ERROR: &[u8] = include_bytes!("../../icons/tray-error.png");
const ICON_IDLE_LIGHT: &[u8] = include_bytes!("../../icons/tray-idle-light.png");
const ICON_RUNNING_LIGHT: &[u8] = include_bytes!("../../icons/tray-running-light.png");
const ICON_ERROR_LIGHT: &[u8] = include_bytes!("../../icons/tray-error-light.png");

/// macOS tints the black template images itself; on Linux pick the glyph colour for the panel once.
fn light_glyph() -> bool {
    static LIGHT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LIGHT.get_or_init(|| {
        if cfg!(target_os = "macos") {
            return false;
        }
        let scheme = std::process::Command::new("gsettings")
            .args(["get", "org.gnome.desktop.interface", "color-scheme"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        tray_model::linux_light_glyph(std::env::var("AGENTPM_TRAY_ICON").ok().as_deref(), scheme.as_deref())
    })
}

fn icon_bytes(i: Icon) -> &'static [u8] {
    match (i, light_glyph()) {
        (Icon::Idle, false) => ICON_IDLE,
        (Icon::Running, false) => ICON_RUNNING,
        (Icon::Error, false) => ICON_ERROR,
        (Icon::Idle, true) => ICON_IDLE_LIGHT,
        (Icon::Running, true) => ICON_RUNNING_LIGHT,
        (Icon::Error, true) => ICON_ERROR_LIGHT,
    }
}

/// The signature of what the tray would show for `s` now (rebuild only when it changes).
pub fn signature(s: &Snapshot, demo: bool) -> String {
    tray_model::build(s, demo, None, coordinator::api::now_ms()).signature()
}

fn entries(app: &AppHandle, es: &[Entry]) -> tauri::Result<Vec<Box<dyn IsMenuItem<Wry>>>> {
    let mut out: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    for e in es {
        match e {
            Entry::Item(id, label, enabled) => {
                out.push(Box::new(MenuItem::with_id(app, id, label, *enabled, None::<&str>)?))
            }
            Entry::Separator => out.push(Box::new(PredefinedMenuItem::separator(app)?)),
            Entry::Submenu(label, sub) => {
                let items = entries(app, sub)?;
                let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|b| b.as_ref()).collect();
                out.push(Box::new(Submenu::with_items(app, label, true, &refs)?));
            }
        }
    }
    Ok(out)
}

fn menu(app: &AppHandle, m: &TrayModel) -> tauri::Result<Menu<Wry>> {
    let items = entries(app, &m.entries)?;
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|b| b.as_ref()).collect();
    Menu::with_items(app, &refs)
}

fn show(app: &AppHandle, m: &TrayModel) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else { return };
    if let Ok(menu) = menu(app, m) {
        let _ = tray.set_menu(Some(menu));
    }
    if let Ok(img) = Image::from_bytes(icon_bytes(m.icon)) {
        let _ = tray.set_icon(Some(img));
        let _ = tray.set_icon_as_template(true);
    }
    let _ = tray.set_tooltip(Some(m.tooltip.clone()));
}

/// `on_menu` handles a click on a menu item, by its id (`menu::on_menu`).
pub fn create(app: &AppHandle, on_menu: fn(&AppHandle, &str)) -> tauri::Result<TrayIcon> {
    let m = tray_model::build(&Snapshot::default(), false, None, coordinator::api::now_ms());
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(icon_bytes(Icon::Idle))?)
        // macOS tints template images for light and dark menu bars.
        .icon_as_template(true)
        .tooltip("AgentPM Coordinator")
        .menu(&menu(app, &m)?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, ev| on_menu(app, ev.id.as_ref()))
        .build(app)
}

/// `demo`: the engine runs on the embedded simulator; the menu and the tooltip say so.
pub fn update(app: &AppHandle, s: &Snapshot, demo: bool) {
    show(app, &tray_model::build(s, demo, None, coordinator::api::now_ms()));
}

/// The engine could not start (e.g. another coordinator holds the lock): error icon, the reason in the
/// tooltip, and "Start coordinator" to try again.
pub fn show_not_running(app: &AppHandle, reason: &str) {
    let mut m = tray_model::build(
        &Snapshot::default(),
        false,
        Some("Not running: open the window for why"),
        coordinator::api::now_ms(),
    );
    m.icon = Icon::Error;
    m.tooltip = format!("AgentPM Coordinator — {reason}");
    show(app, &m);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_icon_is_a_44px_png_in_both_colours() {
        for bytes in [
            ICON_IDLE,
            ICON_RUNNING,
            ICON_ERROR,
            ICON_IDLE_LIGHT,
            ICON_RUNNING_LIGHT,
            ICON_ERROR_LIGHT,
        ] {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            let (w, h) = (
                u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
                u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
            );
            assert_eq!((w, h), (44, 44));
        }
        assert_ne!(ICON_IDLE, ICON_IDLE_LIGHT);
    }

    #[test]
    fn the_menu_uses_the_window_words_and_its_signature_is_stable_while_a_cooldown_runs() {
        use coordinator::api::{AgentState, AgentStatus};
        let until = coordinator::api::now_ms() + 90 * 60_000;
        let cooldown = AgentState::Cooldown {
            until,
            reason: "quota".into(),
        };
        assert_eq!(
            tray_model::state_text(&cooldown),
            crate::status_words::words(&cooldown).text
        );
        let long = AgentState::Error {
            message: "x".repeat(200),
        };
        assert_eq!(
            tray_model::state_text(&long).chars().count(),
            tray_model::MENU_TEXT_MAX + 1
        );
        let a = AgentStatus {
            agent_id: "a".into(),
            enabled: true,
            has_passkey: true,
            state: cooldown,
            last_exit_code: None,
            last_log_path: None,
        };
        let s = Snapshot {
            agents: vec![a],
            ..Default::default()
        };
        let first = signature(&s, false);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(signature(&s, false), first, "the menu would be rebuilt every second");
        assert_ne!(signature(&s, true), first, "demo is shown");
    }
}
