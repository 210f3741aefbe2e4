//! `agentpm-real-agents`: the real agent CLIs (Claude Code, Gemini CLI, Codex, installed by
//! scripts/real-agents) driven end to end by the real `agentpm-coordinator run`, against the simulator and
//! a scripted model endpoint on 127.0.0.1 (nothing leaves the machine). For each CLI and transport it prints
//! `REAL|<cli>|<transport>|drained=N/M|passkey_seen_by_model=K|records=R/T` (runs whose record in runs.db
//! equals the CLI's own final usage and cost) and exits non-zero on any failure.
//!
//! Usage: agentpm-real-agents --cli-bin <dir with claude, gemini, codex> [--only claude,gemini] [--keep]
//! `--errors` instead runs each CLI once against a model that answers 401, then 429, and keeps what the CLI
//! printed and its exit code under `target/real-agents/errors/` (real output for the `exit.rs` tests), with
//! one `ERR|<cli>|<status>|exit=..|secs=..|error_line=..|quota_secs=..` line each.
use agentpm_e2e::fake_model::FakeModel;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENTS: usize = 2;
const PROJECTS: usize = 2;
const ITEMS: usize = 2;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

struct Case {
    cli: &'static str,
    http: bool,
}

struct Outcome {
    line: String,
    ok: bool,
    problems: Vec<String>,
}

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cli_bin) = arg_value(&args, "--cli-bin")
        .map(PathBuf::from)
        .and_then(|p| std::path::absolute(p).ok())
    else {
        eprintln!("usage: agentpm-real-agents --cli-bin <dir holding claude, gemini and codex> [--only claude,gemini,codex] [--transport socket|http] [--keep] [--errors]");
        std::process::exit(2);
    };
    let only: Option<Vec<String>> = arg_value(&args, "--only").map(|s| s.split(',').map(str::to_string).collect());
    let keep = args.iter().any(|a| a == "--keep");
    let only_transport = arg_value(&args, "--transport");
    let work = cli_bin
        .ancestors()
        .nth(3)
        .map(|p| p.join("runs"))
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&work).expect("runs dir");
    let cases = [
        Case {
            cli: "claude",
            http: false,
        },
        Case {
            cli: "claude",
            http: true,
        },
        Case {
            cli: "gemini",
            http: false,
        },
        Case {
            cli: "gemini",
            http: true,
        },
        Case {
            cli: "codex",
            http: false,
        },
        Case {
            cli: "codex",
            http: true,
        },
    ];
    if args.iter().any(|a| a == "--errors") {
        probe_errors(&cli_bin, &work, only.as_deref()).await;
        return;
    }
    let mut failed = 0;
    for c in cases.iter().filter(|c| {
        only.as_ref().is_none_or(|o| o.iter().any(|x| x == c.cli))
            && only_transport.as_deref().is_none_or(|t| t == transport(c))
    }) {
        let t = Instant::now();
        let o = run_case(c, &cli_bin, &work, keep).await;
        println!("{}", o.line);
        for p in &o.problems {
            println!("  problem: {p}");
        }
        eprintln!("  ({} {} took {:.1}s)", c.cli, transport(c), t.elapsed().as_secs_f64());
        if !o.ok {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("agentpm-real-agents: {failed} case(s) failed");
        std::process::exit(1);
    }
}

fn transport(c: &Case) -> &'static str {
    if c.http {
        "http"
    } else {
        "socket"
    }
}

/// The CLI's environment for an offline run against `model` (set on the coordinator, inherited by agents).
fn cli_env(cli: &str, home: &Path, model: &str) -> Vec<(String, String)> {
    let h = home.display().to_string();
    let mut env = vec![("HOME".to_string(), h.clone())];
    match cli {
        "claude" => {
            env.push(("ANTHROPIC_BASE_URL".into(), model.into()));
            env.push(("ANTHROPIC_API_KEY".into(), "dummy".into()));
            // Without it Claude Code resolves outside names (telemetry, updates): tests stay on loopback.
            env.push(("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC".into(), "1".into()));
        }
        "gemini" => {
            env.push(("GEMINI_API_KEY".into(), "dummy".into()));
            env.push(("GOOGLE_GEMINI_BASE_URL".into(), model.into()));
        }
        "codex" => {
            env.push(("CODEX_HOME".into(), format!("{h}/.codex")));
            env.push(("OPENAI_API_KEY".into(), "dummy".into()));
        }
        _ => {}
    }
    env
}

