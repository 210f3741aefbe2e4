//! Human output of `runs` and `usage`: aligned tables; and the `--since` argument.
use super::record::RunRecord;
use super::store::UsageRow;
use crate::api::UnixMs;

/// `30m`, `12h`, `1d`, `2w` (before `now`), or a date `YYYY-MM-DD` (UTC midnight).
pub fn parse_since(s: &str, now: UnixMs) -> Result<UnixMs, String> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("--since {s:?}: expected a number and a unit (30m, 12h, 1d, 2w) or a date YYYY-MM-DD"))?;
    let ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("--since {s:?}: unknown unit {unit:?} (use s, m, h, d or w)")),
    };
    Ok(now - n.saturating_mul(ms))
}

fn table(header: &[&str], rows: Vec<Vec<String>>, right: &[usize]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<String>, out: &mut String| {
        let last = cells.len() - 1;
        for (i, c) in cells.into_iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if right.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(&c);
            } else {
                out.push_str(&c);
                if i != last {
                    out.push_str(&" ".repeat(pad));
                }
            }
            if i != last {
                out.push_str("  ");
            }
        }
        out.push('\n');
    };
    line(header.iter().map(|h| h.to_string()).collect(), &mut out);
    for r in rows {
        line(r, &mut out);
    }
    out
}

fn local_time(ms: UnixMs) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(ms)
        .single()
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        Some(ms) if ms < 3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        Some(ms) => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// "1.2k", "3.4M".
fn count(n: u64) -> String {
    match n {
        0..1000 => n.to_string(),
        1000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// "$0.0123", "~$0.0123" for an estimate.
fn cost(c: Option<f64>, estimate: bool) -> String {
    match c {
        None => "-".into(),
        Some(c) => format!("{}${c:.4}", if estimate { "~" } else { "" }),
    }
}

pub fn runs_table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs\n".into();
    }
    let rows = runs
        .iter()
        .map(|r| {
            let tokens = r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens;
            let note = r.error_line.as_deref().or(r.final_message.as_deref()).unwrap_or("");
            let note: String = note.lines().next().unwrap_or("").chars().take(60).collect();
            vec![
                local_time(r.started_at),
                r.agent_id.clone(),
                r.project_id.clone(),
                r.task_id.clone().unwrap_or_else(|| "-".into()),
                r.provider.clone(),
                r.outcome.as_str().to_string(),
                r.exit_code
                    .map_or_else(|| r.signal.map_or("-".into(), |s| format!("sig{s}")), |c| c.to_string()),
                duration(r.duration_ms),
                r.turns.map_or("-".into(), |t| t.to_string()),
                count(tokens),
                cost(r.cost_usd, r.cost_is_estimate),
                note,
            ]
        })
        .collect();
    let mut out = table(
        &[
            "STARTED", "AGENT", "PROJECT", "TASK", "PROVIDER", "OUTCOME", "EXIT", "TIME", "TURNS", "TOKENS", "COST",
            "NOTE",
        ],
        rows,
        &[6, 7, 8, 9, 10],
    );
    if runs.iter().any(|r| r.cost_is_estimate) {
        out.push_str("~ = estimated from tokens × the price table\n");
    }
    out
}

pub fn usage_table(key: &str, rows: &[UsageRow]) -> String {
    if rows.is_empty() {
        return "no runs\n".into();
    }
    let total = UsageRow {
        key: "TOTAL".into(),
        runs: rows.iter().map(|r| r.runs).sum(),
        failed: rows.iter().map(|r| r.failed).sum(),
        input_tokens: rows.iter().map(|r| r.input_tokens).sum(),
        output_tokens: rows.iter().map(|r| r.output_tokens).sum(),
        cache_read_tokens: rows.iter().map(|r| r.cache_read_tokens).sum(),
        cache_write_tokens: rows.iter().map(|r| r.cache_write_tokens).sum(),
        cost_usd: rows.iter().map(|r| r.cost_usd).sum(),
        cost_has_estimate: rows.iter().any(|r| r.cost_has_estimate),
    };
    let cells = |r: &UsageRow| {
        vec![
            r.key.clone(),
            r.runs.to_string(),
            r.failed.to_string(),
            count(r.input_tokens),
            count(r.output_tokens),
            count(r.cache_read_tokens),
            count(r.cache_write_tokens),
            cost(Some(r.cost_usd), r.cost_has_estimate),
        ]
    };
    let mut body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    body.push(cells(&total));
    let mut out = table(
        &[
            &key.to_uppercase(),
            "RUNS",
            "FAILED",
            "INPUT",
            "OUTPUT",
            "CACHE READ",
            "CACHE WRITE",
            "COST",
        ],
        body,
        &[1, 2, 3, 4, 5, 6, 7],
    );
    if total.cost_has_estimate {
        out.push_str("~ = includes costs estimated from tokens × the price table\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_units_and_dates() {
        let now = 10 * 86_400_000;
        assert_eq!(parse_since("1d", now), Ok(9 * 86_400_000));
        assert_eq!(parse_since("30m", now), Ok(now - 1_800_000));
        assert_eq!(parse_since("1970-01-02", now), Ok(86_400_000));
        assert!(parse_since("1y", now).unwrap_err().contains("unknown unit"));
        assert!(parse_since("soon", now).unwrap_err().contains("30m"));
    }

    #[test]
    fn tables_are_aligned() {
        let rows = vec![
            UsageRow {
                key: "a".into(),
                runs: 1,
                failed: 0,
                input_tokens: 5,
                output_tokens: 1500,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: 0.5,
                cost_has_estimate: false,
            },
            UsageRow {
                key: "agent-long".into(),
                runs: 12,
                failed: 3,
                input_tokens: 2_000_000,
                output_tokens: 0,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: 1.0,
                cost_has_estimate: true,
            },
        ];
        let t = usage_table("agent", &rows);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("AGENT       RUNS"), "{t}");
        assert_eq!(lines[0].len(), lines[1].len(), "{t}");
        assert_eq!(lines[1].len(), lines[3].len(), "{t}");
        assert!(
            lines[3].starts_with("TOTAL") && lines[3].contains("13") && lines[3].contains("~$1.5000"),
            "{t}"
        );
        assert!(t.contains("2.0M") && t.contains("1.5k"), "{t}");
        assert_eq!(
            (count(999), count(8_711_200_000)),
            ("999".to_string(), "8.7G".to_string())
        );
    }
}
