//! Masking of known secrets in every log line, error and status text.

use std::io::Write;
use std::sync::{Arc, RwLock};

/// What a masked secret looks like.
pub const MASK: &str = "********";

/// A shared, growing set of secrets to mask. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    /// Remember a secret. Very short values are ignored: masking "ab" everywhere would garble text.
    pub fn add(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut v = self.0.write().unwrap();
        if !v.iter().any(|s| s == secret) {
            v.push(secret.to_string());
            // Longest first, so a secret containing another is masked whole.
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn redact(&self, text: &str) -> String {
        let v = self.0.read().unwrap();
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.read().unwrap().is_empty()
    }

    /// Length in bytes of the longest secret (0 when none).
    pub fn max_len(&self) -> usize {
        self.0.read().unwrap().first().map_or(0, String::len)
    }

    /// Mask `text` and return it with the byte offset up to which it is final: a secret that may continue in
    /// text not yet seen cannot start before that offset (see [`StreamRedactor`]).
    fn redact_prefix(&self, text: &str) -> (String, usize) {
        let v = self.0.read().unwrap();
        let longest = v.first().map_or(0, String::len);
        // Past this point a secret could still be incomplete; before it, any match is whole.
        let mut safe = text.len().saturating_sub(longest.saturating_sub(1));
        while !text.is_char_boundary(safe) {
            safe -= 1;
        }
        let (mut out, mut i, mut copied) = (String::with_capacity(text.len()), 0, 0);
        while i < safe {
            match v.iter().find(|s| text[i..].starts_with(s.as_str())) {
                Some(s) => {
                    out.push_str(&text[copied..i]);
                    out.push_str(MASK);
                    i += s.len();
                    copied = i;
                }
                None => i += text[i..].chars().next().map_or(1, char::len_utf8),
            }
        }
        let end = i.max(safe);
        out.push_str(&text[copied..end]);
        (out, end)
    }
}

/// Masks a stream cut into pieces at arbitrary points (long output lines are forwarded in 64 KiB pieces): the
/// tail of a piece that could be the start of a secret is held back and masked together with the next piece.
pub struct StreamRedactor {
    redactor: Redactor,
    carry: String,
}

impl StreamRedactor {
    pub fn new(redactor: Redactor) -> Self {
        StreamRedactor {
            redactor,
            carry: String::new(),
        }
    }

    /// Masked text that is final. `line_complete`: the piece ends a line (secrets never span a newline).
    pub fn push(&mut self, piece: &str, line_complete: bool) -> String {
        if line_complete {
            let whole = std::mem::take(&mut self.carry) + piece;
            return self.redactor.redact(&whole);
        }
        self.carry.push_str(piece);
        let (out, end) = self.redactor.redact_prefix(&self.carry);
        self.carry.drain(..end);
        out
    }

    /// Whatever is held back, masked (end of the stream).
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.carry);
        self.redactor.redact(&rest)
    }
}

/// The process-wide redactor used by the tracing writer.
pub fn global() -> &'static Redactor {
    static G: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    G.get_or_init(Redactor::default)
}

/// For display: never any part of the value, only that it exists.
pub fn mask(value: &str) -> String {
    if value.is_empty() {
        String::new()
    } else {
        format!("•••• ({} characters)", value.chars().count())
    }
}

/// A `MakeWriter` that masks every formatted line before it reaches the sink.
#[derive(Clone)]
pub struct RedactingWriter<W: Clone> {
    inner: W,
    redactor: Redactor,
}

impl<W: Clone> RedactingWriter<W> {
    pub fn new(inner: W, redactor: Redactor) -> Self {
        RedactingWriter { inner, redactor }
    }
}

/// One formatted event, buffered and masked on drop.
pub struct RedactingLine<W: Write> {
    buf: Vec<u8>,
    inner: W,
    redactor: Redactor,
}

impl<W: Write> Write for RedactingLine<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let _ = self.inner.write_all(self.redactor.redact(&text).as_bytes());
        let _ = self.inner.flush();
    }
}

impl<'a, W> tracing_subscriber::fmt::MakeWriter<'a> for RedactingWriter<W>
where
    W: tracing_subscriber::fmt::MakeWriter<'a> + Clone,
{
    type Writer = RedactingLine<W::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingLine {
            buf: Vec::new(),
            inner: self.inner.make_writer(),
            redactor: self.redactor.clone(),
        }
    }
}

/// Logging to stderr through the global redactor; `RUST_LOG` overrides the level.
pub fn init_tracing(debug: bool, json: bool) {
    init_tracing_at(if debug { "debug" } else { "info" }, json);
}

/// Same, with an explicit default level (`RUST_LOG` still wins).
pub fn init_tracing_at(default: &str, json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let writer = RedactingWriter::new(std::io::stderr, global().clone());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn masks_longest_first() {
        let r = Redactor::default();
        r.add("abcd");
        r.add("abcdefgh");
        assert_eq!(r.redact("x abcdefgh y abcd"), format!("x {MASK} y {MASK}"));
        r.add("ab"); // too short: ignored
        assert_eq!(r.redact("ab"), "ab");
    }

    #[test]
    fn tracing_output_is_masked_in_debug_too() {
        let sink = Sink::default();
        let r = Redactor::default();
        r.add("pk-very-secret");
        let s = sink.clone();
        let writer = RedactingWriter::new(move || s.clone(), r);
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(passkey = "pk-very-secret", "spawning with pk-very-secret");
        });
        let out = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("spawning with"), "{out}");
        assert!(!out.contains("pk-very-secret"), "{out}");
    }

    #[test]
    fn a_secret_cut_between_pieces_is_still_masked() {
        let r = Redactor::default();
        r.add("pk-0123456789abcdef");
        r.add("tok-zz99");
        let text = format!(
            "{}pk-0123456789abcdef{}tok-zz99 end",
            "x".repeat(70_000),
            "é".repeat(10)
        );
        for cut in [1, 3, 7, 15, 4096, 65_536, 70_003, 70_010] {
            let mut sr = StreamRedactor::new(r.clone());
            let mut out = String::new();
            let mut rest = text.as_str();
            while !rest.is_empty() {
                let mut n = cut.min(rest.len());
                while !rest.is_char_boundary(n) {
                    n += 1;
                }
                out.push_str(&sr.push(&rest[..n], false));
                rest = &rest[n..];
            }
            out.push_str(&sr.finish());
            assert_eq!(out, r.redact(&text), "cut every {cut} bytes");
            assert!(!out.contains("0123456789") && !out.contains("zz99"));
        }
    }

    #[test]
    fn mask_shows_no_part_of_the_value() {
        assert!(!mask("secret").contains("se"));
    }
}
