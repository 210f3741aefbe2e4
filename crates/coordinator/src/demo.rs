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
    /// Keep going (refilled work, long streaming runs, a failing agent and one on a quota); None = the
    /// bounded workload, all of it succeeding (scripts and benchmarks).
    pub continuous: Option<Continuous>,
}

/// The continuous demo's knobs.
#[derive(Debug, Clone)]
pub struct Continuous {
    /// Each run works between these many milliseconds (drawn per run).
    pub run_ms: (u64, u64),
    /// The first runs (one per pair) are this short instead, so the Runs and Usage pages fill in within
    /// seconds of the demo's start.
    pub first_runs_ms: Option<(u64, u64)>,
    /// Seeds the run lengths (a seed replays a demo).
    pub seed: u64,
    /// The quota agent's limit resets this long after it is hit.
    pub quota_reset_secs: u64,
    /// First cooldown after a failure (doubling per failure in a row), short so the failing agent reaches
    /// "failed 3 runs in a row" within a minute.
    pub failure_cooldown_secs: u64,
}

impl Continuous {
    /// The app's demo: runs of 20-60 s (the first of each pair 5-10 s), a quota that resets in 3 minutes,
    /// failures retried after 5 s.
    pub fn app(seed: u64) -> Continuous {
        Continuous {
            run_ms: (20_000, 60_000),
            first_runs_ms: Some((5_000, 10_000)),
            seed,
            quota_reset_secs: 180,
            failure_cooldown_secs: 5,
        }
    }
}

/// Which demo agents misbehave on purpose (continuous demo with at least 3 agents): the second fails, the
/// last hits a quota.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roles {
    /// Fails every run with a real error line.
    pub failing: Option<String>,
    /// Hits its provider's usage limit every run (it runs on its own provider account).
    pub quota: Option<String>,
}

/// The failing agent's error line (what `exit::extract_error` finds in its log).
pub const DEMO_FAILURE: &str = "Error: tests failed after the change: 2 failed in tests/parser.rs (exit status 101)";

/// A seed that differs per run.
pub fn random_seed() -> u64 {
    rand::random()
}

/// A running demo: the simulator plus settings that point the engine at it.
pub struct Demo {
    pub sim: pm_sim::Simulator,
    /// Settings for the engine: server = the simulator socket, provider `fake` for every agent,
    /// log dir under `dir`.
    pub settings: Settings,
    pub roles: Roles,
}

/// Name of the demo's provider (a custom provider running the fake agent).
pub const DEMO_PROVIDER: &str = "fake";
/// The same fake agent as a second account: the quota agent's, so its limit holds only itself.
pub const DEMO_PROVIDER_2: &str = "fake-2";

impl Demo {
    pub async fn start(opts: DemoOptions) -> anyhow::Result<Demo> {
        anyhow::ensure!(
            opts.agents > 0 && opts.projects > 0,
            "the demo needs at least one agent and one project"
        );
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
        cfg.passkeys = (1..=opts.agents)
            .map(|i| (format!("agt_{i:02}"), format!("demo-agt_{i:02}")))
            .collect();
        let sim = pm_sim::Simulator::start(cfg).await?;
        let mut settings = Settings {
            server: Some(socket.display().to_string()),
            log_dir: Some(opts.dir.join("logs")),
            demo: true,
            ..Settings::default()
        };
        let provider = ProviderSettings {
            command: opts.fake_agent[0].clone(),
            // Claude-style stream-json output, so the demo's runs become real records (tokens, cost, turns).
            args: opts.fake_agent[1..]
                .iter()
                .cloned()
                .chain([
                    "--work-ms".to_string(),
                    opts.work_ms.to_string(),
                    "--output-format".to_string(),
                    "stream-json".to_string(),
                ])
                .collect(),
            model: None,
            kind: Some("custom".to_string()),
        };
        settings.providers.insert(DEMO_PROVIDER.to_string(), provider.clone());
        let ids = sim.agent_ids();
        for id in &ids {
            settings.agents.insert(
                id.clone(),
                AgentSettings {
                    enabled: true,
                    provider: Some(DEMO_PROVIDER.to_string()),
                    ..AgentSettings::default()
                },
            );
        }
        let mut roles = Roles::default();
        if let Some(c) = &opts.continuous {
            let warmup = c.first_runs_ms.map(|r| (opts.agents * opts.projects, r));
            sim.set_refill(Some(pm_sim::Refill {
                items: 1,
                run_ms: c.run_ms,
                seed: c.seed,
                warmup,
            }));
            settings.error_protection.default_cooldown_secs = c.failure_cooldown_secs;
            if ids.len() >= 3 {
                // The second agent fails, the last one hits a quota (with 4 agents the third is a plain one).
                let (failing, quota) = (ids[1].clone(), ids[ids.len() - 1].clone());
                sim.set_agent_behavior(
                    &failing,
                    pm_sim::AgentBehavior::Fail {
                        message: DEMO_FAILURE.to_string(),
                    },
                );
                sim.set_agent_behavior(
                    &quota,
                    pm_sim::AgentBehavior::QuotaResetsIn {
                        secs: c.quota_reset_secs,
                    },
                );
                settings.providers.insert(DEMO_PROVIDER_2.to_string(), provider);
                if let Some(a) = settings.agents.get_mut(&quota) {
                    a.provider = Some(DEMO_PROVIDER_2.to_string());
                }
                roles = Roles {
                    failing: Some(failing),
                    quota: Some(quota),
                };
            }
        }
        Ok(Demo { sim, settings, roles })
    }

    /// (agent_id, passkey) for every demo agent.
    pub fn passkeys(&self) -> Vec<(String, String)> {
        self.sim
            .agent_ids()
            .into_iter()
            .map(|id| {
                let pk = self.sim.passkey(&id);
                (id, pk)
            })
            .collect()
    }

    pub fn coordinator_token(&self) -> String {
        self.sim.coordinator_token()
    }
}
