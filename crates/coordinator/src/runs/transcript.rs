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
    /// Bytes indexed: everything up to here has been scanned.
    indexed: u64,
    /// The last line had no newline yet (a live run mid-write): it is re-read on the next refresh.
    partial_tail: bool,
    /// Newlines seen so far (for line numbers).
    newlines: u32,
}

impl Transcript {
    /// Open and index the whole log.
    pub fn open(path: &Path) -> std::io::Result<Transcript> {
        let file = File::open(path)?;
        let mut t = Transcript { path: path.to_path_buf(), file, lines: Vec::new(), indexed: 0, partial_tail: false, newlines: 0 };
        t.refresh()?;
        Ok(t)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of items (non-blank lines).
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes of the log indexed.
    pub fn bytes(&self) -> u64 {
        self.indexed
    }

    /// Index what was appended since the last call (re-reading a last line that had no newline). A file
    /// that shrank (rotated, rewritten) is indexed again from the start. Returns whether anything changed.
    pub fn refresh(&mut self) -> std::io::Result<bool> {
        let size = self.file.metadata()?.len();
        if size < self.indexed {
            self.lines.clear();
            (self.indexed, self.partial_tail, self.newlines) = (0, false, 0);
        }
        if size == self.indexed {
            return Ok(false);
        }
        if self.partial_tail {
            let last = self.lines.pop().expect("a partial tail is a line");
            self.indexed = last.start;
            self.partial_tail = false;
        }
        let mut buf = vec![0u8; CHUNK];
        let mut pos = self.indexed;
        // Start of the line being scanned (it may span chunks).
        let mut line_start = self.indexed;
        while pos < size {
            let want = CHUNK.min((size - pos) as usize);
            let n = self.file.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            for nl in memchr::memchr_iter(b'\n', chunk) {
                let end = pos + nl as u64;
                self.push_line(line_start, end, chunk, pos);
                self.newlines = self.newlines.saturating_add(1);
                line_start = end + 1;
            }
            pos += n as u64;
        }
        if line_start < pos {
            // No newline yet: shown as a line, read again when more arrives.
            let tail_len = (pos - line_start) as usize;
            let mut tail = vec![0u8; tail_len.min(64)];
            let got = self.file.read_at(&mut tail, line_start)?;
            let blank = tail_len <= 64 && tail[..got].iter().all(|b| b.is_ascii_whitespace());
            if !blank {
                self.lines.push(Line { start: line_start, len: tail_len.min(u32::MAX as usize) as u32, number: self.newlines.saturating_add(1) });
                self.partial_tail = true;
            }
            self.indexed = pos;
            if blank {
                // Whitespace without a newline: look at it again next time.
                self.indexed = line_start;
            }
        } else {
            self.indexed = pos;
        }
        Ok(true)
    }

    /// Record the line `[start, end)`, skipping blank ones. `chunk` holds the bytes from `chunk_at` on, so
    /// short lines are checked for blankness without another read.
    fn push_line(&mut self, start: u64, end: u64, chunk: &[u8], chunk_at: u64) {
        let mut len = end - start;
        let last = |i: u64| if i >= chunk_at { Some(chunk[(i - chunk_at) as usize]) } else { None };
        if len > 0 && last(end - 1) == Some(b'\r') {
            len -= 1;
        }
        if len == 0 {
            return;
        }
        if start >= chunk_at && len <= 8 && chunk[(start - chunk_at) as usize..(start - chunk_at + len) as usize].iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        self.lines.push(Line { start, len: len.min(u32::MAX as u64) as u32, number: self.newlines.saturating_add(1) });
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
        indices.iter().take(MAX_WINDOW).filter_map(|&i| self.item(i).transpose()).collect()
    }

    /// Items whose text or tool name contains `needle`, ignoring case; at most `max`.
    pub fn search(&self, needle: &str, max: usize) -> std::io::Result<Matches> {
        let lower = needle.trim().to_lowercase();
        if lower.is_empty() {
            return Ok(Matches::default());
        }
        let matches = |it: &Item| it.text.to_lowercase().contains(&lower) || it.tool.as_deref().is_some_and(|t| t.to_lowercase().contains(&lower));
        // The raw line holds the text as it is (JSON escapes only `"`, `\` and control characters, and the
        // CLIs write UTF-8 unescaped), so an ASCII needle without those must appear in the raw bytes.
        let prefilter = lower.is_ascii() && !lower.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
        if prefilter {
            self.scan(&[lower.as_str()], max, matches)
        } else {
            self.scan(&[], max, matches)
        }
    }

    /// Error items: errors, failed tool results, error results, rejected rate limits, plain-text lines that
    /// say error/failed/fatal; at most `max`.
    pub fn errors(&self, max: usize) -> std::io::Result<Matches> {
        self.scan(display::ERROR_WORDS, max, |it| it.is_error)
    }

    /// Items that `keep` accepts, in order, parsing only lines whose raw bytes contain (ASCII case
    /// insensitively) one of `words` — every line when `words` is empty.
    fn scan(&self, words: &[&str], max: usize, keep: impl Fn(&Item) -> bool) -> std::io::Result<Matches> {
        let finders: Vec<memmem::Finder> = words.iter().map(|w| memmem::Finder::new(w.as_bytes())).collect();
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
            if finders.is_empty() {
                candidates.extend(i..j);
            } else {
                buf.resize((span_end - first.start) as usize, 0);
                let got = self.read_full(&mut buf, first.start)?;
                buf.truncate(got);
                buf.make_ascii_lowercase();
                for f in &finders {
                    for at in f.find_iter(&buf) {
                        let abs = first.start + at as u64;
                        // The line holding `abs`: the last one starting at or before it.
                        let k = i + self.lines[i..j].partition_point(|l| l.start <= abs) - 1;
                        if abs < self.lines[k].start + self.lines[k].len as u64 {
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
