//! Benchmark of the run history (issue 16), not a timed test: records N runs (default 100,000) through
//! the real `RunStore` (writer thread, log summaries from real-looking Claude / Codex / Gemini logs), then
//! prints: the exit-path cost of `run_finished` (a channel send), the writer's time per run (batched and
//! one at a time), `query` of all runs serialized as JSON (worst of 5), and the database size.
//! Build with `--release`: `cargo run --release -p agentpm-coordinator --bin agentpm-runs-bench [N]`.
use coordinator::runs::{RunEnd, RunFilter, RunStart, RunStore, StoppedBy, UsageBy};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AGENTS: usize = 50;
const PROJECTS: usize = 10;
const ROUNDS: usize = 5;

fn claude_log(i: usize) -> String {
    let mut s = format!("[agentpm] 2026-12-03 10:00:00.000 start pid={i} cwd=/work/prj command=claude -p --output-format stream-json --verbose\n");
    s += &format!(
        r#"{{"type":"system","subtype":"init","cwd":"/work/prj","session_id":"sess-{i}","tools":["Bash","Read","Edit","mcp__agent-pm__get_my_task"],"mcp_servers":[{{"name":"agent-pm","status":"connected"}}],"model":"claude-sonnet-4-5","permissionMode":"default","apiKeySource":"none"}}"#
    );
    s.push('\n');
    for t in 1..=8 {
        s += &format!(
            r#"{{"type":"assistant","message":{{"id":"msg_{t}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"tu_{t}","name":"mcp__agent-pm__report_progress","input":{{"note":"step {t} of the task: reading files and editing the module as asked"}}}}],"usage":{{"input_tokens":{},"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"output_tokens":{}}}}},"parent_tool_use_id":null,"session_id":"sess-{i}"}}"#,
            4 + t,
            200,
            12000 + 300 * t,
            80 + t
        );
        s.push('\n');
        s += &format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"tu_{t}","type":"tool_result","content":[{{"type":"text","text":"{{\"success\":true,\"step\":{t}}}"}}]}}]}},"parent_tool_use_id":null,"session_id":"sess-{i}"}}"#
        );
        s.push('\n');
    }
    let msg = "Implemented the change: the parser now keeps cut lines as raw text, the tests cover interleaved rate-limit events, and the task is reported complete to the server. Nothing else is pending.";
    s += &format!(
        r#"{{"type":"assistant","message":{{"id":"msg_9","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"text","text":"{msg}"}}],"usage":{{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":15000,"output_tokens":60}}}},"parent_tool_use_id":null,"session_id":"sess-{i}"}}"#
    );
    s.push('\n');
    s += &format!(
        r#"{{"type":"result","subtype":"success","is_error":false,"duration_ms":{},"duration_api_ms":30000,"num_turns":9,"result":"{msg}","session_id":"sess-{i}","total_cost_usd":0.{:04},"usage":{{"input_tokens":120,"cache_creation_input_tokens":1600,"cache_read_input_tokens":115000,"output_tokens":790}}}}"#,
        40000 + i % 1000,
        1000 + i % 9000
    );
    s.push('\n');
    s += "[agentpm] 2026-12-03 10:00:45.000 exit code=0\n";
    s
}

fn codex_log() -> String {
    let mut s = String::from("{\"type\":\"thread.started\",\"thread_id\":\"0199a213-81c0-7800-8aa1-bbab2a035a53\"}\n");
    for t in 0..4 {
        s += "{\"type\":\"turn.started\"}\n";
        s += &format!("{{\"type\":\"item.started\",\"item\":{{\"id\":\"item_{t}\",\"type\":\"command_execution\",\"command\":\"bash -lc 'cargo test'\",\"aggregated_output\":\"\",\"status\":\"in_progress\"}}}}\n");
        s += &format!("{{\"type\":\"item.completed\",\"item\":{{\"id\":\"item_{t}\",\"type\":\"command_execution\",\"command\":\"bash -lc 'cargo test'\",\"aggregated_output\":\"test result: ok. 12 passed\",\"exit_code\":0,\"status\":\"completed\"}}}}\n");
        s += &format!("{{\"type\":\"item.completed\",\"item\":{{\"id\":\"msg_{t}\",\"type\":\"agent_message\",\"text\":\"Step {t} done; the tests pass.\"}}}}\n");
        s += "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":24000,\"cached_input_tokens\":20000,\"output_tokens\":900}}\n";
    }
    s
}

