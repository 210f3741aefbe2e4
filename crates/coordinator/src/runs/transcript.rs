//! The transcript of a run, read from its log: a line-offset index built in one pass, windows of display
//! items, search and an "errors only" filter, and tail reading for a run that is still writing.
//!
//! Opening never parses JSON: the index is a memchr scan for newlines (a 100 MB log indexes in tens of
//! milliseconds from the page cache). Only the lines of a window, or the candidates of a search, are parsed
//! into items (`display`). Searches scan the raw bytes first and parse only the lines that can match.
//! Items are the log's non-blank lines, so item `i` is always the same line, live or not.
pub mod display;

pub use display::{Item, ItemKind};

use memchr::memmem;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of one line read at most; longer lines are shown cut (the record parser splits them the same way).
pub const MAX_LINE: usize = crate::runs::parse::MAX_LINE;
/// Most items one window returns.
pub const MAX_WINDOW: usize = 2000;
/// Bytes scanned at a time when indexing and searching.
const CHUNK: usize = 4 << 20;

/// Matching item indices, ascending; `truncated` when the bound stopped the scan early.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Matches {
    pub indices: Vec<usize>,
    pub truncated: bool,
}

/// Which lines a raw-byte mark counts in.
#[derive(Debug, Clone, Copy)]
enum Lines {
    Any,
    /// JSON events (first non-blank byte `{`), where the hit is part of one of the error marks.
    JsonMark,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    start: u64,
    /// Without the newline (and a `\r` before it).
    len: u32,
    /// 1-based line number in the file.
    number: u32,
}

pub struct Transcript {
    path: PathBuf,
    file: File,
    lines: Vec<Line>,
    /// Bytes scanned for newlines.
    scanned: u64,
    /// Start of the line being scanned (no newline seen for it yet).
    line_start: u64,
    /// The file's size when last looked at.
    size: u64,
    /// The last item is the line after the last newline (a live run mid-write): replaced when more arrives.
    partial_tail: bool,
    /// Newlines seen so far (for line numbers).
    newlines: u32,
}

/// Bytes indexed by [`Transcript::open_lazy`]: enough for the first screens of any log.
pub const LAZY_BUDGET: u64 = CHUNK as u64;

impl Transcript {
    /// Open and index the whole log.
    pub fn open(path: &Path) -> std::io::Result<Transcript> {
        let mut t = Transcript::open_lazy(path)?;
        t.refresh()?;
        Ok(t)
    }

