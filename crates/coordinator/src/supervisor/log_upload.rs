//! A finished run's log: registered with the server (its local path), and uploaded when enabled.

use super::remote_config::rest_base;
use super::Supervisor;
use crate::api::*;
use crate::pm::PmClient;
use std::path::Path;
use std::time::Duration;

/// Where and how to upload logs (protocol doc §4.2), when enabled.
#[derive(Clone)]
pub(super) struct UploadTarget {
    base_url: String,
    token: String,
    max_bytes: u64,
    retries: u32,
    delay: Duration,
}

/// `register_execution_log_file`, returning the server's execution log id (needed for an upload).
pub(super) async fn register_log(client: &PmClient, agent: &str, task: &str, path: &Path) -> Option<String> {
    match client
        .register_execution_log_file(agent, task, &path.display().to_string())
        .await
    {
        Ok(r) if r.success => r.execution_log_id,
        Ok(r) => {
            tracing::debug!(
                agent,
                task,
                "log not registered: {}",
                r.error.as_deref().unwrap_or("no execution log")
            );
            None
        }
        Err(e) => {
            tracing::debug!("register_execution_log_file: {e}");
            None
        }
    }
}

/// Upload with retries and exponential backoff; on final failure the registered local path stays.
pub(super) async fn upload_log(t: UploadTarget, execution_log_id: String, info: InstanceInfo) {
    let req = crate::pm::LogUploadRequest {
        execution_log_id,
        agent_id: info.agent_id.clone(),
        task_id: info.task_id.clone().unwrap_or_default(),
        project_id: info.project_id.clone(),
        file: info.log_path.clone(),
    };
    let mut delay = t.delay;
    for attempt in 1..=t.retries.max(1) {
        match crate::pm::rest::upload_log(&t.base_url, &t.token, &req, t.max_bytes, Duration::from_secs(60)).await {
            Ok(path) => {
                tracing::info!(agent = %info.agent_id, "log uploaded to the server ({path})");
                return;
            }
            Err(e) => {
                tracing::warn!(agent = %info.agent_id, attempt, "log upload failed: {e}");
                if attempt < t.retries {
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                }
            }
        }
    }
    tracing::warn!(agent = %info.agent_id, "log upload gave up; the server keeps the local path {}", info.log_path.display());
}

impl Supervisor {
    pub(super) fn upload_target(&self) -> Option<UploadTarget> {
        let u = &self.settings.log_upload;
        if !u.enabled {
            return None;
        }
        let base = u
            .server_url
            .clone()
            .or_else(|| rest_base(&self.settings.server_address()))?;
        Some(UploadTarget {
            base_url: base.trim_end_matches('/').to_string(),
            token: self.secrets.token.clone()?,
            max_bytes: u.max_file_size_mb * 1024 * 1024,
            retries: u.retry_count,
            delay: Duration::from_secs_f64(u.retry_delay_secs.max(0.0)),
        })
    }
}
