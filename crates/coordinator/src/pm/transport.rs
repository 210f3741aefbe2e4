//! Envelope transports: Unix socket (newline-delimited JSON, connections reused) and HTTP (keep-alive).

use super::wire::Envelope;
use super::PmError;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Replies larger than this are refused: skill archives (base64 ZIPs in `get_subordinate_profile`) and the
/// project list of a large server make multi-MB replies; the server itself sizes its socket buffer at 8 MiB.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Every other tool answers a few hundred bytes; a cap in MiBs keeps a hostile reply from costing GBs of RAM.
pub const MAX_SMALL_REPLY_BYTES: usize = 1024 * 1024;

/// What a reply to `tool` may weigh.
pub fn reply_cap(tool: &str) -> usize {
    match tool {
        "get_subordinate_profile" | "list_active_projects_with_agents" | "get_app_settings" => MAX_REPLY_BYTES,
        _ => MAX_SMALL_REPLY_BYTES,
    }
}

/// The HTTP client every server call uses: no redirects (the token is in every body and the Bearer header; a
/// redirect must never carry it to another origin), TLS with the system's trust store (private CAs work).
pub fn http_client(timeout: Option<Duration>) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(POOL_SIZE);
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    b.build()
}

/// Plain `http://` sends the coordinator token in clear: allowed to loopback, elsewhere only when the user opted in
/// (`server.allow_insecure_http`). `https://` and socket paths are always fine.
pub fn check_cleartext(address: &str, allow_insecure_http: bool) -> Result<(), String> {
    let address = address.trim();
    if !address.starts_with("http://") || allow_insecure_http {
        return Ok(());
    }
    let url =
        reqwest::Url::parse(address).map_err(|e| format!("server address {address:?} is not a valid URL: {e}"))?;
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return Ok(());
    }
    Err(format!(
        "server address {address} is plain http to another machine: the coordinator token would cross the network \
         in clear. Use https://, or set server.allow_insecure_http = true to accept the risk"
    ))
}
/// Idle Unix connections kept for reuse.
const POOL_SIZE: usize = 16;

pub enum Transport {
    Unix {
        path: PathBuf,
        pool: Mutex<Vec<BufReader<UnixStream>>>,
    },
    Http {
        url: String,
        bearer: Option<String>,
        client: reqwest::Client,
    },
}

impl Transport {
    /// `http://` / `https://` → HTTP, anything else → a Unix socket path.
    pub fn for_address(address: &str, bearer: Option<String>, allow_insecure_http: bool) -> Result<Transport, PmError> {
        let address = address.trim();
        if address.starts_with("http://") || address.starts_with("https://") {
            check_cleartext(address, allow_insecure_http).map_err(|message| PmError::Unreachable {
                tool: "connect".into(),
                address: address.into(),
                message,
            })?;
            let client = http_client(None).map_err(|e| PmError::Unreachable {
                tool: "connect".into(),
                address: address.into(),
                message: e.to_string(),
            })?;
            return Ok(Transport::Http {
                url: address.to_string(),
                bearer,
                client,
            });
        }
        if address.is_empty() {
            return Err(PmError::Unreachable {
                tool: "connect".into(),
                address: String::new(),
                message: "no server address configured".into(),
            });
        }
        Ok(Transport::Unix {
            path: PathBuf::from(address),
            pool: Mutex::new(Vec::new()),
        })
    }

    pub fn address(&self) -> String {
        match self {
            Transport::Unix { path, .. } => path.display().to_string(),
            Transport::Http { url, .. } => url.clone(),
        }
    }

    /// Send one JSON-RPC request object (with `id`) and return the full response envelope.
    pub async fn roundtrip(&self, tool: &str, request: Value, timeout: Duration) -> Result<Envelope, PmError> {
        match tokio::time::timeout(timeout, self.roundtrip_inner(tool, &request)).await {
            Ok(r) => r,
            Err(_) => Err(PmError::Timeout {
                tool: tool.into(),
                after: timeout,
            }),
        }
    }

