//! Turning a provider's JSONL stream into [`RunEvent`]s, defensively.
//!
//! A line may be cut (a kill mid-write, a size cap), two writers may interleave (a `rate_limit_event` can
//! land inside another JSON line), and a CLI may print plain text between its events. The driver here deals
//! with all of that once; the provider modules only map one well-formed JSON object to events. Nothing in
//! here panics on any input (see the property tests).
pub mod claude;
pub mod codex;
pub mod gemini;

use super::events::RunEvent;
use serde::de::IgnoredAny;

/// Longest line kept whole; longer ones are split (and the pieces end up as raw text).
pub const MAX_LINE: usize = 8 << 20;
/// Longest cut JSON prefix held back in the hope that the next line completes it.
const MAX_PENDING: usize = 1 << 20;

/// One provider's mapping from a JSON object to events.
pub trait Provider: Send {
    /// `json` is meant to be one JSON object. Returns false, having pushed nothing, when it is not one (cut,
    /// trailing text) or has no `type`: the driver then salvages it. Unknown `type`s push [`RunEvent::Raw`].
    fn event(&mut self, json: &str, out: &mut Vec<RunEvent>) -> bool;
}

/// The parser for a provider kind ("claude", "gemini", "codex"); None for custom commands.
pub fn for_kind(kind: &str) -> Option<StreamParser> {
    let p: Box<dyn Provider> = match kind {
        "claude" => Box::new(claude::Claude::default()),
        "gemini" => Box::new(gemini::Gemini),
        "codex" => Box::new(codex::Codex),
        _ => return None,
    };
    Some(StreamParser::new(p))
}

/// Byte stream → lines → events.
pub struct StreamParser {
    provider: Box<dyn Provider>,
    /// Bytes after the last newline seen.
    buf: Vec<u8>,
    /// A line that looked like the start of a JSON object cut short; tried again joined to the next line.
    pending: String,
}

impl StreamParser {
    pub fn new(provider: Box<dyn Provider>) -> Self {
        StreamParser {
            provider,
            buf: Vec::new(),
            pending: String::new(),
        }
    }

