//! runs.db's schema: migrations numbered by SQLite's `user_version`, and the row ↔ record mapping.
use super::record::{Outcome, RunRecord, StoppedBy};
use super::store::StoreError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

/// Migration `i` takes the database from version `i` to `i + 1`. Append only; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: the run table and the indexes the CLI's filters use.
    "CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        agent_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        task_id TEXT,
        provider TEXT NOT NULL,
        provider_kind TEXT NOT NULL,
        model TEXT,
        session_id TEXT,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        duration_ms INTEGER,
        exit_code INTEGER,
        signal INTEGER,
        stopped_by TEXT,
        outcome TEXT NOT NULL,
        turns INTEGER,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL,
        cost_is_estimate INTEGER NOT NULL DEFAULT 0,
        final_message TEXT,
        error_line TEXT,
        quota_reset_at INTEGER,
        log_path TEXT
    );
    CREATE INDEX runs_by_agent ON runs (agent_id, started_at);
    CREATE INDEX runs_by_project ON runs (project_id, started_at);
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE INDEX runs_running ON runs (outcome) WHERE outcome = 'running';",
    // 2: live fields of a running run: when its log last said something.
    "ALTER TABLE runs ADD COLUMN last_activity_at INTEGER;",
    // 3: the row id is the start time: `started_at * 2^20 + n` (n counts runs started in the same
    // millisecond), so the newest-first listing is one backwards pass over the table in file order
    // instead of an index walk with a table lookup per run (2.5x faster at 100,000 runs). Existing rows are
    // renumbered in (started_at, id) order. See [`ID_SHIFT`] and `insert` in store/writer.rs.
    "CREATE TEMP TABLE renum (old INTEGER PRIMARY KEY, new INTEGER NOT NULL);
    INSERT INTO renum SELECT id, started_at * 1048576 + ROW_NUMBER() OVER (PARTITION BY started_at ORDER BY id) - 1 FROM runs;
    UPDATE runs SET id = -id;
    UPDATE runs SET id = (SELECT new FROM renum WHERE old = -runs.id);
    DROP TABLE renum;",
];

/// Since migration 3, a run's row id is `started_at << ID_SHIFT` plus its rank among the runs started in
/// the same millisecond: row id order is (started_at, insertion) order.
pub const ID_SHIFT: u32 = 20;

/// Migrations up to `n` only (tests: a database as an older coordinator left it).
#[cfg(test)]
pub fn prepare_up_to(conn: &mut Connection, n: usize) {
    for (i, sql) in MIGRATIONS.iter().enumerate().take(n) {
        conn.execute_batch(sql).unwrap();
        conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
    }
}

pub fn version() -> i64 {
    MIGRATIONS.len() as i64
}

fn err(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_string(),
        source,
    }
}

/// WAL, and every migration the file has not had yet, each in its own transaction.
pub fn prepare(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    // WAL: readers never wait for the writer; NORMAL: a commit does not fsync (a crash may lose the
    // last runs, never corrupt the file).
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(err(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err(path))?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err(path))?;
    if found > version() {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known: version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(err(path))?;
        tx.execute_batch(sql).map_err(err(path))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(err(path))?;
        tx.commit().map_err(err(path))?;
    }
    Ok(())
}

/// A reader can use the file: it has been migrated and not by a newer coordinator.
pub fn check_readable(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(err(path))?;
    if found > version() {
        return Err(StoreError::TooNew {
            path: path.to_string(),
            found,
            known: version(),
        });
    }
    if found < version() {
        // Not yet migrated by a coordinator: nothing a reader can rely on.
        return Err(StoreError::TooOld {
            path: path.to_string(),
            found,
            known: version(),
        });
    }
    Ok(())
}

pub const COLUMNS: &str = "run_id, agent_id, project_id, task_id, provider, provider_kind, model, session_id, started_at, ended_at, \
    duration_ms, exit_code, signal, stopped_by, outcome, turns, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
    cost_usd, cost_is_estimate, final_message, error_line, quota_reset_at, log_path, last_activity_at";

