//! Typed results of the coordinator tools. Parsing is lenient where the server is (missing `success` = true,
//! camelCase fallbacks) and strict where safety needs it (ids are validated by the supervisor).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub agent_count: Option<u64>,
    pub project_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectInfo {
    pub project_id: String,
    pub project_name: String,
    /// May be empty (then the coordinator refuses to spawn for this project and says why).
    pub working_directory: String,
    pub agents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentAction {
    pub action: ServerAction,
    pub reason: Option<String>,
    pub task_id: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub kick_command: Option<String>,
}

/// What `get_agent_action` tells us to do with a pair. Anything unknown is kept verbatim and treated as hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[derive(Default)]
pub enum ServerAction {
    Start,
    Stop,
    Restart,
    #[default]
    Hold,
    Unknown(String),
}

impl ServerAction {
    pub fn as_str(&self) -> &str {
        match self {
            ServerAction::Start => "start",
            ServerAction::Stop => "stop",
            ServerAction::Restart => "restart",
            ServerAction::Hold => "hold",
            ServerAction::Unknown(s) => s,
        }
    }

    /// Whether the supervisor has to decide something (start, stop); hold, restart (documented as future,
    /// ignored upstream) and unknown are no-ops.
    pub fn needs_decision(&self) -> bool {
        matches!(self, ServerAction::Start | ServerAction::Stop)
    }
}

impl From<String> for ServerAction {
    fn from(s: String) -> ServerAction {
        match s.as_str() {
            "start" => ServerAction::Start,
            "stop" => ServerAction::Stop,
            "restart" => ServerAction::Restart,
            "hold" => ServerAction::Hold,
            _ => ServerAction::Unknown(s),
        }
    }
}

impl From<ServerAction> for String {
    fn from(a: ServerAction) -> String {
        a.as_str().to_string()
    }
}

impl std::fmt::Display for ServerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ServerAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for ServerAction {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub directory_name: String,
    pub archive_base64: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AgentProfile {
    pub id: String,
    pub name: String,
    pub system_prompt: String,
    pub skills: Vec<Skill>,
}

/// The answer to `register_execution_log_file`; the id is what a log upload needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRegistration {
    pub success: bool,
    pub execution_log_id: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AppSettings {
    pub agent_base_prompt: Option<String>,
}

/// `GET /api/coordinator/config` (protocol doc §4.3). Passkeys go straight into the secret store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteConfig {
    pub server_url: Option<String>,
    pub root_agent_id: Option<String>,
    pub polling_interval: Option<u64>,
    pub max_concurrent: Option<usize>,
    /// agent id → passkey (None when the server has none).
    pub agents: Vec<(String, Option<String>)>,
    /// provider name → (command, args)
    pub ai_providers: Vec<(String, String, Vec<String>)>,
    pub agent_base_prompt: Option<String>,
}

/// Fields of a log upload (protocol doc §4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct LogUploadRequest {
    pub execution_log_id: String,
    pub agent_id: String,
    pub task_id: String,
    pub project_id: String,
    pub file: std::path::PathBuf,
}
