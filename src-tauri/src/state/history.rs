//! The Runs and Usage pages: read the engine's run history (`runs.db`) with a read-only connection, off the
//! async runtime. A history that does not exist yet is an empty one.

use super::{AppCore, AppResult};
use crate::error::AppError;
use coordinator::runs::{RunFilter, RunReader, RunRecord, UsageBy, UsageRow};
use std::path::PathBuf;

/// At most this many runs per page load (the table shows the newest first).
const MAX_ROWS: usize = 2000;

impl AppCore {
    /// The history the running engine writes: the demo keeps its own.
    pub async fn runs_db(&self) -> PathBuf {
        self.settings_path.with_file_name(if self.is_demo().await {
            "demo-runs.db"
        } else {
            "runs.db"
        })
    }

    pub async fn run_history(&self, filter: RunFilter) -> AppResult<Vec<RunRecord>> {
        let path = self.runs_db().await;
        let filter = RunFilter {
            limit: Some(filter.limit.unwrap_or(MAX_ROWS).min(MAX_ROWS)),
            ..filter
        };
        blocking(move || {
            if path.exists() {
                RunReader::open(&path)?.query(&filter)
            } else {
                Ok(Vec::new())
            }
        })
        .await
    }

    pub async fn run_usage(&self, by: &str, since: Option<i64>) -> AppResult<Vec<UsageRow>> {
        let by = UsageBy::parse(by)
            .ok_or_else(|| AppError::Message(format!("usage by {by:?}: choose agent, provider or day")))?;
        let path = self.runs_db().await;
        blocking(move || {
            if path.exists() {
                RunReader::open(&path)?.usage(by, since)
            } else {
                Ok(Vec::new())
            }
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, coordinator::runs::StoreError> + Send + 'static,
) -> AppResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| AppError::Message(e.to_string())),
        Err(e) => Err(AppError::Message(format!("reading the run history failed: {e}"))),
    }
}
