//! The run history: SQLite at `<data root>/coordinator/runs.db` (WAL), written by one thread fed through a
//! channel so the supervisor never waits on the disk, read through its own connection.
use super::prices::PriceTable;
use super::record::{Outcome, RunProgress, RunRecord, RunSummary, StoppedBy, Summarizer};
use super::schema;
use crate::api::UnixMs;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// Messages taken into one transaction at most (the writer drains what has queued up).
const BATCH: usize = 512;
/// The part of a log kept as text for the plain-text error and quota fallbacks.
const TAIL_BYTES: usize = 64 << 10;
/// Logs beyond this are summarized from their first part only (a runaway run; the tail is still read).
const MAX_LOG_READ: u64 = 512 << 20;

/// `<data root>/coordinator/runs.db`, beside state.json.
pub fn default_path() -> PathBuf {
    crate::paths::coordinator_dir().join("runs.db")
}

/// A string unique per run: start time, pid and a counter, in hex.
pub fn new_run_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{:x}-{:x}-{:x}", crate::api::now_ms(), std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("run history {path}: {source}")]
    Sqlite { path: String, source: rusqlite::Error },
    #[error("run history {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("run history {path} has schema version {found}; this coordinator knows up to {known} (a newer coordinator wrote it)")]
    TooNew { path: String, found: i64, known: i64 },
    #[error("run history {path} has schema version {found}, not {known}: start the coordinator once to migrate it")]
    TooOld { path: String, found: i64, known: i64 },
}

/// What is known when a run starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    pub agent_id: String,
    pub project_id: String,
    pub task_id: Option<String>,
    /// The provider's name in the settings.
    pub provider: String,
    /// "claude" | "gemini" | "codex" | "custom": which parser reads the log.
    pub provider_kind: String,
    pub model: Option<String>,
    pub started_at: UnixMs,
    pub log_path: Option<PathBuf>,
}

/// What is known when a run ends; the writer reads the log and adds the rest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunEnd {
    pub ended_at: UnixMs,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stopped_by: Option<StoppedBy>,
    /// None: the one given at the start.
    pub log_path: Option<PathBuf>,
    pub provider_kind: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub agent: Option<String>,
    pub project: Option<String>,
    pub since: Option<UnixMs>,
    /// Only runs that failed or were interrupted.
    pub failed: bool,
    /// Newest first; None = all.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageBy {
    Agent,
    Provider,
    /// Calendar day (UTC) of the run's start, "YYYY-MM-DD".
    Day,
}

impl UsageBy {
    pub fn parse(s: &str) -> Option<UsageBy> {
        match s {
            "agent" => Some(UsageBy::Agent),
            "provider" => Some(UsageBy::Provider),
            "day" => Some(UsageBy::Day),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    pub key: String,
    pub runs: u64,
    /// Failed or interrupted.
    pub failed: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub cost_usd: f64,
    /// Some of the cost is an estimate from the price table.
    pub cost_has_estimate: bool,
}

enum Msg {
    Started(String, RunStart),
    Progress(String, RunProgress),
    Finished(String, RunEnd),
    Prune(usize),
    Flush(mpsc::SyncSender<()>),
}

/// Reads the history: the CLI opens one on its own (read-only); a [`RunStore`] has one.
#[derive(Clone)]
pub struct RunReader {
    conn: Arc<Mutex<Connection>>,
    path: String,
}

#[derive(Clone)]
pub struct RunStore {
    tx: mpsc::Sender<Msg>,
    reader: RunReader,
}

fn sql_err(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.to_string(), source }
}

impl RunStore {
    /// Creates the directory (0700) and the file (0600), migrates, and closes the runs left "running" by a
    /// coordinator that died as "interrupted" (with what their logs say). Prices: `prices.json` beside it.
    pub fn open(path: &Path) -> Result<RunStore, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let p = path.display().to_string();
        let io = |source| StoreError::Io { path: p.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        }
        let mut conn = Connection::open(path).map_err(sql_err(&p))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        schema::prepare(&mut conn, &p)?;
        let prices = match PriceTable::load(&path.with_file_name("prices.json")) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("{e}; using the default prices");
                PriceTable::default()
            }
        };
        close_interrupted(&conn, &prices).map_err(sql_err(&p))?;
        let reader = RunReader::open_conn(path, &p)?;
        Ok(RunStore::start(Arc::new(Mutex::new(conn)), reader, prices))
    }

    /// A private in-memory history (tests): the writer and the reader share one connection.
    pub fn open_in_memory() -> RunStore {
        let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
        schema::prepare(&mut conn, ":memory:").expect("migrating an empty in-memory database");
        let conn = Arc::new(Mutex::new(conn));
        let reader = RunReader { conn: conn.clone(), path: ":memory:".into() };
        RunStore::start(conn, reader, PriceTable::default())
    }

    fn start(conn: Arc<Mutex<Connection>>, reader: RunReader, prices: PriceTable) -> RunStore {
        let (tx, rx) = mpsc::channel();
        let path = reader.path.clone();
        std::thread::Builder::new().name("runs-writer".into()).spawn(move || writer(conn, rx, prices, path)).expect("spawning the run history writer");
        RunStore { tx, reader }
    }

    /// Never blocks: the row is written by the writer thread.
    pub fn run_started(&self, run_id: &str, start: RunStart) {
        let _ = self.tx.send(Msg::Started(run_id.to_string(), start));
    }

    /// Never blocks: live tokens / turns / last activity of a running run (ignored once it ended).
    pub fn run_progress(&self, run_id: &str, p: RunProgress) {
        let _ = self.tx.send(Msg::Progress(run_id.to_string(), p));
    }

    /// Never blocks; the writer reads the log, summarizes it and completes the row.
    pub fn run_finished(&self, run_id: &str, end: RunEnd) {
        let _ = self.tx.send(Msg::Finished(run_id.to_string(), end));
    }

    /// Blocks until everything sent before has been written.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    pub fn query(&self, f: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.reader.query(f)
    }

    pub fn write_json(&self, f: &RunFilter, out: &mut dyn std::io::Write) -> Result<usize, StoreError> {
        self.reader.write_json(f, out)
    }

    pub fn usage(&self, by: UsageBy, since: Option<UnixMs>) -> Result<Vec<UsageRow>, StoreError> {
        self.reader.usage(by, since)
    }

    /// Keep the newest `keep_per_agent` finished runs of each agent (0 = keep all). Non-blocking.
    pub fn prune(&self, keep_per_agent: usize) {
        if keep_per_agent > 0 {
            let _ = self.tx.send(Msg::Prune(keep_per_agent));
        }
    }

    pub fn reader(&self) -> &RunReader {
        &self.reader
    }
}