/// Files the CLI reads from its home: Gemini's auth type, Codex's model provider.
fn write_cli_home(cli: &str, home: &Path, model: &str) -> std::io::Result<()> {
    match cli {
        "gemini" => {
            std::fs::create_dir_all(home.join(".gemini"))?;
            std::fs::write(
                home.join(".gemini/settings.json"),
                r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"telemetry":{"enabled":false},"privacy":{"usageStatisticsEnabled":false}}"#,
            )
        }
        "codex" => {
            std::fs::create_dir_all(home.join(".codex"))?;
            let toml = format!(
                "model = \"fake-codex\"\nmodel_provider = \"local\"\n\n[model_providers.local]\nname = \"local\"\nbase_url = \"{model}/v1\"\nenv_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\n"
            );
            std::fs::write(home.join(".codex/config.toml"), toml)
        }
        _ => Ok(()),
    }
}

/// The model the server names for the agent (each CLI gets one of its own family).
fn model_name(cli: &str) -> &'static str {
    match cli {
        "gemini" => "gemini-2.5-pro",
        "codex" => "gpt-5-codex",
        _ => "claude-sonnet-4-5",
    }
}

fn provider_args(cli: &str) -> Vec<String> {
    // The built-in presets (config::builtin_providers), as a user has them.
    coordinator::config::builtin_providers()
        .get(cli)
        .map(|p| p.args.clone())
        .unwrap_or_default()
}

fn yaml(sim: &pm_sim::Simulator, c: &Case, cli_path: &Path, logs: &Path) -> String {
    let server = if c.http {
        format!("server_url: {}\n", sim.mcp_url().unwrap().trim_end_matches("/mcp"))
    } else {
        format!("mcp_socket_path: {}\n", sim.socket_path().unwrap().display())
    };
    let args: Vec<String> = provider_args(c.cli).iter().map(|a| format!("\"{a}\"")).collect();
    let mut y = format!(
        "polling_interval: 1\nmax_concurrent: 3\n{server}coordinator_token: {}\nlog_directory: {}\ndebug_mode: false\nai_providers:\n  {}:\n    cli_command: {}\n    cli_args: [{}]\nagents:\n",
        sim.coordinator_token(),
        logs.display(),
        c.cli,
        cli_path.display(),
        args.join(", ")
    );
    for id in sim.agent_ids() {
        y.push_str(&format!("  {id}:\n    passkey: \"{}\"\n", sim.passkey(&id)));
    }
    y
}