    /// Feed raw bytes as they arrive (any chunking).
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<RunEvent>) {
        let mut rest = bytes;
        while let Some(nl) = memchr(b'\n', rest) {
            let (head, tail) = (&rest[..nl], &rest[nl + 1..]);
            if self.buf.is_empty() {
                self.bytes_line(head, out);
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(head);
                self.bytes_line(&line, out);
            }
            rest = tail;
        }
        self.buf.extend_from_slice(rest);
        if self.buf.len() > MAX_LINE {
            let line = std::mem::take(&mut self.buf);
            self.bytes_line(&line, out);
        }
    }

    /// End of stream: whatever is left is a last line.
    pub fn finish(&mut self, out: &mut Vec<RunEvent>) {
        let line = std::mem::take(&mut self.buf);
        if !line.is_empty() {
            self.bytes_line(&line, out);
        }
        if !self.pending.is_empty() {
            out.push(RunEvent::Raw(std::mem::take(&mut self.pending)));
        }
    }

    fn bytes_line(&mut self, line: &[u8], out: &mut Vec<RunEvent>) {
        // The common case, valid UTF-8, without the lossy decoder's slower walk.
        let line = match std::str::from_utf8(line) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(line),
        };
        self.line(line.trim_end_matches('\r'), out);
    }

    /// One complete line (without its newline).
    pub fn line(&mut self, line: &str, out: &mut Vec<RunEvent>) {
        if line.trim().is_empty() {
            return;
        }
        if !self.pending.is_empty() {
            let mut joined = std::mem::take(&mut self.pending);
            joined.push_str(line);
            if self.provider.event(&joined, out) {
                return;
            }
            // The next line did not complete it: the cut prefix stays raw text.
            out.push(RunEvent::Raw(joined[..joined.len() - line.len()].to_string()));
        }
        if line.trim_start().starts_with('{') && self.provider.event(line, out) {
            self.nested_rate_limits(line, out);
            return;
        }
        self.salvage(line, out);
    }

    /// A line that is not one JSON event: pull out the JSON objects inside it, then try the text around
    /// them as one object (an event spliced into another), else keep it as raw text or as a cut prefix.
    fn salvage(&mut self, line: &str, out: &mut Vec<RunEvent>) {
        let mut leftover = String::new();
        let mut found = false;
        let mut pos = 0;
        while let Some(i) = find_object_start(line, pos) {
            match object_len(&line[i..]) {
                Some(n) if self.known_event(&line[i..i + n], out) => {
                    leftover.push_str(&line[pos..i]);
                    pos = i + n;
                    found = true;
                }
                _ => {
                    // Not an event here; keep looking after this brace.
                    leftover.push_str(&line[pos..i + 1]);
                    pos = i + 1;
                }
            }
        }
        leftover.push_str(&line[pos..]);
        if leftover.trim().is_empty() {
            return;
        }
        let t = leftover.trim();
        if found && t.starts_with('{') && self.provider.event(t, out) {
            return;
        }
        if t.starts_with('{') && t.len() <= MAX_PENDING && cut_json(t) {
            self.pending = t.to_string();
            return;
        }
        out.push(RunEvent::Raw(leftover));
    }

    /// A `rate_limit_event` spliced where a JSON value may stand (`"x":[` + event + `]`) leaves the outer
    /// line valid; no CLI nests one on purpose, so an unescaped one inside a line is taken out as well.
    fn nested_rate_limits(&mut self, line: &str, out: &mut Vec<RunEvent>) {
        const MARK: &str = "{\"type\":\"rate_limit_event\"";
        let mut from = 1;
        while let Some(rel) = line.get(from..).and_then(|s| s.find(MARK)) {
            let i = from + rel;
            if let Some(n) = object_len(&line[i..]) {
                self.known_event(&line[i..i + n], out);
            }
            from = i + 1;
        }
    }

    /// An object inside a damaged line counts only when it is a known event: a nested content block
    /// (`{"type":"text",…}`) stays part of the text around it, so that text can still be rejoined.
    fn known_event(&mut self, json: &str, out: &mut Vec<RunEvent>) -> bool {
        let before = out.len();
        if !self.provider.event(json, out) {
            return false;
        }
        if out.len() == before + 1 && matches!(out.last(), Some(RunEvent::Raw(r)) if r == json) {
            out.pop();
            return false;
        }
        true
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// Next `{` at or after `from` that opens an object whose first key is "type" (every CLI here writes its
/// event type first), so braces in plain text are not tried.
fn find_object_start(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = from;
    while i < bytes.len() {
        let rel = memchr(b'{', &bytes[i..])?;
        let at = i + rel;
        let after = s[at + 1..].trim_start();
        if after.starts_with("\"type\"") {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Length of the JSON value at the start of `s`, if one parses there.
fn object_len(s: &str) -> Option<usize> {
    let mut it = serde_json::Deserializer::from_str(s).into_iter::<IgnoredAny>();
    match it.next() {
        Some(Ok(_)) => Some(it.byte_offset()),
        _ => None,
    }
}

/// Valid JSON so far that ends too early.
fn cut_json(s: &str) -> bool {
    matches!(serde_json::from_str::<IgnoredAny>(s), Err(e) if e.is_eof())
}

/// A field of the wrong type (a CLI changed a number to a string, a `null`) is treated as absent instead of
/// making the whole event unreadable.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v: serde_json::Value = serde::Deserialize::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

/// Parse a whole text at once (tests, re-deriving a record from a log).
pub fn parse_all(kind: &str, text: &[u8]) -> Vec<RunEvent> {
    let mut out = Vec::new();
    if let Some(mut p) = for_kind(kind) {
        p.feed(text, &mut out);
        p.finish(&mut out);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests;
