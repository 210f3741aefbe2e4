//! `agentpm-sim`: run the PM server simulator on its own (for trying real CLIs or the Python coordinator).
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "agentpm-sim", version, about = "Simulator of the AI Agent PM server (coordinator protocol)")]
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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Serve { socket, http, agents, projects, items, legacy, work_root, secrets_out } = Cli::parse().cmd;
    anyhow::ensure!(socket.is_some() || http.is_some(), "give --socket PATH and/or --http ADDR");
    let workload = pm_sim::Workload { projects, agents, items_per_pair: items, provider: "claude".into(), model: None };
    let mut cfg = pm_sim::SimConfig::new(workload, work_root);
    cfg.socket_path = socket;
    cfg.http_addr = http;
    if legacy {
        cfg.exit_tool = pm_sim::ExitTool::Legacy;
    }
    let sim = pm_sim::Simulator::start(cfg).await?;
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
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        f.write_all(serde_json::to_string_pretty(&body)?.as_bytes())?;
        println!("token and passkeys written to {} (mode 0600)", path.display());
    }
    println!("agents: {}; projects: {}; Ctrl-C to stop", sim.agent_ids().join(", "), sim.project_ids().join(", "));
    tokio::signal::ctrl_c().await?;
    let s = sim.stats();
    println!("completed {} items, {} remaining, {} start answers, {} violations", s.completed_items, s.remaining_items, s.start_answers, sim.violations().len());
    sim.shutdown().await;
    Ok(())
}
