//! Client of the AI Agent PM server (protocol: ../shared/docs/pm-protocol.md).
//!
//! `transport` moves JSON-RPC envelopes (Unix socket JSON lines, or HTTP POST with a Bearer token);
//! `client` adds the coordinator token, unwraps `result.content[0].text`, and offers typed tool calls;
//! `rest` holds the two coordinator REST endpoints (log upload, dynamic config).

pub mod client;
pub mod rest;
pub mod transport;
pub mod types;
pub mod wire;

pub use client::PmClient;
pub use types::*;
pub use wire::Reply;

use std::time::Duration;

/// Every failure names the tool (or endpoint) and says why.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PmError {
    /// Could not connect, or the connection broke before a full reply: the server is unreachable.
    #[error("{tool}: cannot reach the PM server at {address}: {message}")]
    Unreachable {
        tool: String,
        address: String,
        message: String,
    },
    #[error("{tool}: no reply from the PM server within {}s", .after.as_secs_f64())]
    Timeout { tool: String, after: Duration },
    /// HTTP status other than 200 (401 = wrong or missing coordinator token).
    #[error("{tool}: HTTP {status}: {body}")]
    Http { tool: String, status: u16, body: String },
    /// JSON-RPC `error` member.
    #[error("{tool}: server error {code}: {message}")]
    Rpc { tool: String, code: i64, message: String },
    /// `result.isError` true: the tool itself failed (e.g. "Error: Invalid coordinator token ...").
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    /// The reply could not be understood (malformed JSON, missing required fields, oversized).
    #[error("{tool}: bad reply from the PM server: {message}")]
    Protocol { tool: String, message: String },
}

impl PmError {
    /// True when the server itself could not be reached or did not answer (as opposed to answering "no").
    pub fn is_unreachable(&self) -> bool {
        matches!(self, PmError::Unreachable { .. } | PmError::Timeout { .. })
    }

    /// True when the fault is the server's (unreachable, silent, garbage, 5xx) rather than an answer about
    /// this particular call: the whole cycle should back off, not just this pair.
    pub fn is_server_fault(&self) -> bool {
        match self {
            PmError::Unreachable { .. } | PmError::Timeout { .. } | PmError::Protocol { .. } => true,
            PmError::Http { status, .. } => *status >= 500,
            PmError::Rpc { code, .. } => *code == -32700 || *code == -32603,
            PmError::Tool { .. } => false,
        }
    }

    /// True when the server says it does not know the tool (e.g. `invalidate_session` on a current server,
    /// `report_process_exit` on a 0.1.x-era one).
    pub fn is_unknown_tool(&self) -> bool {
        match self {
            PmError::Tool { message, .. } => {
                message.contains("not registered")
                    || message.contains("Unknown tool")
                    || message.contains("Tool not found")
            }
            PmError::Rpc { code, .. } => *code == -32601,
            _ => false,
        }
    }

    /// True when the coordinator token was refused.
    pub fn is_auth(&self) -> bool {
        match self {
            PmError::Http { status, .. } => *status == 401,
            PmError::Tool { message, .. } => {
                message.starts_with("Authorization Error") || message.contains("Invalid coordinator token")
            }
            _ => false,
        }
    }
}
