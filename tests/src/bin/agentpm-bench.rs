//! `agentpm-bench`: measures our coordinator and the Python one (aiagent-runner 0.1.13 from PyPI, in a venv
//! this program creates) against the same simulator, with real fake-agent processes, and prints a markdown
//! table plus JSON. Both coordinators run as separate processes from the *same* YAML file.
//!
//! Usage: cargo run --release -p agentpm-e2e --bin agentpm-bench -- [--reps N] [--no-python] [--quick] [--json-out FILE]
//! [--only drain,scale,reaction,idle,logout,outage]

use agentpm_e2e::{bin, python_venv, python_yaml, socket_sim};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Rust,
    Python,
}

struct Opts {
    reps: usize,
    python: bool,
    quick: bool,
    json_out: Option<PathBuf>,
    /// Run only these scenarios (drain, scale, reaction, idle, logout, outage); empty = all.
    only: Vec<String>,
}

impl Opts {
    fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        reps: 3,
        python: true,
        quick: false,
        json_out: None,
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--no-python" => o.python = false,
            "--quick" => o.quick = true,
            "--json-out" => o.json_out = args.next().map(PathBuf::from),
            "--only" => {
                o.only = args
                    .next()
                    .expect("--only drain,scale,reaction,idle,logout,outage")
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            "-h" | "--help" => {
                println!("agentpm-bench [--reps N] [--no-python] [--quick] [--json-out FILE] [--only drain,scale,reaction,idle,logout,outage]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let o = parse_opts();
    let python = if o.python {
        Some(python_venv().expect("cannot prepare the Python coordinator venv"))
    } else {
        None
    };
    let mut results = serde_json::Map::new();
    let mut rows: Vec<(String, String, String, String)> = Vec::new(); // scenario, rust, python, ratio

    // drain: 4 agents × 5 projects × 3 items, 0.2 s work, max 3, polling 1 s.
    if o.wants("drain") {
        let (agents, projects, items) = if o.quick { (2, 2, 2) } else { (4, 5, 3) };
        let mut drain = json!({});
        for who in [Who::Rust, Who::Python] {
            if who == Who::Python && python.is_none() {
                continue;
            }
            let mut walls = Vec::new();
            let mut last = json!({});
            for rep in 0..o.reps {
                let r = drain_once(who, python.as_deref(), agents, projects, items).await;
                eprintln!("drain {who:?} rep {rep}: {r}");
                walls.push(r["wall_s"].as_f64().unwrap_or(f64::NAN));
                last = r;
            }
            drain[format!("{who:?}").to_lowercase()] =
                json!({"wall_s_median": median(&walls), "wall_s_all": walls, "last": last});
        }
        let rw = drain["rust"]["wall_s_median"].as_f64().unwrap_or(f64::NAN);
        let pw = drain["python"]["wall_s_median"].as_f64();
        rows.push((
            format!(
                "drain {agents}×{projects}×{items}, 0.2 s work, max 3, poll 1 s: wall (median of {})",
                o.reps
            ),
            format!(
                "{rw:.2} s (spawns {}, violations {})",
                drain["rust"]["last"]["spawns"], drain["rust"]["last"]["violations"]
            ),
            pw.map(|p| format!("{p:.2} s (violations {})", drain["python"]["last"]["violations"]))
                .unwrap_or("-".into()),
            pw.map(|p| format!("{:.1}× faster", p / rw)).unwrap_or("-".into()),
        ));
        results.insert("drain".into(), drain);
    }
    // Issue 13 on the faithful simulator: logout-before-exit drain and outage drain, worst and median.
    for (name, what) in [
        (
            "logout",
            "logout drain 4×5×3, 0.2 s work, exit 0.3 s after logout, max 3: wall",
        ),
        (
            "outage",
            "outage 2×2×5, 0.5 s work, server down 8 s after 3 s: drained after return",
        ),
    ] {
        if !o.wants(name) {
            continue;
        }
        let reps = o.reps.max(5);
        let mut out = json!({});
        let mut cells = Vec::new();
        for who in [Who::Rust, Who::Python] {
            if who == Who::Python && python.is_none() {
                cells.push("-".to_string());
                continue;
            }
            let starter = |yaml: &Path, data: &Path| start_yaml(who, python.as_deref(), yaml, data);
            let (mut xs, mut runs) = (Vec::new(), Vec::new());
            for rep in 0..reps {
                let r = if name == "logout" {
                    agentpm_e2e::bench_server::logout_drain_once(&starter, Duration::from_secs(150)).await
                } else {
                    agentpm_e2e::bench_server::outage_drain_once(&starter, Duration::from_secs(90)).await
                };
                eprintln!("{name} {who:?} rep {rep}: {r}");
                xs.push(
                    r[if name == "logout" {
                        "wall_s"
                    } else {
                        "drain_after_back_s"
                    }]
                    .as_f64()
                    .unwrap_or(f64::NAN),
                );
                runs.push(r);
            }
            let worst = xs.iter().copied().fold(
                f64::NEG_INFINITY,
                |a, b| if b.is_nan() { f64::INFINITY } else { a.max(b) },
            );
            let lost: u64 = runs
                .iter()
                .map(|r| r["leases"]["starts_lost"].as_u64().unwrap_or(0))
                .sum();
            cells.push(format!(
                "median {:.2} s, worst {} ({} start answers lost over {reps} runs)",
                median(&xs),
                if worst.is_finite() {
                    format!("{worst:.2} s")
                } else {
                    "not drained".into()
                },
                lost
            ));
            out[format!("{who:?}").to_lowercase()] =
                json!({"median_s": median(&xs), "worst_s": worst, "all_s": xs, "runs": runs});
        }
        rows.push((
            format!("{what} ({reps} runs)"),
            cells[0].clone(),
            cells[1].clone(),
            "-".into(),
        ));
        results.insert(name.into(), out);
    }
    // scale: 1,000 idle pairs (200 agents × 5 projects, all hold).
    if o.wants("scale") {
        let secs = if o.quick { 10 } else { 30 };
        let mut scale = json!({});
        for who in [Who::Rust, Who::Python] {
            if who == Who::Python && python.is_none() {
                continue;
            }
            let r = scale_once(who, python.as_deref(), 200, 5, secs).await;
            eprintln!("scale {who:?}: {r}");
            scale[format!("{who:?}").to_lowercase()] = r;
        }
        let rc = scale["rust"]["cycle_ms_p50"].as_f64().unwrap_or(f64::NAN);
        let pc = scale["python"]["cycle_ms_p50"].as_f64();
        rows.push((
            "scale 1,000 idle pairs: one full cycle p50 / p95".into(),
            format!(
                "{rc:.1} / {:.1} ms",
                scale["rust"]["cycle_ms_p95"].as_f64().unwrap_or(f64::NAN)
            ),
            pc.map(|p| {
                format!(
                    "{p:.1} / {:.1} ms",
                    scale["python"]["cycle_ms_p95"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .unwrap_or("-".into()),
            pc.map(|p| format!("{:.1}× faster", p / rc)).unwrap_or("-".into()),
        ));
        rows.push((
            format!("scale: CPU seconds over {secs} s / peak RSS"),
            format!(
                "{:.2} s / {:.1} MB",
                scale["rust"]["cpu_s"].as_f64().unwrap_or(f64::NAN),
                scale["rust"]["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
            ),
            if pc.is_some() {
                format!(
                    "{:.2} s / {:.1} MB",
                    scale["python"]["cpu_s"].as_f64().unwrap_or(f64::NAN),
                    scale["python"]["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)
                )
            } else {
                "-".into()
            },
            if pc.is_some() {
                format!(
                    "{:.1}× less CPU",
                    scale["python"]["cpu_s"].as_f64().unwrap_or(f64::NAN)
                        / scale["rust"]["cpu_s"].as_f64().unwrap_or(f64::NAN)
                )
            } else {
                "-".into()
            },
        ));
        results.insert("scale".into(), scale);
    }
    // reaction and spawn latency (ours; Python polls, so its reaction is bounded by its tick).
    if o.wants("reaction") {
        let react = reaction_once(if o.quick { 8 } else { 20 }).await;
        eprintln!("reaction: {react}");
        rows.push((
            "reaction: child exit → next spawn of the pair, p50 / p95".into(),
            format!(
                "{:.1} / {:.1} ms",
                react["exit_to_spawn_ms_p50"].as_f64().unwrap_or(f64::NAN),
                react["exit_to_spawn_ms_p95"].as_f64().unwrap_or(f64::NAN)
            ),
            "≥ polling interval (tick-bound)".into(),
            "-".into(),
        ));
        rows.push((
            "spawn latency: decision → child running, p50 / p95".into(),
            format!(
                "{:.2} / {:.2} ms",
                react["spawn_ms_p50"].as_f64().unwrap_or(f64::NAN),
                react["spawn_ms_p95"].as_f64().unwrap_or(f64::NAN)
            ),
            "-".into(),
            "-".into(),
        ));
        results.insert("reaction".into(), react);
    }
    // idle: 10 agents, nothing to do, default polling interval.
    if o.wants("idle") {
        let idle_secs = if o.quick { 20 } else { 60 };
        let idle = idle_once(10, idle_secs).await;
        eprintln!("idle: {idle}");
        rows.push((
            format!("idle: 10 agents for {idle_secs} s (poll 10 s): CPU / RSS"),
            format!(
                "{:.3} % / {:.1} MB",
                idle["cpu_percent"].as_f64().unwrap_or(f64::NAN),
                idle["rss_mb"].as_f64().unwrap_or(f64::NAN)
            ),
            "-".into(),
            "-".into(),
        ));
        results.insert("idle".into(), idle);
    }
    println!("\n| scenario | agentpm-coordinator (Rust) | aiagent-runner 0.1.13 (Python) | ratio |");
    println!("|---|---|---|---|");
    for (a, b, c, d) in &rows {
        println!("| {a} | {b} | {c} | {d} |");
    }
    let all = Value::Object(results);
    println!("\n```json\n{}\n```", serde_json::to_string_pretty(&all).unwrap());
    if let Some(p) = o.json_out {
        std::fs::write(&p, serde_json::to_string_pretty(&all).unwrap()).unwrap();
    }
}

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[idx.min(s.len() - 1)]
}

struct Env {
    _dir: tempfile::TempDir,
    sim: pm_sim::Simulator,
    yaml: PathBuf,
    data: PathBuf,
}

/// The simulator plus one YAML file in the Python coordinator's format that both coordinators read.
async fn env(agents: usize, projects: usize, items: usize, max_concurrent: usize, polling: u64, work_ms: u64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sim = socket_sim(
        dir.path(),
        agents,
        projects,
        items,
        Some(max_concurrent),
        pm_sim::ExitTool::Both,
    )
    .await;
    let yaml = python_yaml(&sim, polling, max_concurrent, &["--work-ms", &work_ms.to_string()]);
    let path = dir.path().join("coordinator.yaml");
    std::fs::write(&path, yaml).unwrap();
    let data = dir.path().join("data");
    Env {
        sim,
        yaml: path,
        data,
        _dir: dir,
    }
}

fn start(who: Who, python: Option<&Path>, e: &Env) -> Child {
    start_yaml(who, python, &e.yaml, &e.data)
}

/// A coordinator on any YAML file (the issue-13 scenarios make their own).
fn start_yaml(who: Who, python: Option<&Path>, yaml: &Path, data: &Path) -> Child {
    let mut c = match who {
        Who::Rust => {
            let mut c = Command::new(bin("agentpm-coordinator"));
            c.args(["run", "--config"]).arg(yaml);
            c
        }
        Who::Python => {
            let mut c = Command::new(python.expect("python"));
            c.args(["-m", "aiagent_runner", "--coordinator", "-c"]).arg(yaml);
            c
        }
    };
    c.env("AGENTPM_DATA_DIR", data)
        .env("XDG_DATA_HOME", data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.spawn().expect("start coordinator")
}

fn stop(mut child: Child) {
    agentpm_e2e::sigterm_and_wait(&mut child, Duration::from_secs(10));
}

async fn drain_once(who: Who, python: Option<&Path>, agents: usize, projects: usize, items: usize) -> Value {
    let e = env(agents, projects, items, 3, 1, 200).await;
    let t = Instant::now();
    let child = start(who, python, &e);
    let done = e
        .sim
        .wait_until(Duration::from_secs(600), |s| s.remaining_items == 0)
        .await;
    let wall = t.elapsed().as_secs_f64();
    stop(child);
    let st = e.sim.stats();
    let v = json!({"done": done, "wall_s": wall, "spawns": st.authentications_ok, "violations": e.sim.violations().len(), "peak_concurrent": st.peak_live_processes});
    e.sim.shutdown().await;
    v
}

/// /proc/<pid> CPU seconds (utime+stime) and (VmRSS, VmHWM) in MB.
fn proc_usage(pid: u32) -> (f64, f64, f64) {
    let tck = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let cpu = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu / tck, kb("VmRSS:"), kb("VmHWM:"))
}

/// Cycle durations from the simulator's call record: from a `health_check` to the last
/// `get_agent_action` before the next `health_check`.
fn cycle_times(calls: &[pm_sim::CallRecord]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut start: Option<f64> = None;
    let mut last: Option<f64> = None;
    for c in calls {
        let at = c.at_us as f64 / 1000.0;
        if c.tool == "health_check" {
            if let (Some(s), Some(l)) = (start, last) {
                out.push(l - s);
            }
            start = Some(at);
            last = None;
        } else if c.tool == "get_agent_action" {
            last = Some(at);
        }
    }
    out
}

async fn scale_once(who: Who, python: Option<&Path>, agents: usize, projects: usize, secs: u64) -> Value {
    let e = env(agents, projects, 0, 3, 1, 200).await;
    let child = start(who, python, &e);
    let pid = child.id();
    let t = Instant::now();
    let mut peak = 0.0f64;
    while t.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, rss, hwm) = proc_usage(pid);
        peak = peak.max(rss).max(hwm);
    }
    let (cpu, _, _) = proc_usage(pid);
    stop(child);
    let cycles = cycle_times(&e.sim.calls());
    let asked = e.sim.calls().iter().filter(|c| c.tool == "get_agent_action").count();
    e.sim.shutdown().await;
    json!({"cycles": cycles.len(), "cycle_ms_p50": percentile(&cycles, 50.0), "cycle_ms_p95": percentile(&cycles, 95.0), "cpu_s": cpu, "peak_rss_mb": peak, "get_agent_action_calls": asked, "seconds": secs})
}

/// One pair with many short items: from each run's exit (its `logout`, just before the process exits) to the
/// next `start` answer, and the engine's own decision → running times (from its JSON event stream).
async fn reaction_once(items: usize) -> Value {
    let e = env(1, 1, items, 3, 10, 20).await;
    let mut c = Command::new(bin("agentpm-coordinator"));
    c.args(["--json", "run", "--config"])
        .arg(&e.yaml)
        .env("AGENTPM_DATA_DIR", &e.data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut spawn_ms = Vec::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if let Some(ms) = v["event"]["instance"]["spawn_ms"].as_f64() {
                    if v["event"]["event"] == "instance_started" {
                        spawn_ms.push(ms);
                    }
                }
            }
        }
        spawn_ms
    });
    e.sim
        .wait_until(Duration::from_secs(120), |s| s.remaining_items == 0)
        .await;
    stop(child);
    let spawn_ms = reader.join().unwrap_or_default();
    let calls = e.sim.calls();
    let mut gaps = Vec::new();
    let mut exit_at: Option<f64> = None;
    for c in &calls {
        if c.tool == "logout" {
            exit_at = Some(c.at_us as f64 / 1000.0);
        } else if c.tool == "authenticate" {
            // The next run of the pair has started (authenticate follows the spawn by the agent's start-up).
        } else if c.tool == "get_agent_action" {
            // The answer's start time is recorded when the call arrives; the spawn follows within spawn_ms.
            if let Some(x) = exit_at.take() {
                gaps.push(c.at_us as f64 / 1000.0 - x);
            }
        }
    }
    e.sim.shutdown().await;
    json!({
        "runs": items,
        "exit_to_spawn_ms_p50": percentile(&gaps, 50.0) + percentile(&spawn_ms, 50.0),
        "exit_to_spawn_ms_p95": percentile(&gaps, 95.0) + percentile(&spawn_ms, 95.0),
        "exit_to_ask_ms": gaps,
        "spawn_ms_p50": percentile(&spawn_ms, 50.0),
        "spawn_ms_p95": percentile(&spawn_ms, 95.0),
        "polling_interval_s": 10,
    })
}

async fn idle_once(agents: usize, secs: u64) -> Value {
    let e = env(agents, 1, 0, 3, 10, 200).await;
    let child = start(Who::Rust, None, &e);
    let pid = child.id();
    tokio::time::sleep(Duration::from_secs(2)).await; // start-up is not idle time
    let (c0, _, _) = proc_usage(pid);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (c1, rss, hwm) = proc_usage(pid);
    stop(child);
    e.sim.shutdown().await;
    json!({"seconds": secs, "cpu_percent": (c1 - c0) / secs as f64 * 100.0, "rss_mb": rss, "peak_rss_mb": hwm})
}
