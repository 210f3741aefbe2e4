//! The Transcript page: a run's log as messages, tool calls and results (coordinator::runs::transcript).
//!
//! The window names a run (by id, through the run history) or a log path; either way the path must be a
//! run log below the log root (`logs::checked_path`, the check the Logs page uses). A few transcripts stay
//! open, keyed by the resolved path: opening indexes only the first chunk (the first screen of a 100 MB log
//! is there at once) and a background task indexes the rest; each window request re-reads what a live run
//! appended.
use super::logs::LogTarget;
use super::AppCore;
use crate::error::{AppError, AppResult};
use coordinator::runs::transcript::{Item, Matches, Transcript};
use coordinator::runs::RunReader;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Transcripts kept open (most recently used first); an evicted one is simply opened again.
const KEEP_OPEN: usize = 4;
/// Bytes the background task indexes per lock, so window requests are served in between.
const STEP: u64 = 8 << 20;
/// Most search hits returned.
const MAX_MATCHES: usize = 5000;

type Shared = Arc<Mutex<Transcript>>;

#[derive(Default)]
pub struct OpenTranscripts {
    list: Mutex<Vec<(PathBuf, Shared)>>,
}

/// What the page receives: where the transcript stands, and the items asked for.
#[derive(Debug, Clone, Serialize)]
pub struct TranscriptView {
    pub path: PathBuf,
    /// Items indexed so far (all of them once `complete`).
    pub total: usize,
    pub complete: bool,
    pub bytes: u64,
    /// The run is still writing (the page follows it).
    pub live: bool,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TranscriptMatches {
    #[serde(flatten)]
    pub matches: Matches,
    pub total: usize,
}

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Transcript> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> AppError + '_ {
    move |e| AppError::Message(format!("{}: {e}", p.display()))
}

impl OpenTranscripts {
    /// The open transcript of `path`, or a new one (lazily indexed, the rest in the background).
    fn get(&self, path: &Path) -> AppResult<Shared> {
        let mut list = self.list.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = list.iter().position(|(p, _)| p == path) {
            let hit = list.remove(i);
            let t = hit.1.clone();
            list.insert(0, hit);
            return Ok(t);
        }
        let t: Shared = Arc::new(Mutex::new(Transcript::open_lazy(path).map_err(io(path))?));
        list.insert(0, (path.to_path_buf(), t.clone()));
        list.truncate(KEEP_OPEN);
        if !lock(&t).is_complete() {
            let bg = Arc::downgrade(&t);
            std::thread::Builder::new()
                .name("transcript-index".into())
                .spawn(move || {
                    // Stops when the transcript was evicted and dropped, or is indexed.
                    while let Some(t) = bg.upgrade() {
                        let mut g = lock(&t);
                        if g.index_more(STEP).is_err() || g.is_complete() {
                            break;
                        }
                    }
                })
                .map_err(|e| AppError::Message(format!("indexing {}: {e}", path.display())))?;
        }
        Ok(t)
    }
}

