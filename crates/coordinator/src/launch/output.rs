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
                let need = if b >= 0xF0 { 4 } else if b >= 0xE0 { 3 } else { 2 };
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

/// Reads a pipe line by line and forwards the lines; a line longer than [`MAX_LINE`] is forwarded in pieces
/// (memory stays bounded whatever an agent prints), and a partial last line is flushed at EOF.
pub(super) async fn relay_lines(pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>, tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    use tokio::io::AsyncBufReadExt;
    let mut r = tokio::io::BufReader::with_capacity(16 * 1024, pipe);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (used, complete) = match r.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(buf) => {
                let room = MAX_LINE - line.len();
                let take = &buf[..buf.len().min(room)];
                match take.iter().position(|&b| b == b'\n') {
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

pub(super) async fn write_log(mut rx: tokio::sync::mpsc::Receiver<Vec<u8>>, mut log: tokio::fs::File, redactor: crate::redact::Redactor) {
    use tokio::io::AsyncWriteExt;
    // Pieces of one long line arrive separately: a secret cut between two is masked whole.
    let mut masker = crate::redact::StreamRedactor::new(redactor);
    while let Some(line) = rx.recv().await {
        let text = String::from_utf8_lossy(&line);
        let masked = masker.push(&text, line.ends_with(b"\n"));
        if log.write_all(masked.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = log.write_all(masker.finish().as_bytes()).await;
    let _ = log.flush().await;
}
