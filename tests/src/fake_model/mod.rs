//! A scripted model endpoint on 127.0.0.1 speaking the Anthropic Messages, Gemini and OpenAI Responses wire
//! formats (streamed), so the real agent CLIs run offline. The script (`brain`) decides each reply from the
//! tools offered and the tool results in the conversation. Every request is recorded, so a test can count
//! how many bodies carried a secret (`passkey_seen_by_model`), and can script 401/429 replies.
pub mod brain;
#[cfg(test)]
mod tests;
pub mod wire;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use wire::Wire;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: String,
    /// Tool names offered and the decision taken (None for side requests).
    pub decision: Option<(Vec<String>, brain::Decision)>,
    /// Whether the fake speaks this path (a model call, `HEAD /`, token counting, model lists).
    pub known: bool,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Recorded>>,
    /// 0 = answer normally; else reply to model calls with this status and the provider's error body.
    fail_status: AtomicU16,
    n: AtomicU64,
}

/// A running fake model endpoint; stops when dropped.
pub struct FakeModel {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeModel {
    pub async fn start() -> anyhow::Result<FakeModel> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let s = s.clone();
            async move { handle(&s, method, uri, body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(FakeModel {
            addr,
            shared,
            _stop: tx,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Reply to every model call with `status` (401, 429) and the provider's error body; 0 to stop.
    pub fn fail_with(&self, status: u16) {
        self.shared.fail_status.store(status, Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// How many recorded bodies contain any of `secrets` (passkeys, the coordinator token).
    pub fn bodies_containing(&self, secrets: &[String]) -> usize {
        self.requests()
            .iter()
            .filter(|r| secrets.iter().any(|s| !s.is_empty() && r.body.contains(s.as_str())))
            .count()
    }

    /// Paths nobody answers (a CLI asking for something the fake does not speak).
    pub fn unknown_paths(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| !r.known)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

fn json_reply(status: StatusCode, v: Value) -> Response {
    (status, [("content-type", "application/json")], v.to_string()).into_response()
}

fn sse_reply(body: String) -> Response {
    (
        StatusCode::OK,
        [("content-type", "text/event-stream"), ("cache-control", "no-cache")],
        body,
    )
        .into_response()
}

fn handle(s: &Shared, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let text = String::from_utf8_lossy(&body).to_string();
    let mut rec = Recorded {
        method: method.to_string(),
        path: uri.to_string(),
        body: text.clone(),
        decision: None,
        known: true,
    };
    let wire = if path == "/v1/messages" {
        Some(Wire::Anthropic)
    } else if path.starts_with("/v1beta/models/")
        && (path.ends_with(":streamGenerateContent") || path.ends_with(":generateContent"))
    {
        Some(Wire::Gemini)
    } else if path == "/v1/responses" {
        Some(Wire::OpenAi)
    } else {
        None
    };
    let reply = match (wire, method.as_str()) {
        (Some(w), "POST") => {
            let fail = s.fail_status.load(Ordering::SeqCst);
            if fail != 0 {
                json_reply(
                    StatusCode::from_u16(fail).unwrap_or(StatusCode::TOO_MANY_REQUESTS),
                    wire::error_body(w, fail),
                )
            } else {
                let req: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let tools = wire::tools(w, &req);
                let d = brain::decide(&tools, &wire::steps(w, &req));
                let n = s.n.fetch_add(1, Ordering::SeqCst);
                let model = req["model"].as_str().map(str::to_string).unwrap_or_else(|| {
                    path.split('/')
                        .nth(3)
                        .unwrap_or("fake")
                        .split(':')
                        .next()
                        .unwrap_or("fake")
                        .to_string()
                });
                let streamed = w != Wire::Gemini || path.ends_with(":streamGenerateContent");
                let r = if streamed {
                    sse_reply(wire::stream(w, &model, &d, n))
                } else {
                    json_reply(StatusCode::OK, wire::gemini_response(&model, &d))
                };
                rec.decision = Some((tools, d));
                r
            }
        }
        _ if path.ends_with("/count_tokens") => json_reply(StatusCode::OK, json!({"input_tokens": 100})),
        _ if path.ends_with(":countTokens") => json_reply(StatusCode::OK, json!({"totalTokens": 100})),
        _ if path.ends_with("/models") => {
            json_reply(StatusCode::OK, json!({"object": "list", "data": [], "models": []}))
        }
        (_, "HEAD" | "GET") if path == "/" => StatusCode::OK.into_response(),
        _ => {
            rec.known = false;
            eprintln!("fake-model: unknown request {method} {uri}");
            json_reply(
                StatusCode::NOT_FOUND,
                json!({"error": {"message": format!("fake model: no route {method} {path}")}}),
            )
        }
    };
    s.requests.lock().unwrap().push(rec);
    reply
}