fn gemini_fail_log() -> String {
    let mut s = String::from("{\"type\":\"init\",\"timestamp\":\"2026-12-03T10:00:00.000Z\",\"session_id\":\"g-1\",\"model\":\"gemini-2.5-pro\"}\n");
    s += "{\"type\":\"message\",\"timestamp\":\"t\",\"role\":\"assistant\",\"content\":\"Checking the task\",\"delta\":true}\n";
    s += "{\"type\":\"result\",\"timestamp\":\"t\",\"status\":\"error\",\"error\":{\"type\":\"TerminalQuotaError\",\"message\":\"You have exhausted your capacity on this model. Your quota will reset after 1h2m3s.\"},\"stats\":{\"total_tokens\":9000,\"input_tokens\":8800,\"output_tokens\":200,\"cached\":4000,\"input\":4800,\"duration_ms\":0,\"tool_calls\":0}}\n";
    s
}

/// CPU time (user + system) of this process's threads named `name` ("" = the calling thread), from /proc
/// (10 ms ticks): what a run costs independent of how loaded the machine is.
fn cpu(name: &str) -> Duration {
    let ticks = |stat: &str| -> u64 {
        // Fields after the ")" that closes the command: state is 3rd, utime 14th, stime 15th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    let total: u64 = if name.is_empty() {
        ticks(&std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default())
    } else {
        std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
            .map(|t| ticks(&std::fs::read_to_string(t.path().join("stat")).unwrap_or_default()))
            .sum()
    };
    Duration::from_millis(total * 10)
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("agentpm-runs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A handful of logs shared by all runs: each run's log is still read and parsed by the writer.
    let logs: Vec<(PathBuf, &str, i32)> = {
        let mut v = Vec::new();
        for k in 0..6 {
            let p = dir.join(format!("claude-{k}.log"));
            std::fs::write(&p, claude_log(k)).unwrap();
            v.push((p, "claude", 0));
        }
        let p = dir.join("codex.log");
        std::fs::write(&p, codex_log()).unwrap();
        v.push((p, "codex", 0));
        let p = dir.join("gemini.log");
        std::fs::write(&p, gemini_fail_log()).unwrap();
        v.push((p, "gemini", 1));
        v
    };
    let log_bytes: u64 = logs.iter().map(|l| file_size(&l.0)).sum::<u64>() / logs.len() as u64;
    let db = dir.join("coordinator/runs.db");
    let store = RunStore::open(&db).expect("open");
    println!("runs: {n}, {AGENTS} agents, {PROJECTS} projects, logs of ~{log_bytes} bytes (Claude 9 turns / Codex 4 turns / Gemini quota failure)");

    // 1. Record all runs as the supervisor would: run_started at spawn, run_finished on exit.
    let t0 = Instant::now();
    let base = coordinator::api::now_ms() - n as i64 * 60_000;
    let mut sends: Vec<Duration> = Vec::with_capacity(n);
    for i in 0..n {
        let (log, kind, code) = &logs[i % logs.len()];
        let id = format!("bench-{i:07}");
        let start = RunStart {
            agent_id: format!("agt_{:02}", i % AGENTS),
            project_id: format!("prj_{:02}", i % PROJECTS),
            task_id: Some(format!("tsk_{:06}", i / 3)),
            provider: kind.to_string(),
            provider_kind: kind.to_string(),
            model: None,
            started_at: base + i as i64 * 60_000,
            log_path: Some(log.clone()),
        };
        store.run_started(&id, start);
        let end = RunEnd {
            ended_at: base + i as i64 * 60_000 + 45_000,
            exit_code: if i % 97 == 0 { None } else { Some(*code) },
            signal: if i % 97 == 0 { Some(15) } else { None },
            stopped_by: if i % 97 == 0 {
                Some(StoppedBy::Coordinator)
            } else {
                None
            },
            log_path: None,
            provider_kind: kind.to_string(),
        };
        let s = Instant::now();
        store.run_finished(&id, end);
        sends.push(s.elapsed());
    }
    let sent = t0.elapsed();
    store.flush();
    let all_written = t0.elapsed();
    let mean = sends.iter().sum::<Duration>().as_secs_f64() / n as f64;
    sends.sort();
    let pct = |p: f64| sends[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e6;
    println!(
        "exit path (run_finished = channel send): mean {:.2} µs, p99 {:.1} µs, p99.9 {:.1} µs, worst {:.0} µs (target < 1 ms; the worst is the thread being descheduled on a loaded machine)",
        mean * 1e6,
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    let writer_cpu = cpu("runs-writer");
    println!(
        "writer, batched: {n} runs recorded in {:.2} s wall ({:.1} µs per run incl. reading + parsing its log; writer thread CPU {:.1} µs per run; sending took {:.2} s)",
        all_written.as_secs_f64(),
        all_written.as_secs_f64() * 1e6 / n as f64,
        writer_cpu.as_secs_f64() * 1e6 / n as f64,
        sent.as_secs_f64()
    );

    // 2. Writer per run, one at a time (start + finish + flush: a commit each), as on a quiet coordinator.
    let mut worst_round = Duration::ZERO;
    for r in 0..ROUNDS {
        let k = 200;
        let t = Instant::now();
        for j in 0..k {
            let id = format!("single-{r}-{j}");
            let (log, kind, code) = &logs[j % logs.len()];
            let start = RunStart {
                agent_id: "agt_single".into(),
                project_id: "prj_01".into(),
                provider: kind.to_string(),
                provider_kind: kind.to_string(),
                started_at: base,
                log_path: Some(log.clone()),
                ..Default::default()
            };
            store.run_started(&id, start);
            store.flush();
            store.run_finished(
                &id,
                RunEnd {
                    ended_at: base + 1000,
                    exit_code: Some(*code),
                    provider_kind: kind.to_string(),
                    ..Default::default()
                },
            );
            store.flush();
        }
        worst_round = worst_round.max(t.elapsed() / k as u32);
    }
    println!(
        "writer, one run at a time (2 commits + log summary): {:.0} µs per run (worst of {ROUNDS} rounds of 200)",
        worst_round.as_secs_f64() * 1e6
    );

    // 3. `runs --json` over everything: query + serialize, worst of 5.
    let mut worst_q = Duration::ZERO;
    let mut worst_j = Duration::ZERO;
    let mut rows = 0;
    let mut json_len = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let runs = store.query(&RunFilter::default()).expect("query");
        let q = t.elapsed();
        let json = serde_json::to_string(&runs).expect("json");
        let j = t.elapsed();
        rows = runs.len();
        json_len = json.len();
        worst_q = worst_q.max(q);
        worst_j = worst_j.max(j);
    }
    println!(
        "query all ({rows} runs) into records: {:.0} ms; + serde JSON ({:.1} MB): {:.0} ms (worst of {ROUNDS})",
        worst_q.as_secs_f64() * 1e3,
        mb(json_len as u64),
        worst_j.as_secs_f64() * 1e3
    );
    // What `runs --json` does: rows straight to JSON, into a 1 MB buffer over a file.
    let mut times = Vec::new();
    let out_path = dir.join("runs.json");
    let cpu0 = cpu("");
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&out_path).expect("out"));
        let n = store.write_json(&RunFilter::default(), &mut out).expect("write_json");
        std::io::Write::flush(&mut out).expect("flush");
        times.push(t.elapsed());
        assert_eq!(n, rows);
    }
    let json_cpu = (cpu("") - cpu0) / ROUNDS as u32;
    times.sort();
    println!(
        "runs --json path (rows straight to JSON into a file, {:.1} MB): worst {:.0} ms, median {:.0} ms, best {:.0} ms of {ROUNDS} wall; CPU {:.0} ms per round (target < 200 ms)",
        mb(file_size(&out_path)),
        times[ROUNDS - 1].as_secs_f64() * 1e3,
        times[ROUNDS / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        json_cpu.as_secs_f64() * 1e3
    );
    let mut worst_f = Duration::ZERO;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = store
            .query(&RunFilter {
                agent: Some("agt_07".into()),
                since: Some(base + (n as i64 / 2) * 60_000),
                failed: true,
                ..Default::default()
            })
            .expect("query");
        std::hint::black_box(r);
        worst_f = worst_f.max(t.elapsed());
    }
    println!(
        "query one agent, failed, last half: {:.1} ms (worst of {ROUNDS})",
        worst_f.as_secs_f64() * 1e3
    );
    for by in [UsageBy::Agent, UsageBy::Provider, UsageBy::Day] {
        let mut worst_u = Duration::ZERO;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            std::hint::black_box(store.usage(by, None).expect("usage"));
            worst_u = worst_u.max(t.elapsed());
        }
        println!(
            "usage --by {by:?}: {:.0} ms (worst of {ROUNDS})",
            worst_u.as_secs_f64() * 1e3
        );
    }

    // 4. Size on disk after a checkpoint (the WAL folded into the file).
    drop(store);
    let c = rusqlite::Connection::open(&db).expect("reopen");
    let _: (i64, i64, i64) = c
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("checkpoint");
    drop(c);
    let size = file_size(&db) + file_size(&db.with_extension("db-wal"));
    println!(
        "database: {:.1} MB for {} runs ({} bytes per run; target < 100 MB)",
        mb(size),
        rows,
        size / rows.max(1) as u64
    );
    if std::env::var_os("AGENTPM_BENCH_KEEP").is_some() {
        println!("kept {}", db.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
