//! `agentpm-sim`: run the PM server simulator on its own (for trying real CLIs or the Python coordinator).
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "agentpm-sim",
    version,
    about = "Simulator of the AI Agent PM server (coordinator protocol)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve a scripted workload until Ctrl-C, then print what happened.
    Serve {
        #[arg(long)]
        socket: Option<PathBuf>,
        /// e.g. 127.0.0.1:8080 (port 0 picks one)
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        #[arg(long, default_value_t = 2)]
        agents: usize,
        #[arg(long, default_value_t = 1)]
        projects: usize,
        #[arg(long, default_value_t = 2)]
        items: usize,
        /// Serve as a 0.1.x-era server (only `invalidate_session`).
        #[arg(long)]
        legacy: bool,
        /// Where project working directories are created.
        #[arg(long, default_value = "./sim-projects")]
        work_root: PathBuf,
        /// Write the coordinator token and agent passkeys to this file (mode 0600), never to the terminal.
        #[arg(long)]
        secrets_out: Option<PathBuf>,
        /// The spawn lease in seconds (the real server: 120).
        #[arg(long, default_value_t = 120)]
        lease_secs: u64,
        /// Human agents (listed, with work, but no passkey).
        #[arg(long, default_value_t = 0)]
        humans: usize,
        /// A provider name for one agent, AGENT=NAME (repeatable; e.g. agt_01=openai).
        #[arg(long = "provider", value_parser = parse_pair)]
        providers: Vec<(String, String)>,
        /// Stop listening this many seconds after start (with --outage-for).
        #[arg(long)]
        outage_after: Option<f64>,
        /// Length of the outage in seconds.
        #[arg(long, default_value_t = 8.0)]
        outage_for: f64,
        /// On exit, write the counters (leases taken/cleared/expired, sessions, items) as JSON here.
        /// With --http they are also at GET /sim/stats (Bearer token).
        #[arg(long)]
        stats_out: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Serve {
        socket,
        http,
        agents,
        projects,
        items,
        legacy,
        work_root,
        secrets_out,
        lease_secs,
        humans,
        providers,
        outage_after,
        outage_for,
        stats_out,
    } = Cli::parse().cmd;
    anyhow::ensure!(
        socket.is_some() || http.is_some(),
        "give --socket PATH and/or --http ADDR"
    );
    let workload = pm_sim::Workload {
        projects,
        agents,
        items_per_pair: items,
        provider: "claude".into(),
        model: None,
    };
    let mut cfg = pm_sim::SimConfig::new(workload, work_root);
    cfg.socket_path = socket;
    cfg.http_addr = http;
    cfg.lease = std::time::Duration::from_secs(lease_secs);
    cfg.humans = humans;
    if legacy {
        cfg.exit_tool = pm_sim::ExitTool::Legacy;
    }
    let sim = pm_sim::Simulator::start(cfg).await?;
    for (a, p) in &providers {
        sim.set_agent_provider(a, p);
    }
    if let Some(after) = outage_after {
        sim.schedule_outage(
            std::time::Duration::from_secs_f64(after),
            std::time::Duration::from_secs_f64(outage_for),
        );
    }
    if let Some(p) = sim.socket_path() {
        println!("socket: {}", p.display());
    }
    if let Some(u) = sim.mcp_url() {
        println!("http:   {u}");
    }
    if let Some(path) = secrets_out {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let body = serde_json::json!({
            "coordinator_token": sim.coordinator_token(),
            "passkeys": sim.agent_ids().iter().map(|a| (a.clone(), sim.passkey(a))).collect::<std::collections::BTreeMap<_, _>>(),
        });
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(serde_json::to_string_pretty(&body)?.as_bytes())?;
        println!("token and passkeys written to {} (mode 0600)", path.display());
    }
    println!(
        "agents: {}; projects: {}; Ctrl-C to stop",
        sim.agent_ids().join(", "),
        sim.project_ids().join(", ")
    );
    tokio::signal::ctrl_c().await?;
    let s = sim.stats();
    println!(
        "completed {} items, {} remaining, {} start answers, {} violations",
        s.completed_items,
        s.remaining_items,
        s.start_answers,
        sim.violations().len()
    );
    println!(
        "leases: {} taken, {} cleared by authenticate, {} expired unused",
        s.leases_taken, s.leases_cleared_by_auth, s.leases_expired_unused
    );
    if let Some(path) = stats_out {
        std::fs::write(&path, serde_json::to_string_pretty(&s)?)?;
    }
    sim.shutdown().await;
    Ok(())
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or_else(|| format!("expected AGENT=NAME, got {s:?}"))
}
