//! Demo mode: the embedded simulator plus real fake-agent child processes, so the whole product runs with
//! no PM server installed.
use crate::config::{AgentSettings, ProviderSettings, Settings};
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
pub struct Demo {
    pub sim: pm_sim::Simulator,
    /// Settings for the engine: server = the simulator socket, provider `fake` for every agent,
    /// log dir under `dir`.
    pub settings: Settings,
}

/// Name of the demo's provider (a custom provider running the fake agent).
pub const DEMO_PROVIDER: &str = "fake";

impl Demo {
    pub async fn start(opts: DemoOptions) -> anyhow::Result<Demo> {
        anyhow::ensure!(opts.agents > 0 && opts.projects > 0, "the demo needs at least one agent and one project");
        anyhow::ensure!(!opts.fake_agent.is_empty(), "no fake agent command given");
        std::fs::create_dir_all(&opts.dir)?;
        let socket = opts.dir.join("mcp.sock");
        let workload = pm_sim::Workload {
            projects: opts.projects,
            agents: opts.agents,
            items_per_pair: opts.items,
            provider: DEMO_PROVIDER.to_string(),
            model: Some("fake-model-1".to_string()),
        };
        let mut cfg = pm_sim::SimConfig::new(workload, opts.dir.join("projects"));
        cfg.socket_path = Some(socket.clone());
        // Predictable demo passkeys, so a user can try "Set passkey" in the app.
        cfg.passkeys = (1..=opts.agents).map(|i| (format!("agt_{i:02}"), format!("demo-agt_{i:02}"))).collect();
        let sim = pm_sim::Simulator::start(cfg).await?;
        let mut settings = Settings { server: Some(socket.display().to_string()), log_dir: Some(opts.dir.join("logs")), demo: true, ..Settings::default() };
        settings.providers.insert(
            DEMO_PROVIDER.to_string(),
            ProviderSettings {
                command: opts.fake_agent[0].clone(),
                // Claude-style stream-json output, so the demo's runs become real records (tokens, cost, turns).
                args: opts.fake_agent[1..].iter().cloned().chain(["--work-ms".to_string(), opts.work_ms.to_string(), "--output-format".to_string(), "stream-json".to_string()]).collect(),
                model: None,
                kind: Some("custom".to_string()),
            },
        );
        for id in sim.agent_ids() {
            settings.agents.insert(id, AgentSettings { enabled: true, provider: Some(DEMO_PROVIDER.to_string()), ..AgentSettings::default() });
        }
        Ok(Demo { sim, settings })
    }

    /// (agent_id, passkey) for every demo agent.
    pub fn passkeys(&self) -> Vec<(String, String)> {
        self.sim.agent_ids().into_iter().map(|id| {
            let pk = self.sim.passkey(&id);
            (id, pk)
        }).collect()
    }

    pub fn coordinator_token(&self) -> String {
        self.sim.coordinator_token()
    }
}