impl RunReader {
    /// Read-only; fails when the file does not exist.
    pub fn open(path: &Path) -> Result<RunReader, StoreError> {
        let p = path.display().to_string();
        let r = RunReader::open_conn(path, &p)?;
        schema::check_readable(&r.conn.lock().unwrap_or_else(|e| e.into_inner()), &p)?;
        Ok(r)
    }

    fn open_conn(path: &Path, p: &str) -> Result<RunReader, StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(sql_err(p))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql_err(p))?;
        Ok(RunReader { conn: Arc::new(Mutex::new(conn)), path: p.to_string() })
    }

    /// The statement and arguments that select `f`'s runs with [`schema::COLUMNS`], newest first.
    fn select(f: &RunFilter) -> (String, Vec<rusqlite::types::Value>) {
        let mut sql = format!("SELECT {} FROM runs WHERE 1=1", schema::COLUMNS);
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(a) = &f.agent {
            sql.push_str(" AND agent_id = ?");
            args.push(a.clone().into());
        }
        if let Some(p) = &f.project {
            sql.push_str(" AND project_id = ?");
            args.push(p.clone().into());
        }
        if let Some(s) = f.since {
            sql.push_str(" AND started_at >= ?");
            args.push(s.into());
        }
        if f.failed {
            sql.push_str(" AND outcome IN ('failed', 'interrupted')");
        }
        sql.push_str(" ORDER BY started_at DESC, id DESC");
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        (sql, args)
    }

    pub fn query(&self, f: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let (sql, args) = RunReader::select(f);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        let rows = st.query_map(rusqlite::params_from_iter(args), schema::record_from_row).map_err(sql_err(&self.path))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err(&self.path))
    }

    /// `f`'s runs as a JSON array of [`RunRecord`]s, written straight from the rows in 1 MB pieces (no
    /// record is built: that is what keeps `runs --json` over 100,000 runs fast; tested equal to the
    /// records' JSON). Returns how many runs were written.
    pub fn write_json(&self, f: &RunFilter, out: &mut dyn std::io::Write) -> Result<usize, StoreError> {
        let io = |source| StoreError::Io { path: "output".into(), source };
        let (sql, args) = RunReader::select(f);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        let mut rows = st.query(rusqlite::params_from_iter(args)).map_err(sql_err(&self.path))?;
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        buf.push(b'[');
        let mut n = 0;
        while let Some(r) = rows.next().map_err(sql_err(&self.path))? {
            if n > 0 {
                buf.push(b',');
            }
            schema::write_row_json(r, &mut buf).map_err(sql_err(&self.path))?;
            n += 1;
            if buf.len() >= 1 << 20 {
                out.write_all(&buf).map_err(io)?;
                buf.clear();
            }
        }
        buf.extend_from_slice(b"]\n");
        out.write_all(&buf).map_err(io)?;
        Ok(n)
    }

    pub fn usage(&self, by: UsageBy, since: Option<UnixMs>) -> Result<Vec<UsageRow>, StoreError> {
        // `+agent_id`: grouping through the agent index would visit the rows in agent order, one random
        // page read each (3× slower at 100,000 runs than one pass in file order and a sort).
        let key = match by {
            UsageBy::Agent => "+agent_id",
            UsageBy::Provider => "provider",
            UsageBy::Day => "date(started_at / 1000, 'unixepoch')",
        };
        let sql = format!(
            "SELECT {key}, COUNT(*), SUM(outcome IN ('failed', 'interrupted')), SUM(input_tokens), SUM(output_tokens), \
             SUM(cache_read_tokens), SUM(cache_write_tokens), TOTAL(cost_usd), MAX(cost_is_estimate AND cost_usd IS NOT NULL) \
             FROM runs {} GROUP BY 1 ORDER BY 1",
            if since.is_some() { "WHERE started_at >= ?1" } else { "" }
        );
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(since), |r| {
                Ok(UsageRow {
                    key: r.get(0)?,
                    runs: r.get::<_, i64>(1)? as u64,
                    failed: r.get::<_, i64>(2)? as u64,
                    input_tokens: r.get::<_, i64>(3)? as u64,
                    output_tokens: r.get::<_, i64>(4)? as u64,
                    cache_read_tokens: r.get::<_, i64>(5)? as u64,
                    cache_write_tokens: r.get::<_, i64>(6)? as u64,
                    cost_usd: r.get(7)?,
                    cost_has_estimate: r.get::<_, i64>(8)? != 0,
                })
            })
            .map_err(sql_err(&self.path))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err(&self.path))
    }
}

