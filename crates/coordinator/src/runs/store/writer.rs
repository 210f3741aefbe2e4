//! The run history's one writer: drains the channel in batches, summarizes the logs of runs that ended
//! (before taking the write transaction), and writes each batch in one transaction.
use super::{Msg, RunEnd, RunStart};
use crate::api::UnixMs;
use crate::runs::prices::PriceTable;
use crate::runs::record::{Outcome, RunProgress, RunSummary, StoppedBy, Summarizer};
use rusqlite::{params, Connection, OptionalExtension};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// Messages taken into one transaction at most (the writer drains what has queued up).
const BATCH: usize = 512;
/// The part of a log kept as text for the plain-text error and quota fallbacks.
const TAIL_BYTES: usize = 64 << 10;
/// Logs beyond this are summarized from their first part only (a runaway run; the tail is still read).
const MAX_LOG_READ: u64 = 512 << 20;

pub(super) fn run(conn: Arc<Mutex<Connection>>, rx: mpsc::Receiver<Msg>, prices: PriceTable, path: String) {
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
                Msg::Started(id, s) => Some((
                    id.clone(),
                    (
                        s.log_path.as_ref().map(|p| p.display().to_string()),
                        s.provider_kind.clone(),
                    ),
                )),
                _ => None,
            })
            .collect();
        for m in batch {
            match m {
                Msg::Finished(id, end, relayed) => {
                    let summary = summarize_run(&conn, &id, &end, &prices, pending.get(&id), relayed);
                    work.push((Msg::Finished(id, end, None), summary));
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
                    Msg::Finished(id, e, _) => finish(&tx, &id, &e, &summary.unwrap_or_default())?,
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
        // The row id orders runs by start (schema::ID_SHIFT): the next free one in the start's millisecond.
        "INSERT INTO runs (id, run_id, agent_id, project_id, task_id, provider, provider_kind, model, started_at, outcome, log_path) \
         VALUES (COALESCE((SELECT MAX(id) + 1 FROM runs WHERE id >= ?8 * 1048576 AND id < (?8 + 1) * 1048576), ?8 * 1048576), \
         ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9) ON CONFLICT(run_id) DO NOTHING",
    )?
    .execute(params![id, s.agent_id, s.project_id, s.task_id, s.provider, s.provider_kind, s.model, s.started_at, s.log_path.as_ref().map(|p| p.display().to_string())])?;
    Ok(())
}

fn progress(tx: &Connection, id: &str, p: &RunProgress) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE runs SET input_tokens = ?2, output_tokens = ?3, cache_read_tokens = ?4, cache_write_tokens = ?5, turns = COALESCE(?6, turns), \
         session_id = COALESCE(?7, session_id), model = COALESCE(model, ?8), last_activity_at = ?9, cost_usd = ?10, cost_is_estimate = ?11 \
         WHERE run_id = ?1 AND outcome = 'running'",
    )?
    .execute(params![id, p.usage.input as i64, p.usage.output as i64, p.usage.cache_read as i64, p.usage.cache_write as i64, p.turns, p.session_id, p.model, p.last_activity_at, p.cost_usd, p.cost_is_estimate])?;
    Ok(())
}

/// The log of a run that ended, summarized (None when the run is unknown). `relayed`: the summarizer the log
/// relay fed as it wrote the log; only the tail is read then (the plain-text fallbacks), never the whole log.
fn summarize_run(
    conn: &Connection,
    id: &str,
    end: &RunEnd,
    prices: &PriceTable,
    pending: Option<&(Option<String>, String)>,
    relayed: Option<Box<Summarizer>>,
) -> Option<RunSummary> {
    let row: Option<(Option<String>, String)> = match pending {
        Some(p) => Some(p.clone()),
        None => conn
            .prepare_cached("SELECT log_path, provider_kind FROM runs WHERE run_id = ?1")
            .ok()?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ok()?,
    };
    let (start_log, start_kind) = row?;
    let log = end.log_path.clone().or(start_log.map(PathBuf::from));
    let kind = if end.provider_kind.is_empty() {
        start_kind
    } else {
        end.provider_kind.clone()
    };
    let exited_ok = end.exit_code == Some(0) && end.stopped_by.is_none();
    if let Some(z) = relayed {
        let tail = log
            .as_deref()
            .map(|p| crate::logs::read_tail(p, TAIL_BYTES as u64))
            .unwrap_or_default();
        return Some(z.finish_run(&tail, prices, end.ended_at, exited_ok));
    }
    Some(summarize_log(&kind, log.as_deref(), prices, end.ended_at, exited_ok))
}

/// Streams a log file through the parser; a missing log is an empty summary. `exited_ok`: see
/// [`Summarizer::finish_run`].
pub fn summarize_log(
    kind: &str,
    log: Option<&Path>,
    prices: &PriceTable,
    ended_at: UnixMs,
    exited_ok: bool,
) -> RunSummary {
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
pub(super) fn close_interrupted(conn: &Connection, prices: &PriceTable) -> rusqlite::Result<()> {
    let open: Vec<(String, i64, String, Option<String>)> = conn
        .prepare("SELECT run_id, started_at, provider_kind, log_path FROM runs WHERE outcome = 'running'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, started, kind, log) in open {
        let log = log.map(PathBuf::from);
        let mtime = log.as_ref().and_then(|p| std::fs::metadata(p).ok()?.modified().ok());
        let ended = mtime
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(started, |d| (d.as_millis() as i64).max(started));
        let s = summarize_log(&kind, log.as_deref(), prices, ended, false);
        let e = RunEnd {
            ended_at: ended,
            provider_kind: kind,
            ..Default::default()
        };
        finish(conn, &id, &e, &s)?;
        conn.execute("UPDATE runs SET outcome = 'interrupted' WHERE run_id = ?1", [&id])?;
    }
    Ok(())
}
