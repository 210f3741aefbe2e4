//! The app's own log: engine tracing events and the window's errors, redacted, in a rotated file beside
//! the settings (`<data root>/coordinator/app.log`) and on stderr.
//!
//! The app installs no tracing subscriber: with tracing's `log` feature the engine's events become `log`
//! records, and tauri-plugin-log is the one global logger. Its `log` command is how the window reports
//! errors, so a broken page leaves a trace in the same file.

use std::path::PathBuf;
use tauri::plugin::TauriPlugin;
use tauri::Runtime;
use tauri_plugin_log::{RotationStrategy, Target, TargetKind, TimezoneStrategy};

/// Rotate at 2 MB, keep 3 old files: enough for days of an unattended coordinator, bounded on disk.
const MAX_BYTES: u128 = 2_000_000;
const KEEP: usize = 3;

pub fn plugin<R: Runtime>(dir: PathBuf, debug: bool) -> TauriPlugin<R> {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    tauri_plugin_log::Builder::new()
        .clear_targets()
        .targets([
            Target::new(TargetKind::Stderr),
            Target::new(TargetKind::Folder {
                path: dir,
                file_name: Some("app".into()),
            }),
        ])
        .max_file_size(MAX_BYTES)
        .rotation_strategy(RotationStrategy::KeepSome(KEEP))
        .timezone_strategy(TimezoneStrategy::UseLocal)
        .level(level)
        // Windowing and HTTP internals are noise at info level.
        .level_for("tao", log::LevelFilter::Warn)
        .level_for("wry", log::LevelFilter::Warn)
        .level_for("hyper_util", log::LevelFilter::Warn)
        .level_for("reqwest", log::LevelFilter::Warn)
        .format(|out, message, record| {
            out.finish(format_args!(
                "{}",
                line(&chrono::Local::now(), record.level(), record.target(), message)
            ))
        })
        .build()
}

/// One log line, with every known secret masked (the redactor also covers messages from the window).
fn line(
    at: &chrono::DateTime<chrono::Local>,
    level: log::Level,
    target: &str,
    message: &std::fmt::Arguments,
) -> String {
    let text = coordinator::redact::global().redact(&message.to_string());
    format!("{} {level:<5} {target}: {text}", at.format("%Y-%m-%d %H:%M:%S%.3f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted() {
        coordinator::redact::global().add("applog-secret-value");
        let at = chrono::Local::now();
        let l = line(
            &at,
            log::Level::Warn,
            "webview",
            &format_args!("token applog-secret-value leaked?"),
        );
        assert!(!l.contains("applog-secret-value"), "{l}");
        assert!(l.contains("WARN  webview: token"), "{l}");
    }
}