fn writer(conn: Arc<Mutex<Connection>>, rx: mpsc::Receiver<Msg>, prices: PriceTable, path: String) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
        // Logs are read before the transaction, so the database is locked only for the writes.
        let mut work = Vec::with_capacity(batch.len());
        // A run may start and end within one batch: its row is not written yet.
        let pending: std::collections::HashMap<String, (Option<String>, String)> = batch
            .iter()
            .filter_map(|m| match m {
                Msg::Started(id, s) => Some((id.clone(), (s.log_path.as_ref().map(|p| p.display().to_string()), s.provider_kind.clone()))),
                _ => None,
            })
            .collect();
        for m in batch {
            match m {
                Msg::Finished(id, end) => {
                    let summary = summarize_run(&conn, &id, &end, &prices, pending.get(&id));
                    work.push((Msg::Finished(id, end), summary));
                }
                m => work.push((m, None)),
            }
        }
        let mut flushes = Vec::new();
        let res = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for (m, summary) in work {
                match m {
                    Msg::Started(id, s) => insert(&tx, &id, &s)?,
                    Msg::Progress(id, p) => progress(&tx, &id, &p)?,
                    Msg::Finished(id, e) => finish(&tx, &id, &e, &summary.unwrap_or_default())?,
                    Msg::Prune(keep) => prune(&tx, keep)?,
                    Msg::Flush(done) => flushes.push(done),
                }
            }
            tx.commit()
        })();
        if let Err(e) = res {
            tracing::warn!("run history {path}: cannot record runs: {e}");
        }
        drop(conn);
        for f in flushes {
            let _ = f.send(());
        }
    }
}

fn insert(tx: &Connection, id: &str, s: &RunStart) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO runs (run_id, agent_id, project_id, task_id, provider, provider_kind, model, started_at, outcome, log_path) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9) ON CONFLICT(run_id) DO NOTHING",
    )?
    .execute(params![id, s.agent_id, s.project_id, s.task_id, s.provider, s.provider_kind, s.model, s.started_at, s.log_path.as_ref().map(|p| p.display().to_string())])?;
    Ok(())
}

fn progress(tx: &Connection, id: &str, p: &RunProgress) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET input_tokens = ?2, output_tokens = ?3, cache_read_tokens = ?4, cache_write_tokens = ?5, turns = COALESCE(?6, turns), \
         session_id = COALESCE(?7, session_id), model = COALESCE(model, ?8), last_activity_at = ?9 WHERE run_id = ?1 AND outcome = 'running'",
    )?
    .execute(params![id, p.usage.input as i64, p.usage.output as i64, p.usage.cache_read as i64, p.usage.cache_write as i64, p.turns, p.session_id, p.model, p.last_activity_at])?;
    Ok(())
}