    /// Open and index only the first [`LAZY_BUDGET`] bytes, so the first screen of a huge log is there at
    /// once; [`Transcript::index_more`] (or `refresh`) indexes the rest.
    pub fn open_lazy(path: &Path) -> std::io::Result<Transcript> {
        let file = File::open(path)?;
        let mut t = Transcript {
            path: path.to_path_buf(),
            file,
            lines: Vec::new(),
            scanned: 0,
            line_start: 0,
            size: 0,
            partial_tail: false,
            newlines: 0,
        };
        t.index_more(LAZY_BUDGET)?;
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of items (non-blank lines) indexed so far.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of the log indexed.
    pub fn bytes(&self) -> u64 {
        self.scanned
    }

    /// Whether the whole file (as large as it was when last looked at) is indexed.
    pub fn is_complete(&self) -> bool {
        self.scanned >= self.size
    }

    /// Index everything appended since the last call. Returns whether anything changed.
    pub fn refresh(&mut self) -> std::io::Result<bool> {
        self.index_more(u64::MAX)
    }

    /// Index up to about `budget` more bytes. A last line without a newline is shown as an item
    /// and replaced once more of it arrives. A file that shrank (rotated, rewritten) is indexed again from
    /// the start. Returns whether anything changed.
    pub fn index_more(&mut self, budget: u64) -> std::io::Result<bool> {
        let size = self.file.metadata()?.len();
        if size < self.scanned {
            self.lines.clear();
            (self.scanned, self.line_start, self.partial_tail, self.newlines) = (0, 0, false, 0);
        }
        self.size = size;
        if size == self.scanned {
            return Ok(false);
        }
        if self.partial_tail {
            self.lines.pop();
            self.partial_tail = false;
        }
        let stop = size.min(self.scanned.saturating_add(budget.max(1)));
        let mut buf = vec![0u8; (CHUNK as u64).min(size - self.scanned).min(budget.max(1)) as usize];
        while self.scanned < stop {
            let want = buf.len().min((size - self.scanned) as usize);
            let n = self.file.read_at(&mut buf[..want], self.scanned)?;
            if n == 0 {
                self.size = self.scanned;
                break;
            }
            let pos = self.scanned;
            for nl in memchr::memchr_iter(b'\n', &buf[..n]) {
                let end = pos + nl as u64;
                self.push_line(self.line_start, end, &buf[..n], pos);
                self.newlines = self.newlines.saturating_add(1);
                self.line_start = end + 1;
            }
            self.scanned += n as u64;
        }
        if self.is_complete() && self.line_start < self.scanned {
            let len = self.scanned - self.line_start;
            let mut head = [0u8; 64];
            let got = self.read_full(&mut head[..len.min(64) as usize], self.line_start)?;
            if len > 64 || !head[..got].iter().all(|b| b.is_ascii_whitespace()) {
                self.lines.push(Line {
                    start: self.line_start,
                    len: len.min(u32::MAX as u64) as u32,
                    number: self.newlines.saturating_add(1),
                });
                self.partial_tail = true;
            }
        }
        Ok(true)
    }

    /// Record the line `[start, end)`, skipping blank ones. `chunk` holds the bytes from `chunk_at` on, so
    /// short lines are checked for blankness without another read.
    fn push_line(&mut self, start: u64, end: u64, chunk: &[u8], chunk_at: u64) {
        let mut len = end - start;
        let last = |i: u64| {
            if i >= chunk_at {
                Some(chunk[(i - chunk_at) as usize])
            } else {
                None
            }
        };
        if len > 0 && last(end - 1) == Some(b'\r') {
            len -= 1;
        }
        if len == 0 {
            return;
        }
        if start >= chunk_at
            && len <= 8
            && chunk[(start - chunk_at) as usize..(start - chunk_at + len) as usize]
                .iter()
                .all(|b| b.is_ascii_whitespace())
        {
            return;
        }
        self.lines.push(Line {
            start,
            len: len.min(u32::MAX as u64) as u32,
            number: self.newlines.saturating_add(1),
        });
    }

    fn read_line(&self, l: &Line) -> std::io::Result<String> {
        let n = (l.len as usize).min(MAX_LINE);
        let mut buf = vec![0u8; n];
        let got = self.read_full(&mut buf, l.start)?;
        buf.truncate(got);
        Ok(match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn read_full(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.file.read_at(&mut buf[got..], at + got as u64)? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    }

    /// Item `i`, parsed for display.
    pub fn item(&self, i: usize) -> std::io::Result<Option<Item>> {
        let Some(l) = self.lines.get(i) else { return Ok(None) };
        Ok(Some(display::show(&self.read_line(l)?).into_item(i, l.number as usize)))
    }

    /// Items `[from, from + n)` (fewer at the end; at most [`MAX_WINDOW`]).
    pub fn window(&self, from: usize, n: usize) -> std::io::Result<Vec<Item>> {
        let end = from.saturating_add(n.min(MAX_WINDOW)).min(self.len());
        (from..end).filter_map(|i| self.item(i).transpose()).collect()
    }

    /// The items at `indices` (e.g. a page of search hits), skipping any out of range.
    pub fn items(&self, indices: &[usize]) -> std::io::Result<Vec<Item>> {
        indices
            .iter()
            .take(MAX_WINDOW)
            .filter_map(|&i| self.item(i).transpose())
            .collect()
    }

    /// Items whose text or tool name contains `needle`, ignoring case; at most `max`.
    pub fn search(&self, needle: &str, max: usize) -> std::io::Result<Matches> {
        let lower = needle.trim().to_lowercase();
        if lower.is_empty() {
            return Ok(Matches::default());
        }
        let matches = |it: &Item| {
            it.text.to_lowercase().contains(&lower)
                || it.tool.as_deref().is_some_and(|t| t.to_lowercase().contains(&lower))
        };
        // The raw line holds the text as it is (JSON escapes only `"`, `\` and control characters, and the
        // CLIs write UTF-8 unescaped), so an ASCII needle without those must appear in the raw bytes.
        let prefilter = lower.is_ascii() && !lower.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if prefilter {
            self.scan(&[(lower.as_str(), Lines::Any)], &[], max, matches)
        } else {
            self.scan(&[], &[], max, matches)
        }
    }

    /// Error items: errors, failed tool results, error results, rejected rate limits, a non-zero exit,
    /// plain-text lines that say error/failed/fatal; at most `max`.
    pub fn errors(&self, max: usize) -> std::io::Result<Matches> {
        // Three anchors over the whole log (every JSON mark holds one), each hit checked against the marks
        // around it; the few text lines are checked for the text words line by line.
        let anchors = [
            ("error", Lines::JsonMark),
            ("failed", Lines::JsonMark),
            ("rejected", Lines::JsonMark),
        ];
        self.scan(&anchors, display::TEXT_ERROR_MARKS, max, |it| it.is_error)
    }

    /// Does one of [`display::JSON_ERROR_MARKS`] span the anchor `word` found at `at` in `buf`?
    fn json_mark_at(buf: &[u8], at: usize, word: &[u8]) -> bool {
        display::JSON_ERROR_MARKS.iter().any(|m| {
            let m = m.as_bytes();
            memmem::find(m, word).is_some_and(|o| at >= o && buf.get(at - o..at - o + m.len()) == Some(m))
        })
    }

    /// Items that `keep` accepts, in order, parsing only lines whose raw bytes contain (ASCII case
    /// insensitively) one of `marks`, or text lines (not JSON) that contain one of `text_words` — every
    /// line when both are empty.
    fn scan(
        &self,
        marks: &[(&str, Lines)],
        text_words: &[&str],
        max: usize,
        keep: impl Fn(&Item) -> bool,
    ) -> std::io::Result<Matches> {
        let finders: Vec<(memmem::Finder, Lines)> = marks
            .iter()
            .map(|(w, l)| (memmem::Finder::new(w.as_bytes()), *l))
            .collect();
        let text_finders: Vec<memmem::Finder> = text_words.iter().map(|w| memmem::Finder::new(w.as_bytes())).collect();
        let mut out = Matches::default();
        let mut i = 0;
        let mut buf = Vec::new();
        while i < self.lines.len() {
            // A run of lines that fits a chunk (a longer line alone), read and lowercased at once.
            let first = self.lines[i];
            let mut j = i + 1;
            let limit = first.start + CHUNK as u64;
            while j < self.lines.len() && self.lines[j].start + self.lines[j].len as u64 <= limit {
                j += 1;
            }
            let span_end = self.lines[j - 1].start + (self.lines[j - 1].len as u64).min(MAX_LINE as u64);
            let mut candidates: Vec<usize> = Vec::new();
            if finders.is_empty() && text_finders.is_empty() {
                candidates.extend(i..j);
            } else {
                buf.resize((span_end - first.start) as usize, 0);
                let got = self.read_full(&mut buf, first.start)?;
                buf.truncate(got);
                buf.make_ascii_lowercase();
                let is_json = |k: usize| {
                    let off = (self.lines[k].start - first.start) as usize;
                    buf.get(off..).and_then(|b| b.iter().find(|c| !c.is_ascii_whitespace())) == Some(&b'{')
                };
                for (f, lines) in &finders {
                    for at in f.find_iter(&buf) {
                        let abs = first.start + at as u64;
                        // The line holding `abs`: the last one starting at or before it.
                        let k = i + self.lines[i..j].partition_point(|l| l.start <= abs) - 1;
                        let inside = abs < self.lines[k].start + self.lines[k].len as u64;
                        let fits = match lines {
                            Lines::Any => true,
                            Lines::JsonMark => is_json(k) && Self::json_mark_at(&buf, at, f.needle()),
                        };
                        if inside && fits {
                            candidates.push(k);
                        }
                    }
                }
                if !text_finders.is_empty() {
                    for k in (i..j).filter(|&k| !is_json(k)) {
                        let off = (self.lines[k].start - first.start) as usize;
                        let line = &buf[off.min(buf.len())..(off + self.lines[k].len as usize).min(buf.len())];
                        if text_finders.iter().any(|f| f.find(line).is_some()) {
                            candidates.push(k);
                        }
                    }
                }
                candidates.sort_unstable();
                candidates.dedup();
            }
            for k in candidates {
                if let Some(it) = self.item(k)? {
                    if keep(&it) {
                        if out.indices.len() >= max {
                            out.truncated = true;
                            return Ok(out);
                        }
                        out.indices.push(k);
                    }
                }
            }
            i = j;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
