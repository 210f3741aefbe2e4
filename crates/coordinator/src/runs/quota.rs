//! When a provider limit resets, in the provider's own words.
//!
//! In order of trust: Claude's `rate_limit_event` with status "rejected" and its `resetsAt`; the reset
//! the CLIs print (Claude "usage limit reached|<unix s>" and "resets 3pm", Codex "try again in 3 days
//! 6 hours" / "try again at 3:28 PM", Gemini's 429 body `"retryDelay": "34s"` and "quota will reset after
//! 2h3m10s"); last the plain-text heuristics of [`crate::exit::detect_quota`]. Texts only count on a line
//! that names a limit (or right after one), in the log's tail, so a model talking about retries is no hit.
use super::events::RunEvent;
use crate::api::UnixMs;
use chrono::{Local, NaiveDate, NaiveTime, TimeZone, Utc};
use regex::Regex;
use std::sync::OnceLock;

const TAIL_LINES: usize = 50;
/// Longest plausible wait (Codex weekly limits print "try again in 6 days …").
const MAX_WAIT_MS: i64 = 8 * 24 * 3600 * 1000;

fn re(cell: &'static OnceLock<Regex>, pat: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pat).expect("static regex"))
}

/// A reset time the provider stated, or None.
pub fn from_provider(events: &[RunEvent], log_text: &str, ended_at: UnixMs) -> Option<UnixMs> {
    let rejected = events.iter().rev().find_map(|e| match e {
        RunEvent::RateLimit {
            status,
            resets_at: Some(t),
            ..
        } if status == "rejected" => Some(*t),
        _ => None,
    });
    rejected.or_else(|| from_text(log_text, ended_at))
}

/// [`from_provider`], else the plain-text fallback (a guessed wait from the time the run ended).
pub fn detect(events: &[RunEvent], log_text: &str, ended_at: UnixMs) -> Option<UnixMs> {
    from_provider(events, log_text, ended_at).or_else(|| {
        let secs = crate::exit::detect_quota(log_text, 0, (MAX_WAIT_MS / 1000) as u64)?;
        Some(ended_at.saturating_add(secs as i64 * 1000))
    })
}

fn names_a_limit(line: &str) -> bool {
    static R: OnceLock<Regex> = OnceLock::new();
    re(&R, r"(?i)usage limit|rate[ _-]?limit|quota|\b429\b|limit reached|hit your limit|resource_exhausted|too many requests").is_match(line)
}

/// Reset time printed in the last lines of the log.
pub fn from_text(log_text: &str, ended_at: UnixMs) -> Option<UnixMs> {
    let tail: Vec<&str> = log_text
        .lines()
        .rev()
        .take(TAIL_LINES)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut found = None;
    for (i, line) in tail.iter().enumerate() {
        if !(names_a_limit(line) || i > 0 && names_a_limit(tail[i - 1])) {
            continue;
        }
        // The last statement wins: a later retry supersedes an earlier one.
        if let Some(t) = in_line(line, ended_at) {
            found = Some(t);
        }
    }
    found.filter(|t| *t >= ended_at.saturating_sub(60_000) && *t <= ended_at.saturating_add(MAX_WAIT_MS))
}