    async fn roundtrip_inner(&self, tool: &str, request: &Value) -> Result<Envelope, PmError> {
        match self {
            Transport::Unix { path, pool } => {
                let id = request.get("id").and_then(Value::as_u64).unwrap_or(0);
                let mut line = serde_json::to_vec(request).map_err(|e| PmError::Protocol {
                    tool: tool.into(),
                    message: e.to_string(),
                })?;
                line.push(b'\n');
                // A pooled connection may have been closed by the server meanwhile: then retry once on a new one.
                let pooled = pool.lock().unwrap().pop();
                if let Some(conn) = pooled {
                    match exchange(conn, &line, id, tool, path).await {
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
                match exchange(BufReader::new(stream), &line, id, tool, path).await {
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
                let resp = req.send().await.map_err(|e| PmError::Unreachable {
                    tool: tool.into(),
                    address: url.clone(),
                    message: strip_url(e),
                })?;
                let status = resp.status().as_u16();
                if resp.status().is_redirection() {
                    return Err(PmError::Http { tool: tool.into(), status: resp.status().as_u16(), body: "the server answered with a redirect; redirects are not followed (the token must not reach another address): set the final URL as the server address".into() });
                }
                let bytes = read_limited(resp, tool, url, reply_cap(tool)).await?;
                if status != 200 {
                    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).to_string();
                    return Err(PmError::Http {
                        tool: tool.into(),
                        status,
                        body: crate::redact::global().redact(&body),
                    });
                }
                Envelope::parse(&bytes, tool)
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

/// The body, refused once it passes `cap` (checked against Content-Length first, then while streaming).
pub async fn read_limited(mut resp: reqwest::Response, tool: &str, url: &str, cap: usize) -> Result<Vec<u8>, PmError> {
    let too_big = || PmError::Protocol {
        tool: tool.into(),
        message: format!("reply larger than {} KiB", cap / 1024),
    };
    if resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > cap {
                    return Err(too_big());
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                return Err(PmError::Unreachable {
                    tool: tool.into(),
                    address: url.into(),
                    message: format!("connection broke mid-reply: {}", strip_url(e)),
                })
            }
        }
    }
}

/// Write one line and read lines until the reply with our id. Errors say whether the request was sent.
async fn exchange(
    mut conn: BufReader<UnixStream>,
    line: &[u8],
    id: u64,
    tool: &str,
    path: &std::path::Path,
) -> Result<(Envelope, BufReader<UnixStream>), (PmError, bool)> {
    let unreachable = |m: String| PmError::Unreachable {
        tool: tool.into(),
        address: path.display().to_string(),
        message: m,
    };
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
                return Err((
                    unreachable(if first {
                        "connection closed by the server".into()
                    } else {
                        "connection closed mid-reply".into()
                    }),
                    !first,
                ));
            }
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            buf.extend_from_slice(&chunk[..take]);
            conn.consume(take);
            if buf.len() > reply_cap(tool) {
                return Err((
                    PmError::Protocol {
                        tool: tool.into(),
                        message: format!("reply larger than {} KiB", reply_cap(tool) / 1024),
                    },
                    true,
                ));
            }
            if done {
                break;
            }
        }
        let text = &buf[..buf.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v = match Envelope::parse(text, tool) {
            Ok(v) => v,
            Err(e) => return Err((e, true)),
        };
        // Skip notifications and replies to other ids (never expected, but never mistaken for ours).
        if v.answers(id) || v.is_anonymous_error() {
            return Ok((v, conn));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::AsyncReadExt;

    #[test]
    fn cleartext_only_to_loopback_unless_opted_in() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost/x",
            "http://[::1]:9/",
            "https://pm.example.com",
            "/tmp/pm.sock",
        ] {
            assert!(check_cleartext(ok, false).is_ok(), "{ok}");
        }
        let err = check_cleartext("http://pm.example.com:8080", false).unwrap_err();
        assert!(err.contains("allow_insecure_http") && err.contains("https://"), "{err}");
        assert!(check_cleartext("http://10.0.0.5", false).is_err());
        assert!(check_cleartext("http://10.0.0.5", true).is_ok());
        assert!(Transport::for_address("http://10.0.0.5:1", None, false).is_err());
    }

    /// A tiny HTTP server answering every request with `reply`, counting requests and keeping their bytes.
    async fn serve(reply: String) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<u8>>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 65536];
                let n = c.read(&mut buf).await.unwrap_or(0);
                s.lock().unwrap().extend_from_slice(&buf[..n]);
                let _ = c.write_all(reply.as_bytes()).await;
            }
        });
        (url, hits, seen)
    }

    #[tokio::test]
    async fn a_redirect_is_refused_and_the_token_never_reaches_the_other_origin() {
        let (elsewhere, hits, seen) = serve("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".into()).await;
        let (server, _, _) = serve(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/mcp\r\ncontent-length: 0\r\n\r\n"
        ))
        .await;
        let t = Transport::for_address(&server, Some("tok-secret-123".into()), false).unwrap();
        let req = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"coordinator_token":"tok-secret-123"}}});
        let err = t
            .roundtrip("health_check", req, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, PmError::Http { status: 307, .. }), "{err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(hits.load(Ordering::SeqCst), 0, "the redirect target was contacted");
        assert!(!String::from_utf8_lossy(&seen.lock().unwrap()).contains("tok-secret-123"));
    }

    #[tokio::test]
    async fn an_oversized_reply_is_refused_before_it_is_read_whole() {
        let big = "[".to_string() + &"0,".repeat(MAX_SMALL_REPLY_BYTES) + "0]";
        let (server, _, _) = serve(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{big}", big.len())).await;
        let t = Transport::for_address(&server, None, false).unwrap();
        let err = t
            .roundtrip("get_agent_action", serde_json::json!({"id":1}), Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("reply larger than"), "{err}");
    }
}