/// The log of a run that ended, summarized (None when the run is unknown).
fn summarize_run(conn: &Connection, id: &str, end: &RunEnd, prices: &PriceTable, pending: Option<&(Option<String>, String)>) -> Option<RunSummary> {
    let row: Option<(Option<String>, String)> = match pending {
        Some(p) => Some(p.clone()),
        None => conn.prepare_cached("SELECT log_path, provider_kind FROM runs WHERE run_id = ?1").ok()?.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).optional().ok()?,
    };
    let (start_log, start_kind) = row?;
    let log = end.log_path.clone().or(start_log.map(PathBuf::from));
    let kind = if end.provider_kind.is_empty() { start_kind } else { end.provider_kind.clone() };
    let exited_ok = end.exit_code == Some(0) && end.stopped_by.is_none();
    Some(summarize_log(&kind, log.as_deref(), prices, end.ended_at, exited_ok))
}

/// Streams a log file through the parser; a missing log is an empty summary. `exited_ok`: see
/// [`Summarizer::finish_run`].
pub fn summarize_log(kind: &str, log: Option<&Path>, prices: &PriceTable, ended_at: UnixMs, exited_ok: bool) -> RunSummary {
    let mut z = Summarizer::new(kind);
    let mut tail: Vec<u8> = Vec::new();
    if let Some(mut f) = log.and_then(|p| std::fs::File::open(p).ok()) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut buf = vec![0u8; (len as usize + 1).clamp(4096, 256 << 10)];
        let mut read = 0u64;
        while read < MAX_LOG_READ {
            let n = match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            read += n as u64;
            z.feed(&buf[..n]);
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
        }
        if read >= MAX_LOG_READ {
            tail = crate::logs::read_tail(log.unwrap_or(Path::new("")), TAIL_BYTES as u64).into_bytes();
        }
    }
    let tail = match std::str::from_utf8(&tail) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => String::from_utf8_lossy(&tail),
    };
    z.finish_run(&tail, prices, ended_at, exited_ok)
}

fn outcome(e: &RunEnd, s: &RunSummary) -> Outcome {
    if e.stopped_by.is_some() {
        Outcome::Stopped
    } else if e.exit_code == Some(0) && s.result_is_error != Some(true) {
        Outcome::Ok
    } else {
        Outcome::Failed
    }
}

fn finish(tx: &Connection, id: &str, e: &RunEnd, s: &RunSummary) -> rusqlite::Result<()> {
    let outcome = outcome(e, s);
    // A run that worked hit no limit, whatever its text says about retrying.
    let quota_reset_at = if outcome == Outcome::Ok { None } else { s.quota_reset_at };
    let n = tx
        .prepare_cached(
            "UPDATE runs SET ended_at = ?2, duration_ms = MAX(0, ?2 - started_at), exit_code = ?3, signal = ?4, stopped_by = ?5, outcome = ?6, \
             log_path = COALESCE(?7, log_path), session_id = COALESCE(?8, session_id), model = COALESCE(model, ?9), turns = ?10, \
             input_tokens = ?11, output_tokens = ?12, cache_read_tokens = ?13, cache_write_tokens = ?14, cost_usd = ?15, \
             cost_is_estimate = ?16, final_message = ?17, error_line = ?18, quota_reset_at = ?19 WHERE run_id = ?1",
        )?
        .execute(params![
            id,
            e.ended_at,
            e.exit_code,
            e.signal,
            e.stopped_by.map(StoppedBy::as_str),
            outcome.as_str(),
            e.log_path.as_ref().map(|p| p.display().to_string()),
            s.session_id,
            s.model,
            s.turns,
            s.usage.input as i64,
            s.usage.output as i64,
            s.usage.cache_read as i64,
            s.usage.cache_write as i64,
            s.cost_usd,
            s.cost_is_estimate,
            s.final_message,
            s.error_line,
            quota_reset_at,
        ])?;
    if n == 0 {
        tracing::warn!("run history: run {id} ended but was never recorded as started");
    }
    Ok(())
}

fn prune(tx: &Connection, keep: usize) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM runs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY started_at DESC, id DESC) AS n \
         FROM runs WHERE outcome != 'running') WHERE n > ?1)",
        [keep as i64],
    )?;
    Ok(())
}

/// Runs still "running" when the store opens belonged to a coordinator that died: close them as
/// interrupted, ending when their log was last written, with what the log says so far.
fn close_interrupted(conn: &Connection, prices: &PriceTable) -> rusqlite::Result<()> {
    let open: Vec<(String, i64, String, Option<String>)> = conn
        .prepare("SELECT run_id, started_at, provider_kind, log_path FROM runs WHERE outcome = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, started, kind, log) in open {
        let log = log.map(PathBuf::from);
        let mtime = log.as_ref().and_then(|p| std::fs::metadata(p).ok()?.modified().ok());
        let ended = mtime.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(started, |d| (d.as_millis() as i64).max(started));
        let s = summarize_log(&kind, log.as_deref(), prices, ended, false);
        let e = RunEnd { ended_at: ended, provider_kind: kind, ..Default::default() };
        finish(conn, &id, &e, &s)?;
        conn.execute("UPDATE runs SET outcome = 'interrupted' WHERE run_id = ?1", [&id])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
