//! Demo mode: the embedded simulator plus real fake-agent child processes, so the whole product runs with
//! no PM server installed.
use crate::config::Settings;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub agents: usize,
    pub projects: usize,
    pub items: usize,
    /// How long each fake agent run works.
    pub work_ms: u64,
    /// Where the demo keeps its socket, project dirs and logs.
    pub dir: PathBuf,
    /// Command that runs the fake agent: program + leading args (e.g. the current exe + `--fake-agent`,
    /// or the `fake-agent` binary).
    pub fake_agent: Vec<String>,
}

/// A running demo: the simulator plus settings that point the engine at it.
/// Demo passkeys are `demo-<agent_id>`; `passkeys()` lists them so callers can seed a store.
pub struct Demo {
    pub sim: pm_sim::Simulator,
    /// Settings for the engine: server = the simulator socket, provider `fake` for every agent,
    /// log dir under `dir`.
    pub settings: Settings,
}

impl Demo {
    pub async fn start(opts: DemoOptions) -> anyhow::Result<Demo> {
        let _ = opts;
        anyhow::bail!("demo not implemented yet")
    }
    /// (agent_id, passkey) for every demo agent.
    pub fn passkeys(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    pub fn coordinator_token(&self) -> String {
        String::new()
    }
}
