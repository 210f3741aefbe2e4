//! The run history: SQLite at `<data root>/coordinator/runs.db` (WAL), written by one thread fed through a
//! channel so the supervisor never waits on the disk, read through its own connection.
use super::prices::PriceTable;
use super::record::{RunProgress, RunRecord, StoppedBy};
use super::schema;
use crate::api::UnixMs;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

/// `<data root>/coordinator/runs.db`, beside state.json.
pub fn default_path() -> PathBuf {
    crate::paths::coordinator_dir().join("runs.db")
}

/// A string unique per run: start time, pid and a counter, in hex.
pub fn new_run_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{:x}-{:x}",
        crate::api::now_ms(),
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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
    /// With the relay's summarizer when it has one (the log is then not parsed again).
    Finished(String, RunEnd, Option<Box<super::Summarizer>>),
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
    /// The prices the writer estimates with; the log relay estimates live costs with the same.
    prices: Arc<PriceTable>,
}

fn sql_err(path: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_string(),
        source,
    }
}

impl RunStore {
    /// Creates the directory (0700) and the file (0600), migrates, and closes the runs left "running" by a
    /// coordinator that died as "interrupted" (with what their logs say). Prices: `prices.json` beside it.
    pub fn open(path: &Path) -> Result<RunStore, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let p = path.display().to_string();
        let io = |source| StoreError::Io {
            path: p.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
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
        writer::close_interrupted(&conn, &prices).map_err(sql_err(&p))?;
        let reader = RunReader::open_conn(path, &p)?;
        Ok(RunStore::start(Arc::new(Mutex::new(conn)), reader, prices))
    }

    /// A private in-memory history (tests): the writer and the reader share one connection.
    pub fn open_in_memory() -> RunStore {
        let mut conn = Connection::open_in_memory().expect("in-memory SQLite");
        schema::prepare(&mut conn, ":memory:").expect("migrating an empty in-memory database");
        let conn = Arc::new(Mutex::new(conn));
        let reader = RunReader {
            conn: conn.clone(),
            path: ":memory:".into(),
        };
        RunStore::start(conn, reader, PriceTable::default())
    }

    fn start(conn: Arc<Mutex<Connection>>, reader: RunReader, prices: PriceTable) -> RunStore {
        let (tx, rx) = mpsc::channel();
        let path = reader.path.clone();
        let shared = Arc::new(prices.clone());
        std::thread::Builder::new()
            .name("runs-writer".into())
            .spawn(move || writer::run(conn, rx, prices, path))
            .expect("spawning the run history writer");
        RunStore {
            tx,
            reader,
            prices: shared,
        }
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
        let _ = self.tx.send(Msg::Finished(run_id.to_string(), end, None));
    }

    /// [`run_finished`](Self::run_finished) with the summarizer the log relay fed while the run wrote its
    /// log: the writer finishes it (reading only the log's tail) instead of parsing the whole log again.
    pub fn run_finished_with(&self, run_id: &str, end: RunEnd, relayed: Option<Box<super::Summarizer>>) {
        let _ = self.tx.send(Msg::Finished(run_id.to_string(), end, relayed));
    }

    /// The price table costs are estimated with (prices.json beside the database, else the defaults).
    pub fn prices(&self) -> Arc<PriceTable> {
        self.prices.clone()
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
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql_err(p))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_err(p))?;
        // Pages read through a mapping, not copied by a read call each (a listing reads the whole file).
        conn.pragma_update(None, "mmap_size", 256i64 << 20)
            .map_err(sql_err(p))?;
        Ok(RunReader {
            conn: Arc::new(Mutex::new(conn)),
            path: p.to_string(),
        })
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
        // Row ids are in (started_at, insertion) order (schema::ID_SHIFT): without an indexed filter the
        // table is read backwards in file order; with one, its index gives the order.
        if f.agent.is_none() && f.project.is_none() && f.since.is_none() {
            sql.push_str(" ORDER BY id DESC");
        } else {
            sql.push_str(" ORDER BY started_at DESC, id DESC");
        }
        if let Some(n) = f.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        (sql, args)
    }

    pub fn query(&self, f: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let (sql, args) = RunReader::select(f);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), schema::record_from_row)
            .map_err(sql_err(&self.path))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err(&self.path))
    }

    /// One run by its id (the transcript view opens a run by id).
    pub fn get(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        use rusqlite::OptionalExtension;
        let sql = format!("SELECT {} FROM runs WHERE run_id = ?1", schema::COLUMNS);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        st.query_row([run_id], schema::record_from_row)
            .optional()
            .map_err(sql_err(&self.path))
    }

    /// `f`'s runs as a JSON array of [`RunRecord`]s, written straight from the rows in 1 MB pieces (no
    /// record is built: that is what keeps `runs --json` over 100,000 runs fast; tested equal to the
    /// records' JSON). Returns how many runs were written.
    pub fn write_json(&self, f: &RunFilter, out: &mut dyn std::io::Write) -> Result<usize, StoreError> {
        let io = |source| StoreError::Io {
            path: "output".into(),
            source,
        };
        let (sql, args) = RunReader::select(f);
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn.prepare_cached(&sql).map_err(sql_err(&self.path))?;
        let mut rows = st
            .query(rusqlite::params_from_iter(args))
            .map_err(sql_err(&self.path))?;
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

mod writer;
pub use writer::summarize_log;

#[cfg(test)]
mod tests;
