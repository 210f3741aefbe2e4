//! HTTP: `POST /mcp` with the Bearer check (protocol doc §1.4), the two coordinator REST endpoints (§4.2
//! log upload, §4.3 dynamic config) and `GET /health`.

use crate::model::Model;
use crate::types::UploadRecord;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

type Shared = Arc<Mutex<Model>>;

fn lock(m: &Shared) -> std::sync::MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn serve(addr: SocketAddr, model: Shared, mut stop: watch::Receiver<bool>) -> anyhow::Result<SocketAddr> {
    let app = Router::new()
        .route("/mcp", post(mcp).layer(DefaultBodyLimit::max(1024 * 1024)))
        .route(
            "/api/v1/execution-logs/upload",
            post(upload).layer(DefaultBodyLimit::max(15 * 1024 * 1024)),
        )
        .route("/api/coordinator/config", get(config))
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/sim/stats", get(stats))
        .with_state(model);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
    });
    Ok(local)
}

fn message(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({"message": msg}))).into_response()
}

/// Bearer check shared by every coordinator endpoint: the 401 message, if refused.
fn check_bearer(headers: &HeaderMap, token: &str) -> Result<(), &'static str> {
    let Some(h) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err("Authorization header required");
    };
    match h.strip_prefix("Bearer ") {
        Some(t) if t == token => Ok(()),
        Some(_) => Err("Invalid coordinator token"),
        None => Err("Authorization header required"),
    }
}

async fn mcp(State(m): State<Shared>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let token = lock(&m).token.clone();
    if let Err(r) = check_bearer(&headers, &token) {
        return message(StatusCode::UNAUTHORIZED, r);
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return Json(json!({"error": {"code": -32700, "message": "Parse error"}, "jsonrpc": "2.0"})).into_response();
    };
    let (reply, faults) = {
        let mut g = lock(&m);
        (g.handle(&req, "http"), g.faults.clone())
    };
    if faults.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.delay_ms)).await;
    }
    if faults.drop_replies {
        // Hold the request open until the client gives up.
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    if faults.garbage_replies {
        return (StatusCode::OK, "}{ not json").into_response();
    }
    match reply {
        Some(r) => Json(r).into_response(),
        None => Json(json!({"jsonrpc": "2.0", "result": {"acknowledged": true}})).into_response(),
    }
}

/// Keep only a plain file name: the real server trusts the client here (protocol doc §9.5); we do not.
fn safe_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        "execution.log".into()
    } else {
        cleaned
    }
}

async fn upload(State(m): State<Shared>, headers: HeaderMap, mut mp: Multipart) -> Response {
    let token = lock(&m).token.clone();
    if let Err(r) = check_bearer(&headers, &token) {
        return message(StatusCode::UNAUTHORIZED, r);
    }
    {
        let mut g = lock(&m);
        if g.faults.upload_failures > 0 {
            g.faults.upload_failures -= 1;
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed to save log file");
        }
    }
    let mut fields = BTreeMap::new();
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut content_type = None;
    while let Ok(Some(field)) = mp.next_field().await {
        let name = field.name().unwrap_or("").to_string();
        if name == "log_file" {
            let fname = field.file_name().map(str::to_string);
            content_type = field.content_type().map(str::to_string);
            match field.bytes().await {
                Ok(b) => file = Some((fname, b.to_vec())),
                Err(_) => return message(StatusCode::BAD_REQUEST, "Invalid multipart body"),
            }
        } else if let Ok(t) = field.text().await {
            fields.insert(name, t);
        }
    }
    let required = ["execution_log_id", "agent_id", "task_id", "project_id"];
    if required.iter().any(|k| !fields.contains_key(*k)) || file.is_none() {
        return message(
            StatusCode::BAD_REQUEST,
            "Missing required fields: execution_log_id, agent_id, task_id, project_id, log_file",
        );
    }
    let (fname, bytes) = file.unwrap();
    if bytes.len() > 10 * 1024 * 1024 {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "Log file exceeds maximum size (10MB). Actual: {:.2}MB",
                bytes.len() as f64 / 1048576.0
            ),
        );
    }
    let project = fields["project_id"].clone();
    let agent = fields["agent_id"].clone();
    let Some(dir) = lock(&m).project_dir(&project) else {
        return message(StatusCode::NOT_FOUND, "Project not found");
    };
    let name = safe_name(
        fields
            .get("original_filename")
            .map(String::as_str)
            .or(fname.as_deref())
            .unwrap_or("execution.log"),
    );
    let agent_dir = if agent.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        agent.clone()
    } else {
        "unknown".into()
    };
    let target = dir.join(".aiagent/logs").join(agent_dir).join(&name);
    if let Some(p) = target.parent() {
        let _ = std::fs::create_dir_all(p);
    }
    if std::fs::write(&target, &bytes).is_err() {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Failed to save log file");
    }
    let size = bytes.len();
    {
        let mut g = lock(&m);
        g.set_log_file_path(&fields["execution_log_id"], &target.display().to_string());
        g.uploads.push(UploadRecord {
            fields: fields.clone(),
            file_name: fname,
            bytes: size,
            stored_at: Some(target.clone()),
            content_type,
            data: bytes,
        });
    }
    Json(json!({"success": true, "execution_log_id": fields["execution_log_id"], "log_file_path": target.display().to_string(), "file_size": size})).into_response()
}

async fn config(State(m): State<Shared>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let (token, mut body) = {
        let mut g = lock(&m);
        g.remote_config_fetches += 1;
        (
            g.token.clone(),
            g.remote_config(q.get("root_agent_id").map(String::as_str)),
        )
    };
    if let Err(r) = check_bearer(&headers, &token) {
        return message(StatusCode::UNAUTHORIZED, r);
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    body["server_url"] = json!(format!("http://{host}"));
    Json(body).into_response()
}

/// Simulator-only: the counters (`SimStats`) for tests and benchmarks that run the simulator as a process.
async fn stats(State(m): State<Shared>, headers: HeaderMap) -> Response {
    let token = lock(&m).token.clone();
    if let Err(r) = check_bearer(&headers, &token) {
        return message(StatusCode::UNAUTHORIZED, r);
    }
    let (st, violations) = {
        let mut g = lock(&m);
        (
            g.stats(),
            g.violations
                .iter()
                .map(|v| format!("{:?}: {}", v.kind, v.detail))
                .collect::<Vec<_>>(),
        )
    };
    let mut v = serde_json::to_value(st).unwrap_or_default();
    v["violations"] = json!(violations);
    Json(v).into_response()
}
