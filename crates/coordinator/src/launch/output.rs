//! A child's output: stdout/stderr relayed line by line (long lines in bounded pieces) into the run log,
//! redacted on the way.

/// Longest chunk of agent output held in memory: a longer line is forwarded in pieces of at most this size.
pub const MAX_LINE: usize = 64 * 1024;

/// Where to cut a line that reached [`MAX_LINE`] without a newline: after the last whitespace in its second
/// half (a secret never spans a cut there, so masking per chunk still works), else at a UTF-8 boundary.
fn cut_point(line: &[u8]) -> usize {
    if let Some(i) = line[line.len() / 2..].iter().rposition(|b| b.is_ascii_whitespace()) {
        return line.len() / 2 + i + 1;
    }
    let mut end = line.len();
    // Do not split a multi-byte character: back up over continuation bytes (at most 3) to its start.
    for back in 1..=3.min(line.len()) {
        let b = line[line.len() - back];
        if b & 0xC0 != 0x80 {
            if b >= 0xC0 {
                let need = if b >= 0xF0 {
                    4
                } else if b >= 0xE0 {
                    3
                } else {
                    2
                };
                if back < need {
                    end = line.len() - back;
                }
            }
            break;
        }
    }
    if end == 0 {
        line.len()
    } else {
        end
    }
}

/// Reads a pipe and forwards its complete lines; a line longer than [`MAX_LINE`] is forwarded in pieces
/// (memory stays bounded whatever an agent prints), and a partial last line is flushed at EOF.
pub(super) async fn relay_lines(
    pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut r = tokio::io::BufReader::with_capacity(MAX_LINE, pipe);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (used, complete) = match r.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let room = MAX_LINE - line.len();
                let take = &buf[..buf.len().min(room)];
                // Every complete line read so far goes as one chunk (per-line sends cost more than the
                // copy itself at 100 MB/s); chunks still end at a line end, so streams interleave by lines.
                match take.iter().rposition(|&b| b == b'\n') {
                    Some(i) => {
                        line.extend_from_slice(&take[..=i]);
                        (i + 1, true)
                    }
                    None => {
                        line.extend_from_slice(take);
                        (take.len(), false)
                    }
                }
            }
        };
        r.consume(used);
        let chunk = if complete {
            std::mem::take(&mut line)
        } else if line.len() >= MAX_LINE {
            let rest = line.split_off(cut_point(&line));
            std::mem::replace(&mut line, rest)
        } else {
            continue;
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
    if !line.is_empty() {
        let _ = tx.send(line).await;
    }
}

/// What the relay records while it copies a run's output: the stream is parsed as it is written (never by
/// reading the log back), and the live fields are published at most once per [`PUBLISH_EVERY`], on change.
pub struct Recorder {
    /// "claude" | "gemini" | "codex" | "custom": which parser reads the stream.
    pub kind: String,
    pub prices: std::sync::Arc<crate::runs::prices::PriceTable>,
}

/// Output gathered into one write of the log at most.
const WRITE_BATCH: usize = 256 * 1024;

/// Live progress is published at most this often.
pub const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

pub type LiveProgress = tokio::sync::watch::Receiver<Option<RunProgress>>;

use crate::runs::{RunProgress, Summarizer};
use tokio::time::Instant;

struct Live {
    z: Summarizer,
    prices: std::sync::Arc<crate::runs::prices::PriceTable>,
    tx: tokio::sync::watch::Sender<Option<RunProgress>>,
    redactor: crate::redact::Redactor,
    /// The summarizer's change / activity counters at the last publish / the last feed.
    published: u64,
    activities: u64,
    last_activity_at: crate::api::UnixMs,
    last_publish: Option<Instant>,
}

impl Live {
    fn fed(&mut self, bytes: &[u8]) {
        self.z.feed(bytes);
        let (_, a) = self.z.counters();
        if a != self.activities {
            self.activities = a;
            self.last_activity_at = crate::api::now_ms();
        }
    }

    /// When to publish next: None while nothing changed since the last publish.
    fn due(&self) -> Option<Instant> {
        if self.z.counters().0 == self.published {
            return None;
        }
        Some(self.last_publish.map_or_else(Instant::now, |t| t + PUBLISH_EVERY))
    }

    fn publish(&mut self) {
        let mut p = self.z.progress(self.last_activity_at, &self.prices);
        // The bytes fed were masked already; a secret the JSON escaped shows only once unescaped.
        p.last_activity = p.last_activity.map(|l| self.redactor.redact(&l));
        self.published = self.z.counters().0;
        self.last_publish = Some(Instant::now());
        self.tx.send_replace(Some(p));
    }
}

/// Copies the relayed lines into the log, masked; with a [`Recorder`], feeds the masked bytes (what the log
/// holds) to a [`Summarizer`], publishes its live fields on `live`, and returns it for the run's record.
pub(super) async fn write_log(
    mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    mut log: tokio::fs::File,
    redactor: crate::redact::Redactor,
    rec: Option<Recorder>,
    live: tokio::sync::watch::Sender<Option<RunProgress>>,
) -> Option<Box<Summarizer>> {
    use tokio::io::AsyncWriteExt;
    // Pieces of one long line arrive separately: a secret cut between two is masked whole.
    let mut masker = crate::redact::StreamRedactor::new(redactor.clone());
    let mut live = rec.map(|r| Live {
        z: Summarizer::new(&r.kind),
        prices: r.prices,
        tx: live,
        redactor,
        published: 0,
        activities: 0,
        last_activity_at: crate::api::now_ms(),
        last_publish: None,
    });
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_BATCH + MAX_LINE);
    loop {
        let next = match live.as_ref().and_then(Live::due) {
            Some(at) if at <= Instant::now() => {
                if let Some(l) = live.as_mut() {
                    l.publish();
                }
                continue;
            }
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(next) => next,
                Err(_) => continue,
            },
            None => rx.recv().await,
        };
        let Some(line) = next else { break };
        // Whatever else is queued goes into the same write: each write of a tokio file is a trip to the
        // blocking pool.
        out.clear();
        let mut line = Some(line);
        while let Some(l) = line.take() {
            let text = String::from_utf8_lossy(&l);
            let masked = masker.push(&text, l.ends_with(b"\n"));
            if let Some(live) = &mut live {
                live.fed(masked.as_bytes());
            }
            out.extend_from_slice(masked.as_bytes());
            if out.len() < WRITE_BATCH {
                line = rx.try_recv().ok();
            }
        }
        if log.write_all(&out).await.is_err() {
            break;
        }
    }
    let rest = masker.finish();
    let _ = log.write_all(rest.as_bytes()).await;
    let _ = log.flush().await;
    let mut l = live?;
    l.fed(rest.as_bytes());
    if l.due().is_some() {
        l.publish();
    }
    Some(Box::new(l.z))
}
