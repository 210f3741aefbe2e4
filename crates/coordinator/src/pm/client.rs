//! Typed coordinator tool calls on top of a transport.
//! OWNER: pm helper. Contract below; implementation pending.

use super::*;
use serde_json::{Map, Value};
use std::time::Duration;

pub struct PmClient {
    address: String,
}

impl PmClient {
    /// `token` is the coordinator token (added to every call's arguments and, over HTTP, as Bearer).
    pub fn new(address: &str, token: Option<String>, timeout: Duration) -> Result<PmClient, PmError> {
        let _ = (token, timeout);
        Ok(PmClient { address: address.to_string() })
    }
    pub fn address(&self) -> &str {
        &self.address
    }
    /// Raw tool call: adds `coordinator_token`, unwraps `result.content[0].text` JSON.
    pub async fn call(&self, tool: &str, args: Map<String, Value>) -> Result<Value, PmError> {
        let _ = (tool, args);
        todo!()
    }
    pub async fn health_check(&self) -> Result<Health, PmError> {
        todo!()
    }
    pub async fn list_active_projects_with_agents(&self, root_agent_id: Option<&str>) -> Result<Vec<ProjectInfo>, PmError> {
        let _ = root_agent_id;
        todo!()
    }
    pub async fn get_agent_action(&self, agent_id: &str, project_id: &str) -> Result<AgentAction, PmError> {
        let _ = (agent_id, project_id);
        todo!()
    }
    /// Returns the server's `success`.
    pub async fn register_execution_log_file(&self, agent_id: &str, task_id: &str, log_file_path: &str) -> Result<bool, PmError> {
        let _ = (agent_id, task_id, log_file_path);
        todo!()
    }
    pub async fn report_agent_error(&self, agent_id: &str, project_id: &str, error_message: &str) -> Result<(), PmError> {
        let _ = (agent_id, project_id, error_message);
        todo!()
    }
    pub async fn report_process_exit(&self, agent_id: &str, project_id: &str, remaining_processes: u64) -> Result<(), PmError> {
        let _ = (agent_id, project_id, remaining_processes);
        todo!()
    }
    pub async fn invalidate_session(&self, agent_id: &str, project_id: &str) -> Result<(), PmError> {
        let _ = (agent_id, project_id);
        todo!()
    }
    pub async fn get_subordinate_profile(&self, agent_id: &str) -> Result<AgentProfile, PmError> {
        let _ = agent_id;
        todo!()
    }
    pub async fn get_app_settings(&self) -> Result<AppSettings, PmError> {
        todo!()
    }
}