fn in_line(line: &str, ended_at: UnixMs) -> Option<UnixMs> {
    static EPOCH: OnceLock<Regex> = OnceLock::new();
    static DELAY: OnceLock<Regex> = OnceLock::new();
    static AFTER: OnceLock<Regex> = OnceLock::new();
    static AT: OnceLock<Regex> = OnceLock::new();
    // Claude Code ≤ 1.0: "Claude AI usage limit reached|1771390800".
    if let Some(c) = re(&EPOCH, r"(?i)limit reached\|(\d{9,13})").captures(line) {
        let n: i64 = c[1].parse().ok()?;
        return Some(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    // google.rpc.RetryInfo in Gemini's 429 body (the JSON may be escaped inside a string).
    if let Some(c) = re(&DELAY, r#"retryDelay\\?"\s*:\s*\\?"(\d+(?:\.\d+)?)s"#).captures(line) {
        let s: f64 = c[1].parse().ok()?;
        return Some(ended_at.saturating_add((s * 1000.0).ceil() as i64));
    }
    let after = re(
        &AFTER,
        r"(?i)(?:try again in|retry in|retry after|resets? in|reset after)\s+((?:\d+(?:\.\d+)?\s*(?:days?|d|hours?|hrs?|h|ms|minutes?|mins?|m|seconds?|secs?|s)[\s,]*(?:and\s+)?)+)",
    );
    if let Some(c) = after.captures(line) {
        return duration_ms(&c[1]).map(|d| ended_at.saturating_add(d));
    }
    // "try again at 3:28 PM", "try again at Aug 8th, 2026 12:30 PM", "resets 3pm (Europe/Berlin)".
    let at = re(
        &AT,
        r"(?i)(?:try again at|resets(?: at)?)\s+(?:([A-Z][a-z]{2,8})\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?(?:\s*\(?(UTC|GMT)\)?)?",
    );
    let c = at.captures(line)?;
    let (h, m): (u32, u32) = (
        c[4].parse().ok()?,
        c.get(5).map_or(Some(0), |m| m.as_str().parse().ok())?,
    );
    let h = match c.get(6).map(|s| s.as_str().to_ascii_lowercase()) {
        Some(_) if h == 0 || h > 12 => return None,
        Some(ap) => (h % 12) + if ap == "pm" { 12 } else { 0 },
        // A bare number is no time of day.
        None if c.get(5).is_none() || h > 23 => return None,
        None => h,
    };
    let time = NaiveTime::from_hms_opt(h, m, 0)?;
    let utc = c.get(7).is_some();
    let date = match (c.get(1), c.get(2), c.get(3)) {
        (Some(mon), Some(d), Some(y)) => Some(
            NaiveDate::parse_from_str(
                &format!("{} {} {}", &mon.as_str()[..3], d.as_str(), y.as_str()),
                "%b %d %Y",
            )
            .ok()?,
        ),
        _ => None,
    };
    next_at(date, time, utc, ended_at)
}

/// The given date and time, or the next time of day after `ended_at`; local time unless `utc`.
fn next_at(date: Option<NaiveDate>, time: NaiveTime, utc: bool, ended_at: UnixMs) -> Option<UnixMs> {
    let to_ms = |d: NaiveDate| -> Option<UnixMs> {
        let dt = d.and_time(time);
        if utc {
            Some(Utc.from_utc_datetime(&dt).timestamp_millis())
        } else {
            Local.from_local_datetime(&dt).earliest().map(|t| t.timestamp_millis())
        }
    };
    if let Some(d) = date {
        return to_ms(d);
    }
    let end = Utc.timestamp_millis_opt(ended_at).single()?;
    let today = if utc {
        end.date_naive()
    } else {
        end.with_timezone(&Local).date_naive()
    };
    let t = to_ms(today)?;
    if t >= ended_at - 60_000 {
        Some(t)
    } else {
        to_ms(today.succ_opt()?)
    }
}

/// "3 days 6 hours 57 minutes", "2h3m10s", "34.5s", "45 minutes" → ms.
fn duration_ms(s: &str) -> Option<i64> {
    static PART: OnceLock<Regex> = OnceLock::new();
    let part = re(
        &PART,
        r"(?i)(\d+(?:\.\d+)?)\s*(days?|d|hours?|hrs?|h|ms|minutes?|mins?|m|seconds?|secs?|s)",
    );
    let mut total = 0f64;
    let mut any = false;
    for c in part.captures_iter(s) {
        let n: f64 = c[1].parse().ok()?;
        let unit = c[2].to_ascii_lowercase();
        let ms = match unit.as_str() {
            "ms" => 1.0,
            u if u.starts_with('d') => 86_400_000.0,
            u if u.starts_with('h') => 3_600_000.0,
            u if u.starts_with("mi") || u == "m" => 60_000.0,
            _ => 1000.0,
        };
        total += n * ms;
        any = true;
    }
    any.then_some(total.ceil() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-02-18 04:00:00 UTC.
    const T0: UnixMs = 1_771_387_200_000;

    #[test]
    fn claude_rejected_event_is_exact_and_warnings_are_not_hits() {
        let log = concat!(
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1771390000,"rateLimitType":"five_hour"},"session_id":"s"}"#,
            "\n",
            r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1771390800,"rateLimitType":"five_hour","overageStatus":"rejected"},"session_id":"s"}"#,
            "\n",
            r#"{"type":"result","subtype":"success","is_error":true,"result":"You've hit your limit · resets 5am (UTC)","num_turns":1,"total_cost_usd":0}"#,
            "\n"
        );
        let ev = crate::runs::parse::parse_all("claude", log.as_bytes());
        assert_eq!(from_provider(&ev, log, T0), Some(1_771_390_800_000));
        let warn_only = log.lines().next().unwrap();
        let ev = crate::runs::parse::parse_all("claude", warn_only.as_bytes());
        assert_eq!(detect(&ev, warn_only, T0), None);
    }

    #[test]
    fn claude_texts() {
        assert_eq!(
            from_text("Claude AI usage limit reached|1771390800", T0),
            Some(1_771_390_800_000)
        );
        // 5am UTC is one hour after T0.
        let r = r#"{"type":"result","is_error":true,"result":"You've hit your limit · resets 5am (UTC)"}"#;
        assert_eq!(from_text(r, T0), Some(T0 + 3_600_000));
        // 3am UTC has passed at T0: the next day's.
        assert_eq!(
            from_text("5-hour limit reached ∙ resets 3am UTC", T0),
            Some(T0 + 23 * 3_600_000)
        );
    }

    #[test]
    fn codex_texts() {
        let l = "■ You've hit your usage limit. To get more access now, send a request to your admin or try again in 3 days 6 hours 57 minutes.";
        assert_eq!(from_text(l, T0), Some(T0 + ((3 * 24 + 6) * 60 + 57) * 60_000));
        let two = "■ You've hit your usage limit. To get more access now, send a request to your admin.\nor try again at 4:30 AM UTC.";
        assert_eq!(from_text(two, T0), Some(T0 + 30 * 60_000));
        let dated = r#"{"type":"error","message":"You've hit your usage limit. Visit https://chatgpt.com/codex/settings/usage to purchase more credits or try again at Feb 19th, 2026 12:30 PM UTC."}"#;
        assert_eq!(from_text(dated, T0), Some(T0 + (32 * 60 + 30) * 60_000));
        // Local time of day (no zone): some time in the next 24 hours.
        let local = from_text("You've hit your usage limit. Try again at 3:28 PM.", T0).unwrap();
        assert!(local > T0 - 60_000 && local <= T0 + 86_400_000, "{local}");
    }

    #[test]
    fn gemini_texts() {
        let body = r#"[API Error: {"error":{"code":429,"message":"You exceeded your current quota. Please retry in 34.5s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34s"}]}}]"#;
        assert_eq!(from_text(body, T0), Some(T0 + 34_000));
        assert_eq!(
            from_text("TerminalQuotaError: Your quota will reset after 2h3m10s.", T0),
            Some(T0 + (2 * 3600 + 3 * 60 + 10) * 1000)
        );
        let escaped = r#"{"type":"result","status":"error","error":{"type":"Error","message":"{\"error\":{\"code\":429,\"details\":[{\"retryDelay\":\"7s\"}]}}"}}"#;
        assert_eq!(from_text(escaped, T0), Some(T0 + 7000));
    }

    proptest::proptest! {
        /// Any text, any end time: no panic (overflowing durations, odd dates, cut UTF-8 are all input).
        #[test]
        fn never_panics(text in "(?s)(rate limit|quota|try again (in|at)|resets|retryDelay|[0-9]{1,25}|days?|h|m|s|:|PM|UTC|\\PC| |\n){0,40}", at in proptest::num::i64::ANY) {
            let _ = detect(&[], &text, at);
        }
    }

    #[test]
    fn huge_numbers_saturate() {
        assert_eq!(
            from_text("usage limit: try again in 99999999999999999999999 days", T0),
            None
        );
        assert!(from_text("quota exceeded, retry in 5 s", i64::MAX).is_some_and(|t| t == i64::MAX));
    }

    #[test]
    fn talk_about_retries_is_not_a_hit_and_the_fallback_stays() {
        assert_eq!(from_text("I will try again in 5 minutes if the build fails.", T0), None);
        assert_eq!(from_text("usage limit", T0), None);
        // No stated time: the plain-text fallback guesses (RateLimitError → 300 s).
        assert_eq!(detect(&[], "RateLimitError: slow down", T0), Some(T0 + 300_000));
        assert_eq!(detect(&[], "all good", T0), None);
    }
}
