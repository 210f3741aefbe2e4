//! Envelope transports: Unix socket (newline-delimited JSON, connections reused) and HTTP (keep-alive).

use super::PmError;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Replies larger than this are refused (skill archives make multi-MB replies; 32 MiB is plenty).
pub const MAX_REPLY_BYTES: usize = 32 * 1024 * 1024;
/// Idle Unix connections kept for reuse.
const POOL_SIZE: usize = 16;

pub enum Transport {
    Unix { path: PathBuf, pool: Mutex<Vec<BufReader<UnixStream>>> },
    Http { url: String, bearer: Option<String>, client: reqwest::Client },
}

impl Transport {
    /// `http://` / `https://` → HTTP, anything else → a Unix socket path.
    pub fn for_address(address: &str, bearer: Option<String>) -> Result<Transport, PmError> {
        let address = address.trim();
        if address.starts_with("http://") || address.starts_with("https://") {
            let client = reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(POOL_SIZE)
                .build()
                .map_err(|e| PmError::Unreachable { tool: "connect".into(), address: address.into(), message: e.to_string() })?;
            return Ok(Transport::Http { url: address.to_string(), bearer, client });
        }
        if address.is_empty() {
            return Err(PmError::Unreachable { tool: "connect".into(), address: String::new(), message: "no server address configured".into() });
        }
        Ok(Transport::Unix { path: PathBuf::from(address), pool: Mutex::new(Vec::new()) })
    }

    pub fn address(&self) -> String {
        match self {
            Transport::Unix { path, .. } => path.display().to_string(),
            Transport::Http { url, .. } => url.clone(),
        }
    }

    /// Send one JSON-RPC request object (with `id`) and return the full response envelope.
    pub async fn roundtrip(&self, tool: &str, request: Value, timeout: Duration) -> Result<Value, PmError> {
        match tokio::time::timeout(timeout, self.roundtrip_inner(tool, &request)).await {
            Ok(r) => r,
            Err(_) => Err(PmError::Timeout { tool: tool.into(), after: timeout }),
        }
    }

    async fn roundtrip_inner(&self, tool: &str, request: &Value) -> Result<Value, PmError> {
        match self {
            Transport::Unix { path, pool } => {
                let id = request.get("id").cloned().unwrap_or(Value::Null);
                let mut line = serde_json::to_vec(request).map_err(|e| PmError::Protocol { tool: tool.into(), message: e.to_string() })?;
                line.push(b'\n');
                // A pooled connection may have been closed by the server meanwhile: then retry once on a new one.
                let pooled = pool.lock().unwrap().pop();
                if let Some(conn) = pooled {
                    match exchange(conn, &line, &id, tool, path).await {
                        Ok((v, conn)) => {
                            put_back(pool, conn);
                            return Ok(v);
                        }
                        Err((e, sent)) if !sent => {
                            tracing::debug!("stale pooled connection ({e}); reconnecting");
                        }
                        Err((e, _)) => return Err(e),
                    }
                }
                let stream = UnixStream::connect(path).await.map_err(|e| PmError::Unreachable {
                    tool: tool.into(),
                    address: path.display().to_string(),
                    message: e.to_string(),
                })?;
                match exchange(BufReader::new(stream), &line, &id, tool, path).await {
                    Ok((v, conn)) => {
                        put_back(pool, conn);
                        Ok(v)
                    }
                    Err((e, _)) => Err(e),
                }
            }
            Transport::Http { url, bearer, client } => {
                let mut req = client.post(url).json(request);
                if let Some(b) = bearer {
                    req = req.bearer_auth(b);
                }
                let resp = req.send().await.map_err(|e| PmError::Unreachable { tool: tool.into(), address: url.clone(), message: strip_url(e) })?;
                let status = resp.status().as_u16();
                let bytes = read_limited(resp, tool, url).await?;
                if status != 200 {
                    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).to_string();
                    return Err(PmError::Http { tool: tool.into(), status, body: crate::redact::global().redact(&body) });
                }
                serde_json::from_slice(&bytes).map_err(|e| PmError::Protocol { tool: tool.into(), message: format!("reply is not JSON: {e}") })
            }
        }
    }
}

fn put_back(pool: &Mutex<Vec<BufReader<UnixStream>>>, conn: BufReader<UnixStream>) {
    let mut p = pool.lock().unwrap();
    if p.len() < POOL_SIZE {
        p.push(conn);
    }
}

/// The error and its causes, without the URL (which could carry credentials in a query).
fn strip_url(e: reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        causes.push(s.to_string());
        src = s.source();
    }
    let mut msg = e.without_url().to_string();
    for c in causes {
        msg.push_str(": ");
        msg.push_str(&c);
    }
    msg
}

async fn read_limited(mut resp: reqwest::Response, tool: &str, url: &str) -> Result<Vec<u8>, PmError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > MAX_REPLY_BYTES {
                    return Err(PmError::Protocol { tool: tool.into(), message: format!("reply larger than {} MiB", MAX_REPLY_BYTES / 1024 / 1024) });
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(PmError::Unreachable { tool: tool.into(), address: url.into(), message: format!("connection broke mid-reply: {}", strip_url(e)) }),
        }
    }
}

/// Write one line and read lines until the reply with our id. Errors say whether the request was sent.
async fn exchange(
    mut conn: BufReader<UnixStream>,
    line: &[u8],
    id: &Value,
    tool: &str,
    path: &std::path::Path,
) -> Result<(Value, BufReader<UnixStream>), (PmError, bool)> {
    let unreachable = |m: String| PmError::Unreachable { tool: tool.into(), address: path.display().to_string(), message: m };
    if let Err(e) = conn.get_mut().write_all(line).await {
        return Err((unreachable(e.to_string()), false));
    }
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // Read one line with a size cap (a plain read_until could grow without bound).
        loop {
            let chunk = match conn.fill_buf().await {
                Ok(c) => c,
                Err(e) => return Err((unreachable(e.to_string()), true)),
            };
            if chunk.is_empty() {
                let first = buf.is_empty();
                return Err((unreachable(if first { "connection closed by the server".into() } else { "connection closed mid-reply".into() }), !first));
            }
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            buf.extend_from_slice(&chunk[..take]);
            conn.consume(take);
            if buf.len() > MAX_REPLY_BYTES {
                return Err((PmError::Protocol { tool: tool.into(), message: format!("reply larger than {} MiB", MAX_REPLY_BYTES / 1024 / 1024) }, true));
            }
            if done {
                break;
            }
        }
        let text = &buf[..buf.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => return Err((PmError::Protocol { tool: tool.into(), message: format!("reply is not JSON: {e}") }, true)),
        };
        // Skip notifications and replies to other ids (never expected, but never mistaken for ours).
        match v.get("id") {
            Some(rid) if rid == id => return Ok((v, conn)),
            None if v.get("error").is_some() => return Ok((v, conn)),
            _ => continue,
        }
    }
}
