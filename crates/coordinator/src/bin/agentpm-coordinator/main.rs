//! `agentpm-coordinator`: the headless CLI (run, demo, doctor, passkeys, token, import).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use coordinator::api::{Event, Snapshot};
use coordinator::config::Settings;
use coordinator::engine::{Engine, EngineConfig};
use coordinator::secrets::{self, SecretStore, SharedStore};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod config;
mod credentials;
mod demo;
mod doctor;
mod history;
mod run;
mod status;
mod view;

use config::*;
use credentials::*;
use demo::*;
use doctor::*;
use history::*;
use run::*;
use status::*;
use view::*;

/// Exit code for bad configuration (file, field and value are named in the message).
pub(crate) const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "agentpm-coordinator",
    version,
    about = "Runs AI Agent PM's coordinator: launches AI coding agents as the PM server asks"
)]
struct Cli {
    /// Print JSON lines (snapshots and events) instead of the human status line.
    #[arg(long, global = true)]
    json: bool,
    /// More logging (also passes debug flags to providers in `run`).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Coordinate agents against the configured PM server until Ctrl-C / SIGTERM.
    Run {
        /// settings.json (default: the standard location) or the Python coordinator's YAML.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// What the running coordinator (of this config) is doing, and what needs you. Exit 0: nothing needs you,
    /// 1: something does, 3: no coordinator runs. `--json` prints its snapshot.
    Status {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run a self-contained demo: the built-in PM server simulator and real fake-agent processes.
    Demo {
        #[arg(long, default_value_t = 3)]
        agents: usize,
        #[arg(long, default_value_t = 2)]
        projects: usize,
        #[arg(long, default_value_t = 2)]
        items: usize,
        /// How long each fake agent works, in milliseconds.
        #[arg(long, default_value_t = 300)]
        work_ms: u64,
        #[arg(long, default_value_t = 3)]
        max_concurrent: usize,
        #[arg(long, default_value_t = 1)]
        polling_interval: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Keep the demo's files (socket, project dirs, logs) in this directory instead of a temp dir.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep going until --timeout or Ctrl-C: work is refilled, runs stream for --run-secs, one agent fails
        /// every run and one hits a quota (needs 3 agents or more).
        #[arg(long)]
        continuous: bool,
        /// Continuous: each run lasts between these many seconds, e.g. 20-60 (drawn per run).
        #[arg(long, default_value = "20-60", value_name = "MIN-MAX")]
        run_secs: String,
        /// Continuous: seed of the run lengths (default: a new one per demo; printed in the summary).
        #[arg(long)]
        seed: Option<u64>,
        /// Continuous: the quota agent's limit resets this many seconds after it is hit.
        #[arg(long, default_value_t = 180)]
        quota_reset_secs: u64,
        /// Continuous: first cooldown after a failed run, doubling per failure in a row.
        #[arg(long, default_value_t = 5)]
        cooldown_secs: u64,
    },
    /// Check the setup: server reachable, provider CLIs found, passkeys present, directories writable.
    Doctor {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage agent passkeys in the secret store (Keychain on macOS). Values are never printed.
    Passkey {
        #[command(subcommand)]
        cmd: PasskeyCmd,
    },
    /// Manage the coordinator token in the secret store.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Move the Python coordinator's YAML (passkeys, token, agents, providers) into the secret store and settings.json.
    ImportYaml {
        file: PathBuf,
        /// Rewrite the YAML without secrets, once every secret is in the store and the rewritten file re-parses.
        #[arg(long)]
        scrub: bool,
        /// With --scrub: first keep a byte-exact copy of the original as `<file>.bak` (mode 0600). It holds the
        /// passkeys in plain text; the command says where it is and how to delete it.
        #[arg(long, requires = "scrub")]
        keep_backup: bool,
        /// Replace passkeys that are already stored with a different value.
        #[arg(long)]
        overwrite: bool,
    },
    /// Print where settings, state, logs and the default socket live.
    Paths,
    /// The run history: one line per agent run (newest first), from runs.db; no engine needed.
    Runs {
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        project: Option<String>,
        /// Only runs started within this time (30m, 12h, 1d, 2w) or since a date (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only runs that failed or were interrupted.
        #[arg(long)]
        failed: bool,
        /// At most this many runs (the table shows the newest 50 unless given; --json gives all).
        #[arg(long)]
        limit: Option<usize>,
        /// runs.db to read (default: the standard location).
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Runs, failures, tokens and cost summed by agent, provider or day (UTC), from runs.db.
    Usage {
        #[arg(long, default_value = "agent", value_parser = ["agent", "provider", "day"])]
        by: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PasskeyCmd {
    /// Store an agent's passkey (read from a no-echo prompt, or from stdin when piped; never from argv).
    Set {
        agent_id: String,
    },
    Delete {
        agent_id: String,
    },
    /// Agent ids and whether a passkey is present.
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Store the coordinator token (no-echo prompt, or stdin when piped).
    Set,
    Delete,
}

fn main() -> ExitCode {
    // The demo re-executes this binary as a fake agent: no extra binary to ship.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fake-agent") {
        return ExitCode::from(pm_sim::fake_agent::run(args[2..].to_vec()).clamp(0, 255) as u8);
    }
    // Agents' `agent-pm` MCP server (stdio); hidden from --help: only MCP configs we write name it.
    if args.get(1).map(String::as_str) == Some("mcp-bridge") {
        return ExitCode::from(coordinator::mcp_bridge::run() as u8);
    }
    let cli = Cli::parse();
    // The demo shows its own progress line: keep the engine's log to warnings there.
    let level = match (&cli.cmd, cli.verbose) {
        (_, true) => "debug",
        (Cmd::Demo { .. }, false) => "warn",
        _ => "info",
    };
    coordinator::redact::init_tracing_at(level, cli.json);
    // One worker: the engine is I/O-bound and its blocking work (files, keyring, zip) runs on the blocking
    // pool. Measured: a 1,000-pair cycle takes 15 ms with one worker vs 20 ms with two (work stealing
    // moves every reply's wake-up to the other core) and half the CPU.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            let msg = coordinator::redact::global().redact(&format!("{e:#}"));
            eprintln!("error: {msg}");
            let is_config = e
                .chain()
                .any(|c| c.downcast_ref::<coordinator::config::ConfigError>().is_some());
            if is_config {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Run { config } => run(config, cli.json, cli.verbose).await,
        Cmd::Status { config } => status(config, cli.json),
        Cmd::Demo {
            agents,
            projects,
            items,
            work_ms,
            max_concurrent,
            polling_interval,
            timeout,
            dir,
            continuous,
            run_secs,
            seed,
            quota_reset_secs,
            cooldown_secs,
        } => {
            let continuous = match continuous {
                true => Some(coordinator::demo::Continuous {
                    run_ms: parse_run_secs(&run_secs)?,
                    first_runs_ms: None,
                    seed: seed.unwrap_or_else(coordinator::demo::random_seed),
                    quota_reset_secs,
                    failure_cooldown_secs: cooldown_secs,
                }),
                false => None,
            };
            demo(
                DemoArgs {
                    agents,
                    projects,
                    items,
                    work_ms,
                    max_concurrent,
                    polling_interval,
                    timeout,
                    dir,
                    continuous,
                },
                cli.json,
            )
            .await
        }
        Cmd::Doctor { config } => doctor(config).await,
        Cmd::Passkey { cmd } => passkey(cmd),
        Cmd::Token { cmd } => token(cmd),
        Cmd::ImportYaml {
            file,
            scrub,
            overwrite,
            keep_backup,
        } => import_yaml(&file, scrub, overwrite, keep_backup),
        Cmd::Runs {
            agent,
            project,
            since,
            failed,
            limit,
            db,
        } => runs_cmd(db, since, cli.json, |since| coordinator::runs::RunFilter {
            agent,
            project,
            since,
            failed,
            limit,
        }),
        Cmd::Usage { by, since, db } => usage_cmd(db, &by, since, cli.json),
        Cmd::Paths => {
            println!("settings      {}", coordinator::paths::settings_path().display());
            println!("state         {}", coordinator::paths::state_path().display());
            println!("run history   {}", coordinator::runs::store::default_path().display());
            println!("logs          {}", coordinator::paths::default_log_root().display());
            println!("server socket {}", coordinator::paths::default_socket().display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
