//! Coordinator REST endpoints (protocol doc §4): log upload (multipart) and dynamic configuration.

use super::{LogUploadRequest, PmError, RemoteConfig};
use serde_json::Value;
use std::time::Duration;

/// The upload reply is a few fields; the dynamic config a few agents and providers.
const UPLOAD_REPLY_CAP: usize = 64 * 1024;
const CONFIG_REPLY_CAP: usize = 1024 * 1024;

fn client(timeout: Duration) -> Result<reqwest::Client, PmError> {
    super::transport::http_client(Some(timeout)).map_err(|e| PmError::Protocol {
        tool: "http".into(),
        message: e.to_string(),
    })
}

/// The body as JSON, refused past `cap` bytes; a redirect is an error (never followed: the token rides along).
async fn capped_json(resp: reqwest::Response, tool: &str, base: &str, cap: usize) -> Result<(u16, Value), PmError> {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        return Err(PmError::Http {
            tool: tool.into(),
            status,
            body: "redirect refused: set the final URL as the server address".into(),
        });
    }
    let bytes = super::transport::read_limited(resp, tool, base, cap).await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, body))
}

fn http_err(tool: &str, base: &str, e: reqwest::Error) -> PmError {
    if e.is_timeout() {
        PmError::Timeout {
            tool: tool.into(),
            after: Duration::ZERO,
        }
    } else {
        PmError::Unreachable {
            tool: tool.into(),
            address: base.into(),
            message: e.without_url().to_string(),
        }
    }
}

/// `POST {base}/api/v1/execution-logs/upload`; returns the server's `log_file_path`.
pub async fn upload_log(
    base_url: &str,
    token: &str,
    req: &LogUploadRequest,
    max_bytes: u64,
    timeout: Duration,
) -> Result<String, PmError> {
    let tool = "log upload";
    let meta = tokio::fs::metadata(&req.file).await.map_err(|e| PmError::Protocol {
        tool: tool.into(),
        message: format!("{}: {e}", req.file.display()),
    })?;
    if max_bytes > 0 && meta.len() > max_bytes {
        return Err(PmError::Protocol {
            tool: tool.into(),
            message: format!(
                "{} is {} bytes, over the {max_bytes}-byte limit",
                req.file.display(),
                meta.len()
            ),
        });
    }
    let bytes = tokio::fs::read(&req.file).await.map_err(|e| PmError::Protocol {
        tool: tool.into(),
        message: e.to_string(),
    })?;
    let name = req
        .file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("execution.log")
        .to_string();
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.clone())
        .mime_str("text/plain")
        .map_err(|e| PmError::Protocol {
            tool: tool.into(),
            message: e.to_string(),
        })?;
    let form = reqwest::multipart::Form::new()
        .text("execution_log_id", req.execution_log_id.clone())
        .text("agent_id", req.agent_id.clone())
        .text("task_id", req.task_id.clone())
        .text("project_id", req.project_id.clone())
        .part("log_file", part)
        .text("original_filename", name);
    let url = format!("{}/api/v1/execution-logs/upload", base_url.trim_end_matches('/'));
    let resp = client(timeout)?
        .post(&url)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .map_err(|e| http_err(tool, base_url, e))?;
    let (status, body) = capped_json(resp, tool, base_url, UPLOAD_REPLY_CAP).await?;
    if status != 200 || body.get("success").and_then(Value::as_bool) != Some(true) {
        let msg = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        return Err(PmError::Http {
            tool: tool.into(),
            status,
            body: crate::redact::global().redact(&msg),
        });
    }
    Ok(body
        .get("log_file_path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string())
}

/// `GET {base}/api/coordinator/config[?root_agent_id=…]`.
pub async fn fetch_remote_config(
    base_url: &str,
    token: &str,
    root_agent_id: Option<&str>,
    timeout: Duration,
) -> Result<RemoteConfig, PmError> {
    let tool = "coordinator config";
    let url = format!("{}/api/coordinator/config", base_url.trim_end_matches('/'));
    let mut req = client(timeout)?.get(&url).bearer_auth(token);
    if let Some(r) = root_agent_id {
        req = req.query(&[("root_agent_id", r)]);
    }
    let resp = req.send().await.map_err(|e| http_err(tool, base_url, e))?;
    let (status, body) = capped_json(resp, tool, base_url, CONFIG_REPLY_CAP).await?;
    if status == 200 && !body.is_object() {
        return Err(PmError::Protocol {
            tool: tool.into(),
            message: "reply is not a JSON object".into(),
        });
    }
    if status != 200 {
        let msg = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        return Err(PmError::Http {
            tool: tool.into(),
            status,
            body: msg,
        });
    }
    Ok(parse_remote_config(&body))
}

pub fn parse_remote_config(v: &Value) -> RemoteConfig {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let agents = v
        .get("agents")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(id, a)| (id.clone(), a.get("passkey").and_then(Value::as_str).map(str::to_string)))
                .collect()
        })
        .unwrap_or_default();
    let ai_providers = v
        .get("ai_providers")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(name, p)| {
                    let cmd = p.get("cli_command").and_then(Value::as_str)?.to_string();
                    let args = match p.get("cli_args") {
                        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
                        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                        _ => Vec::new(),
                    };
                    Some((name.clone(), cmd, args))
                })
                .collect()
        })
        .unwrap_or_default();
    RemoteConfig {
        server_url: s("server_url"),
        root_agent_id: s("root_agent_id"),
        polling_interval: v.get("polling_interval").and_then(Value::as_u64),
        max_concurrent: v.get("max_concurrent").and_then(Value::as_u64).map(|m| m as usize),
        agents,
        ai_providers,
        agent_base_prompt: s("agent_base_prompt"),
    }
}