/// Items of `t`: `indices` when given (a page of search hits), else `[from, from + n)`, or the last `n`
/// when `tail`. A complete transcript first reads what was appended (follow).
fn view(
    t: &Shared,
    path: &Path,
    live: bool,
    from: usize,
    n: usize,
    tail: bool,
    indices: Option<&[usize]>,
) -> AppResult<TranscriptView> {
    let mut g = lock(t);
    if g.is_complete() {
        g.refresh().map_err(io(path))?;
    }
    let from = if tail { g.len().saturating_sub(n) } else { from };
    let items = match indices {
        Some(ix) => g.items(ix),
        None => g.window(from, n),
    }
    .map_err(io(path))?;
    Ok(TranscriptView {
        path: path.to_path_buf(),
        total: g.len(),
        complete: g.is_complete(),
        bytes: g.bytes(),
        live,
        items,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Message(format!("reading the transcript failed: {e}")))?
}

impl AppCore {
    /// The checked log path of a run (by id from the run history) or of a path the window gives.
    async fn transcript_path(&self, run_id: Option<&str>, log_path: Option<&Path>) -> AppResult<PathBuf> {
        let path = match (run_id, log_path) {
            (_, Some(p)) => p.to_path_buf(),
            (Some(id), None) => {
                let db = self.runs_db().await;
                let id = id.to_string();
                let rec = blocking(move || {
                    if db.exists() {
                        RunReader::open(&db)
                            .and_then(|r| r.get(&id))
                            .map_err(|e| AppError::Message(e.to_string()))
                    } else {
                        Ok(None)
                    }
                })
                .await?;
                let Some(rec) = rec else {
                    return Err(AppError::Message(
                        "this run is not in the run history (any more)".into(),
                    ));
                };
                PathBuf::from(
                    rec.log_path
                        .ok_or_else(|| AppError::Message(format!("run {} has no log", rec.run_id)))?,
                )
            }
            (None, None) => return Err(AppError::Message("no run or log given".into())),
        };
        self.checked_log_path(&path, LogTarget::RunLog).await
    }

    /// Is a run of the running engine writing this (checked) log?
    async fn log_is_live(&self, path: &Path) -> bool {
        let Some(e) = self.engine().await else { return false };
        e.snapshot()
            .instances
            .iter()
            .any(|i| std::fs::canonicalize(&i.log_path).is_ok_and(|p| p == path))
    }

    pub async fn transcript_open(
        &self,
        run_id: Option<&str>,
        log_path: Option<&Path>,
        n: usize,
    ) -> AppResult<TranscriptView> {
        let path = self.transcript_path(run_id, log_path).await?;
        let live = self.log_is_live(&path).await;
        let open = self.transcripts.clone();
        blocking(move || {
            let t = open.get(&path)?;
            view(&t, &path, live, 0, n, false, None)
        })
        .await
    }

    pub async fn transcript_window(
        &self,
        log_path: &Path,
        from: usize,
        n: usize,
        tail: bool,
        indices: Option<Vec<usize>>,
    ) -> AppResult<TranscriptView> {
        let path = self.transcript_path(None, Some(log_path)).await?;
        let live = self.log_is_live(&path).await;
        let open = self.transcripts.clone();
        blocking(move || {
            let t = open.get(&path)?;
            view(&t, &path, live, from, n, tail, indices.as_deref())
        })
        .await
    }

    /// Search (case-insensitive) or, with `errors_only` and no query, the error items; both over the whole
    /// log (indexed to its end first).
    pub async fn transcript_search(
        &self,
        log_path: &Path,
        query: &str,
        errors_only: bool,
        max: Option<usize>,
    ) -> AppResult<TranscriptMatches> {
        let path = self.transcript_path(None, Some(log_path)).await?;
        let open = self.transcripts.clone();
        let (query, max) = (query.to_string(), max.unwrap_or(MAX_MATCHES).min(MAX_MATCHES));
        blocking(move || {
            let t = open.get(&path)?;
            let mut g = lock(&t);
            g.refresh().map_err(io(&path))?;
            let mut m = if errors_only {
                g.errors(usize::MAX)
            } else {
                g.search(&query, usize::MAX)
            }
            .map_err(io(&path))?;
            if errors_only && !query.trim().is_empty() {
                // Both: the errors that match.
                let hits = g.search(&query, usize::MAX).map_err(io(&path))?;
                m.indices.retain(|i| hits.indices.binary_search(i).is_ok());
            }
            m.truncated = m.indices.len() > max;
            m.indices.truncate(max);
            Ok(TranscriptMatches {
                matches: m,
                total: g.len(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use std::path::Path;

    #[tokio::test]
    async fn a_run_log_opens_as_a_transcript_and_nothing_outside_the_log_folder_does() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.log_dir = Some(d.path().join("logs"));
        c.save_settings(s).await.unwrap();
        std::fs::create_dir_all(d.path().join("logs/agt_a")).unwrap();
        let log = d.path().join("logs/agt_a/1.log");
        let text = concat!(
            "[agentpm] start pid=1 command=claude\n",
            r#"{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"Looking at the task"}]}}"#,
            "\n",
            r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t","is_error":true,"content":"boom"}]}}"#,
            "\n",
        );
        std::fs::write(&log, text).unwrap();
        let v = c.transcript_open(None, Some(&log), 50).await.unwrap();
        assert_eq!((v.total, v.complete, v.live, v.items.len()), (3, true, false, 3));
        assert_eq!(v.items[1].text, "Looking at the task");
        // Appended bytes show on the next window (follow), the last n with `tail`.
        std::fs::write(&log, format!("{text}plain error line\n")).unwrap();
        let w = c.transcript_window(&log, 0, 2, true, None).await.unwrap();
        assert_eq!(
            (w.total, w.items.iter().map(|i| i.index).collect::<Vec<_>>()),
            (4, vec![2, 3])
        );
        let m = c.transcript_search(&log, "LOOKING", false, None).await.unwrap();
        assert_eq!((m.matches.indices.clone(), m.total), (vec![1], 4));
        assert_eq!(
            c.transcript_search(&log, "", true, None).await.unwrap().matches.indices,
            vec![2, 3]
        );
        assert_eq!(
            c.transcript_search(&log, "boom", true, None)
                .await
                .unwrap()
                .matches
                .indices,
            vec![2]
        );
        let page = c.transcript_window(&log, 0, 0, false, Some(vec![3])).await.unwrap();
        assert_eq!(page.items[0].text, "plain error line");
        // The Logs page's rule: only run logs below the log folder.
        std::fs::write(d.path().join("settings.log"), "x").unwrap();
        for bad in [
            d.path().join("settings.log"),
            d.path().join("logs/agt_a/../../settings.log"),
            d.path().join("settings.json"),
        ] {
            assert!(
                c.transcript_open(None, Some(&bad), 10).await.is_err(),
                "{} opened",
                bad.display()
            );
        }
        assert!(c.transcript_open(Some("no-such-run"), None, 10).await.is_err());
        assert!(c.transcript_open(None, None, 10).await.is_err());
        let _ = Path::new("");
    }
}
