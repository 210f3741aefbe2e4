//! runs.db's schema: migrations numbered by SQLite's `user_version`, and the row ↔ record mapping.
use super::record::{Outcome, RunRecord, StoppedBy};
use super::store::StoreError;
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
];

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
    move |source| StoreError::Sqlite { path: path.to_string(), source }
}

/// WAL, and every migration the file has not had yet, each in its own transaction.
pub fn prepare(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    // WAL: readers never wait for the writer; NORMAL: a commit does not fsync (a crash may lose the
    // last runs, never corrupt the file).
    conn.pragma_update(None, "journal_mode", "WAL").map_err(err(path))?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(err(path))?;
    conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(err(path))?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err(path))?;
    if found > version() {
        return Err(StoreError::TooNew { path: path.to_string(), found, known: version() });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction().map_err(err(path))?;
        tx.execute_batch(sql).map_err(err(path))?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(err(path))?;
        tx.commit().map_err(err(path))?;
    }
    Ok(())
}

/// A reader can use the file: it has been migrated and not by a newer coordinator.
pub fn check_readable(conn: &Connection, path: &str) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err(path))?;
    if found > version() {
        return Err(StoreError::TooNew { path: path.to_string(), found, known: version() });
    }
    if found < version() {
        // Not yet migrated by a coordinator: nothing a reader can rely on.
        return Err(StoreError::TooOld { path: path.to_string(), found, known: version() });
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
