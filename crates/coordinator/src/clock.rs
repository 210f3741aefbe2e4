//! Times of day as the user reads them: "14:05", or "2:05 PM" where the locale uses a 12-hour clock. One
//! setting for the whole process, so the tray, the window's engine-made words (attention) and the status words
//! agree; the app sets it from the window's locale (Intl's hour cycle), the CLI keeps 24 hours.

use crate::api::UnixMs;
use std::sync::atomic::{AtomicBool, Ordering};

static TWELVE_HOUR: AtomicBool = AtomicBool::new(false);

pub fn set_twelve_hour(on: bool) {
    TWELVE_HOUR.store(on, Ordering::Relaxed);
}

/// A local clock time, to the minute.
pub fn clock(at: UnixMs) -> Option<String> {
    let fmt = if TWELVE_HOUR.load(Ordering::Relaxed) {
        "%-I:%M %p"
    } else {
        "%H:%M"
    };
    chrono::DateTime::from_timestamp_millis(at).map(|t| t.with_timezone(&chrono::Local).format(fmt).to_string())
}