async fn run_case(c: &Case, cli_bin: &Path, work: &Path, keep: bool) -> Outcome {
    let total = AGENTS * PROJECTS * ITEMS;
    let mut problems = Vec::new();
    let dir = tempfile::Builder::new()
        .prefix(&format!("{}-{}-", c.cli, transport(c)))
        .tempdir_in(work)
        .expect("temp dir");
    let root = dir.path().to_path_buf();
    let home = root.join("home");
    let logs = root.join("logs");
    std::fs::create_dir_all(&home).expect("home");
    let workload = pm_sim::Workload {
        projects: PROJECTS,
        agents: AGENTS,
        items_per_pair: ITEMS,
        provider: c.cli.into(),
        model: Some(model_name(c.cli).into()),
    };
    let mut cfg = pm_sim::SimConfig::new(workload, root.join("projects"));
    cfg.socket_path = Some(root.join("mcp.sock"));
    if c.http {
        cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
    }
    cfg.max_concurrent = Some(3);
    let sim = pm_sim::Simulator::start(cfg).await.expect("simulator");
    let model = FakeModel::start().await.expect("fake model");
    write_cli_home(c.cli, &home, &model.base_url()).expect("CLI home files");
    let yaml_path = root.join("coordinator.yaml");
    std::fs::write(&yaml_path, yaml(&sim, c, &cli_bin.join(c.cli), &logs)).expect("yaml");
    let out = std::fs::File::create(root.join("coordinator.out")).unwrap();
    let err = std::fs::File::create(root.join("coordinator.err")).unwrap();
    let path = format!("{}:{}", cli_bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new(agentpm_e2e::bin("agentpm-coordinator"))
        .args(["--json", "run", "--config"])
        .arg(&yaml_path)
        .env_remove("MCP_COORDINATOR_TOKEN")
        .env("AGENTPM_DATA_DIR", root.join("data"))
        .env("XDG_DATA_HOME", root.join("data"))
        .env("PATH", path)
        .env("RUST_LOG", "info")
        .envs(cli_env(c.cli, &home, &model.base_url()))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start agentpm-coordinator");
    // Drained, or given up early: the coordinator died, or no agent authenticated within 45 s.
    let t = Instant::now();
    let drained_in_time = loop {
        let s = sim.stats();
        if s.remaining_items == 0 {
            break true;
        }
        if t.elapsed() > DRAIN_TIMEOUT || (s.authentications_ok == 0 && t.elapsed() > Duration::from_secs(45)) {
            break false;
        }
        if let Ok(Some(st)) = child.try_wait() {
            problems.push(format!("the coordinator exited early: {st}"));
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let the last agents log out and exit before stopping the coordinator: its last snapshot lists no
    // instance. (The simulator cannot tell: a real model's `authenticate` carries no `pid`, the fake agent's does.)
    let out_path = root.join("coordinator.out");
    let t = Instant::now();
    let settled = loop {
        let idle = std::fs::read_to_string(&out_path).ok().and_then(|text| {
            let last = text.lines().rev().find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .filter(|v| v.get("snapshot").is_some())
            })?;
            Some(last["snapshot"]["instances"].as_array().is_some_and(|a| a.is_empty()))
        });
        if sim.stats().leases_outstanding == 0 && idle == Some(true) {
            break true;
        }
        if t.elapsed() > Duration::from_secs(30) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (_, obeyed) = agentpm_e2e::sigterm_and_wait(&mut child, Duration::from_secs(15));
    let stats = sim.stats();
    let drained = stats.completed_items;
    let mut secrets: Vec<String> = sim.agent_ids().iter().map(|a| sim.passkey(a)).collect();
    secrets.push(sim.coordinator_token());
    let seen = model.bodies_containing(&secrets);
    if !drained_in_time {
        problems.push(format!("not drained within {}s: {stats:?}", DRAIN_TIMEOUT.as_secs()));
    }
    if !settled {
        problems.push("spawn leases outstanding or agent instances still running 30 s after the last item".into());
    }
    if !obeyed {
        problems.push("the coordinator ignored SIGTERM for 15 s".into());
    }
    // The count means something only if the bodies are what the CLI sent: the prompt names the project
    // folder, so every agent's first request must contain one.
    let folders: Vec<String> = sim
        .project_ids()
        .iter()
        .map(|p| root.join("projects").join(p).display().to_string())
        .collect();
    let with_folder = model.bodies_containing(&folders);
    if drained > 0 && with_folder == 0 {
        problems.push("no model request named a project folder: the recorded bodies are not the conversation".into());
    }
    // Agents' run logs (redacted by the coordinator) hold no secret either; Claude's are structured events.
    for s in &secrets {
        let hits = agentpm_e2e::files_containing(&logs, s);
        if !hits.is_empty() {
            problems.push(format!("a secret is in the run logs: {hits:?}"));
        }
    }
    if c.cli == "claude" && drained > 0 && agentpm_e2e::files_containing(&logs, "\"type\":\"result\"").is_empty() {
        problems.push("no Claude run log holds a stream-json `result` event".into());
    }
    if seen > 0 {
        problems.push(format!(
            "{seen} model request bodies contained a passkey or the coordinator token"
        ));
    }
    // Every run ended well: the coordinator reported no agent error to the server.
    if !stats.agent_errors.is_empty() {
        problems.push(format!("agent errors reported: {:?}", stats.agent_errors));
    }
    let v = sim.violations();
    if !v.is_empty() {
        problems.push(format!("simulator violations: {v:?}"));
    }
    let unknown = model.unknown_paths();
    if !unknown.is_empty() {
        problems.push(format!("the fake model got requests it does not speak: {unknown:?}"));
    }
    let reqs = model.requests();
    let decided = reqs.iter().filter(|r| r.decision.is_some()).count();
    if let Some((tools, _)) = reqs
        .iter()
        .find_map(|r| r.decision.clone())
        .filter(|(t, _)| !t.is_empty())
    {
        let pm: Vec<&String> = tools
            .iter()
            .filter(|t| agentpm_e2e::fake_model::brain::short_name(t).is_some())
            .collect();
        eprintln!("  {} offered {} tools; agent-pm ones as {:?}", c.cli, tools.len(), pm);
    }
    for r in reqs.iter().filter_map(|r| r.decision.as_ref()) {
        if let agentpm_e2e::fake_model::brain::Decision::Text(t) = &r.1 {
            if t.contains("cannot continue") || t.contains("Unexpected") || t.contains("no action") {
                problems.push(format!("the script stopped: {t}"));
            }
        }
    }
    // Every run's record in runs.db says what the CLI's own final events say.
    let (rec_ok, rec_total, rec_problems) = check_records(c.cli, &root.join("data"));
    problems.extend(rec_problems);
    if rec_total == 0 && drained > 0 {
        problems.push("no run record in runs.db".into());
    }
    let ok = problems.is_empty() && drained == total;
    if !ok || keep {
        let kept = dir.keep();
        let dump: String = reqs.iter().map(|r| serde_json::json!({"method": r.method, "path": r.path, "body": r.body, "decision": r.decision.as_ref().map(|d| format!("{:?}", d.1))}).to_string() + "\n").collect();
        let _ = std::fs::write(kept.join("model-requests.jsonl"), dump);
        eprintln!(
            "  {} {}: {decided} model replies; files kept in {}",
            c.cli,
            transport(c),
            kept.display()
        );
    }
    sim.shutdown().await;
    Outcome {
        line: format!(
            "REAL|{}|{}|drained={drained}/{total}|passkey_seen_by_model={seen}|records={rec_ok}/{rec_total}",
            c.cli,
            transport(c)
        ),
        ok,
        problems,
    }
}

/// Finds runs.db under the coordinator's data root and checks each run: outcome ok, model and session id
/// present, tokens (and Claude's cost) equal to what the CLI's own final events in the raw log say.
fn check_records(cli: &str, data: &Path) -> (usize, usize, Vec<String>) {
    let Some(db) = find_file(data, "runs.db") else {
        return (0, 0, vec![format!("no runs.db under {}", data.display())]);
    };
    let runs = match coordinator::runs::RunReader::open(&db).and_then(|r| r.query(&Default::default())) {
        Ok(r) => r,
        Err(e) => return (0, 0, vec![format!("reading {}: {e}", db.display())]),
    };
    let mut problems = Vec::new();
    let mut good = 0;
    for r in &runs {
        let log = r
            .log_path
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let events: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
            .filter(|v| v.get("type").is_some())
            .collect();
        let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
        // (input not from the cache, output, cache read, cache write), cost when the CLI states one.
        let want: Option<((u64, u64, u64, u64), Option<f64>)> = match cli {
            "claude" => events.iter().rfind(|e| e["type"] == "result").map(|e| {
                let u = &e["usage"];
                (
                    (
                        n(u, "input_tokens"),
                        n(u, "output_tokens"),
                        n(u, "cache_read_input_tokens"),
                        n(u, "cache_creation_input_tokens"),
                    ),
                    e["total_cost_usd"].as_f64(),
                )
            }),
            "gemini" => events.iter().rfind(|e| e["type"] == "result").map(|e| {
                let st = &e["stats"];
                (
                    (
                        n(st, "input_tokens").saturating_sub(n(st, "cached")),
                        n(st, "output_tokens"),
                        n(st, "cached"),
                        0,
                    ),
                    None,
                )
            }),
            _ => {
                let turns: Vec<&serde_json::Value> = events
                    .iter()
                    .filter(|e| e["type"] == "turn.completed")
                    .map(|e| &e["usage"])
                    .collect();
                (!turns.is_empty()).then(|| {
                    let sum = |k: &str| turns.iter().map(|u| n(u, k)).sum::<u64>();
                    (
                        (
                            sum("input_tokens").saturating_sub(sum("cached_input_tokens")),
                            sum("output_tokens"),
                            sum("cached_input_tokens"),
                            0,
                        ),
                        None,
                    )
                })
            }
        };
        let got = (
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
        );
        let mut bad = Vec::new();
        match &want {
            None => bad.push("its log has no final usage event".to_string()),
            Some((tokens, cost)) => {
                if got != *tokens {
                    bad.push(format!("tokens {got:?}, the CLI said {tokens:?}"));
                }
                if let Some(c) = cost {
                    if r.cost_usd.is_none_or(|x| (x - c).abs() > 1e-12) || r.cost_is_estimate {
                        bad.push(format!(
                            "cost {:?} (estimate {}), the CLI said {c}",
                            r.cost_usd, r.cost_is_estimate
                        ));
                    }
                } else if r.cost_usd.is_some() && !r.cost_is_estimate {
                    bad.push("a cost not labelled as an estimate".into());
                }
            }
        }
        if r.outcome != coordinator::runs::Outcome::Ok {
            bad.push(format!("outcome {:?}", r.outcome));
        }
        if r.model.is_none() || r.session_id.is_none() {
            bad.push(format!("model {:?}, session {:?}", r.model, r.session_id));
        }
        if bad.is_empty() {
            good += 1;
        } else {
            problems.push(format!(
                "run {} ({}): {}",
                r.run_id,
                r.log_path.as_deref().unwrap_or("no log"),
                bad.join("; ")
            ));
        }
    }
    (good, runs.len(), problems)
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// How long a CLI may keep retrying a 401/429 before it is stopped (they retry with backoff on their own).
const PROBE_TIMEOUT: Duration = Duration::from_secs(45);

/// Each CLI, headless as the plan starts it (minus the MCP server), against a model answering `status`.
async fn probe_one(cli: &'static str, status: u16, cli_bin: &Path, work: &Path, out_dir: &Path) -> String {
    let model = FakeModel::start().await.expect("fake model");
    model.fail_with(status);
    let dir = tempfile::Builder::new()
        .prefix(&format!("probe-{cli}-{status}-"))
        .tempdir_in(work)
        .expect("temp dir");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    write_cli_home(cli, &home, &model.base_url()).unwrap();
    let mut args = provider_args(cli);
    match cli {
        "claude" => args.extend(["--output-format", "stream-json", "-p"].map(String::from)),
        "codex" => args.extend(["--skip-git-repo-check", "-"].map(String::from)),
        _ => {}
    }
    let mut cmd = tokio::process::Command::new(cli_bin.join(cli));
    cmd.args(&args)
        .current_dir(dir.path())
        .envs(cli_env(cli, &home, &model.base_url()))
        .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
        .env("IS_SANDBOX", "1");
    // Claude Code retries even a 401 ten times with backoff (minutes): two retries show the same output.
    cmd.env("CLAUDE_CODE_MAX_RETRIES", "2");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let t = Instant::now();
    let mut child = cmd.spawn().expect("spawn CLI");
    let pid = child.id().map(|p| p as i32);
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"Say hello.\n").await;
    }
    // Read both streams as they come, so a CLI stopped at the timeout still shows what it printed.
    let read = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut b = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut b).await;
            }
            b
        })
    };
    let out = read(child.stdout.take().map(|s| Box::new(s) as _));
    let err = read(child.stderr.take().map(|s| Box::new(s) as _));
    let exit = match tokio::time::timeout(PROBE_TIMEOUT, child.wait()).await {
        Ok(Ok(st)) => st.code().map_or("signal".to_string(), |c| c.to_string()),
        _ => {
            if let Some(p) = pid {
                let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = child.wait().await;
            format!("timeout>{}s", PROBE_TIMEOUT.as_secs())
        }
    };
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.await.unwrap_or_default()),
        String::from_utf8_lossy(&err.await.unwrap_or_default())
    );
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::write(out_dir.join(format!("{cli}-{status}.log")), &output);
    let calls = model.requests().iter().filter(|r| r.method == "POST").count();
    let err = coordinator::exit::extract_error(&output)
        .unwrap_or_default()
        .replace('|', "/");
    let quota = coordinator::exit::detect_quota(&output, 10, 3600);
    format!("ERR|{cli}|{status}|exit={exit}|secs={secs:.1}|model_calls={calls}|error_line={err}|quota_secs={quota:?}")
}

async fn probe_errors(cli_bin: &Path, work: &Path, only: Option<&[String]>) {
    let out_dir = work.parent().unwrap_or(work).join("errors");
    std::fs::create_dir_all(&out_dir).expect("errors dir");
    let mut tasks = Vec::new();
    for cli in ["claude", "gemini", "codex"]
        .into_iter()
        .filter(|c| only.is_none_or(|o| o.iter().any(|x| x == c)))
    {
        for status in [401u16, 429] {
            let (b, w, o) = (cli_bin.to_path_buf(), work.to_path_buf(), out_dir.clone());
            tasks.push(tokio::spawn(async move { probe_one(cli, status, &b, &w, &o).await }));
        }
    }
    for t in tasks {
        println!("{}", t.await.expect("probe"));
    }
    eprintln!("  outputs kept in {}", out_dir.display());
}