/// One row selected with [`COLUMNS`].
pub fn record_from_row(r: &Row) -> rusqlite::Result<RunRecord> {
    let outcome: String = r.get(14)?;
    let stopped_by: Option<String> = r.get(13)?;
    Ok(RunRecord {
        run_id: r.get(0)?,
        agent_id: r.get(1)?,
        project_id: r.get(2)?,
        task_id: r.get(3)?,
        provider: r.get(4)?,
        provider_kind: r.get(5)?,
        model: r.get(6)?,
        session_id: r.get(7)?,
        started_at: r.get(8)?,
        ended_at: r.get(9)?,
        duration_ms: r.get(10)?,
        exit_code: r.get(11)?,
        signal: r.get(12)?,
        stopped_by: stopped_by.as_deref().and_then(StoppedBy::parse),
        // A value a newer coordinator may add reads as "failed" rather than hiding the row.
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
        turns: r.get(15)?,
        input_tokens: r.get::<_, i64>(16)? as u64,
        output_tokens: r.get::<_, i64>(17)? as u64,
        cache_read_tokens: r.get::<_, i64>(18)? as u64,
        cache_write_tokens: r.get::<_, i64>(19)? as u64,
        cost_usd: r.get(20)?,
        cost_is_estimate: r.get(21)?,
        final_message: r.get(22)?,
        error_line: r.get(23)?,
        quota_reset_at: r.get(24)?,
        log_path: r.get(25)?,
        last_activity_at: r.get(26)?,
    })
}

/// [`COLUMNS`]' names as [`RunRecord`]'s JSON fields, and which of them are booleans.
const JSON_FIELDS: &[&str] = &[
    "run_id",
    "agent_id",
    "project_id",
    "task_id",
    "provider",
    "provider_kind",
    "model",
    "session_id",
    "started_at",
    "ended_at",
    "duration_ms",
    "exit_code",
    "signal",
    "stopped_by",
    "outcome",
    "turns",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "cost_is_estimate",
    "final_message",
    "error_line",
    "quota_reset_at",
    "log_path",
    "last_activity_at",
];
const BOOL_FIELD: usize = 21;

/// One row selected with [`COLUMNS`] as the JSON serde makes of its [`RunRecord`] (tested equal),
/// appended to `out`.
pub fn write_row_json(r: &Row, out: &mut Vec<u8>) -> rusqlite::Result<()> {
    for (i, key) in JSON_KEYS.iter().enumerate() {
        // `{"run_id":` then `,"agent_id":` …: one copy per field.
        out.extend_from_slice(key.as_bytes());
        match r.get_ref(i)? {
            ValueRef::Null | ValueRef::Blob(_) => out.extend_from_slice(b"null"),
            ValueRef::Integer(v) if i == BOOL_FIELD => out.extend_from_slice(if v != 0 { b"true" } else { b"false" }),
            ValueRef::Integer(v) => out.extend_from_slice(itoa(v, &mut [0u8; 20])),
            ValueRef::Real(v) => serde_json::to_writer(&mut *out, &v)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            // Our own rows are UTF-8; a foreign byte is replaced rather than passed on.
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(t) => json_str(t, out),
                Err(_) => json_str(&String::from_utf8_lossy(t), out),
            },
        }
    }
    out.push(b'}');
    Ok(())
}

/// Each field's JSON key with what comes before it, built once.
static JSON_KEYS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    JSON_FIELDS
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{}\"{n}\":", if i == 0 { "{" } else { "," }))
        .collect()
});

/// Bytes that must be escaped in a JSON string: controls, `"` and `\\`.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// A JSON string literal, escaped as serde_json does; runs of plain bytes are copied whole.
fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(rel) = b[from..].iter().position(|&c| NEEDS_ESCAPE[c as usize]) {
        let i = from + rel;
        out.extend_from_slice(&b[from..i]);
        match b[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
        from = i + 1;
    }
    out.extend_from_slice(&b[from..]);
    out.push(b'"');
}

fn itoa(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_match_serde() {
        for s in [
            "plain",
            "quote \" back \\ nl \n tab \t cr \r",
            "\u{1}\u{8}\u{c}\u{1f} ctl",
            "é ünïcode ✓",
            "",
        ] {
            let mut out = Vec::new();
            super::json_str(s, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
        }
        for v in [0i64, -1, 42, i64::MAX, i64::MIN] {
            assert_eq!(super::itoa(v, &mut [0u8; 20]), v.to_string().as_bytes());
        }
    }
}
