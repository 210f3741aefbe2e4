//! Envelope transports: Unix socket (newline-delimited JSON, connections reused) and HTTP (keep-alive).
//! OWNER: pm helper. Contract below; implementation pending.

use super::PmError;
use serde_json::Value;
use std::time::Duration;

pub enum Transport {
    Unix { path: std::path::PathBuf },
    Http { url: String },
}

impl Transport {
    /// `http://` / `https://` → HTTP, anything else → a Unix socket path.
    pub fn for_address(address: &str, _bearer: Option<String>) -> Result<Transport, PmError> {
        let _ = address;
        todo!()
    }

    /// Send one JSON-RPC request object (with `id`) and return the full response envelope.
    pub async fn roundtrip(&self, tool: &str, request: Value, timeout: Duration) -> Result<Value, PmError> {
        let _ = (tool, request, timeout);
        todo!()
    }
}
