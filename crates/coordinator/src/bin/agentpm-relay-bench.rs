//! Benchmark of the log relay (issue 16), not a timed test: a child writes Claude stream-json as fast as it
//! can (`cat` of a file of realistic lines) through the real relay (line splitting, redaction, the
//! summarizer fed with every line, live progress, the log file), for one agent and for 32 at once; against
//! the physical limit here, `cat` of the same bytes through a pipe into a file. Prints the median and the
//! worst of 5 rounds in MB/s and the ratio to `cat`.
//! `cargo run --release -p agentpm-coordinator --bin agentpm-relay-bench [MB for one agent] [MB per agent of 32]`
use coordinator::launch::{spawn_recorded, LaunchPlan, Recorder};
use coordinator::runs::prices::PriceTable;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const MANY: usize = 32;

/// A Claude stream-json run of at least `bytes`: text answers, tool calls with their usage, tool results
/// carrying file contents (the long lines), now and then a rate-limit event; a `result` at the end.
fn claude_stream(bytes: usize) -> String {
    let file: String = (0..60)
        .map(|i| format!("    let value_{i} = compute(\\\"field {i}\\\", &config)?; // line {i} of the module\\n"))
        .collect();
    let mut s = String::with_capacity(bytes + 4096);
    s += r#"{"type":"system","subtype":"init","cwd":"/work/prj","session_id":"sess-bench","tools":["Bash","Read","Edit"],"mcp_servers":[{"name":"agent-pm","status":"connected"}],"model":"claude-sonnet-4-5","permissionMode":"default","apiKeySource":"none"}"#;
    s.push('\n');
    let mut t = 0u64;
    while s.len() < bytes {
        t += 1;
        s += &format!(
            r#"{{"type":"assistant","message":{{"id":"msg_{t}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"text","text":"Step {t}: reading the module to see where the parser keeps cut lines, then editing it so that interleaved events survive."}}],"usage":{{"input_tokens":4,"cache_creation_input_tokens":120,"cache_read_input_tokens":{},"output_tokens":40}}}},"parent_tool_use_id":null,"session_id":"sess-bench"}}"#,
            12000 + t
        );
        s.push('\n');
        s += &format!(
            r#"{{"type":"assistant","message":{{"id":"msg_{t}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"tu_{t}","name":"Read","input":{{"file_path":"/work/prj/src/parse/mod.rs"}}}}],"usage":{{"input_tokens":4,"cache_creation_input_tokens":120,"cache_read_input_tokens":{},"output_tokens":70}}}},"parent_tool_use_id":null,"session_id":"sess-bench"}}"#,
            12000 + t
        );
        s.push('\n');
        s += &format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"tu_{t}","type":"tool_result","content":[{{"type":"text","text":"{file}"}}]}}]}},"parent_tool_use_id":null,"session_id":"sess-bench"}}"#
        );
        s.push('\n');
        if t.is_multiple_of(50) {
            s += r#"{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1771390800,"rateLimitType":"five_hour"},"uuid":"u","session_id":"sess-bench"}"#;
            s.push('\n');
        }
    }
    s += r#"{"type":"result","subtype":"success","is_error":false,"duration_ms":40000,"duration_api_ms":30000,"num_turns":9,"result":"Done.","session_id":"sess-bench","total_cost_usd":1.5,"usage":{"input_tokens":120,"cache_creation_input_tokens":1600,"cache_read_input_tokens":115000,"output_tokens":790}}"#;
    s.push('\n');
    s
}

/// `n` relays at once, each a `cat` of `data` into its own log; wall time until every log is complete.
async fn relay_round(n: usize, data: &Path, out: &Path, prices: &Arc<PriceTable>) -> Duration {
    let r = coordinator::redact::Redactor::default();
    // What a real run masks: its passkey and the coordinator token.
    r.add("passkey-0123456789abcdef");
    r.add("coordinator-token-fedcba9876543210");
    let t = Instant::now();
    let mut runs = Vec::new();
    for i in 0..n {
        let plan = LaunchPlan {
            program: "/bin/cat".into(),
            args: vec![data.display().to_string()],
            env: vec![],
            cwd: out.to_path_buf(),
            stdin: String::new(),
            files: vec![],
        };
        let rec = Recorder {
            kind: "claude".into(),
            prices: prices.clone(),
        };
        let mut c = spawn_recorded(&plan, &out.join(format!("relay-{i}.log")), &r, Some(rec))
            .await
            .expect("spawn cat");
        runs.push(tokio::spawn(async move {
            let _ = c.child.wait().await;
            c.log_task.await.expect("relay task").expect("a summary")
        }));
    }
    for h in runs {
        let z = h.await.expect("join");
        // The relay really parsed the stream: the result's totals.
        assert_eq!(z.progress(0, prices).usage.output, 790);
    }
    t.elapsed()
}

/// `n` of `cat data | cat > file` at once: the pipe-and-file limit of this machine.
fn cat_round(n: usize, data: &Path, out: &Path) -> Duration {
    let t = Instant::now();
    let children: Vec<_> = (0..n)
        .map(|i| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "cat '{}' | cat > '{}'",
                    data.display(),
                    out.join(format!("cat-{i}.log")).display()
                ))
                .spawn()
                .expect("spawn sh")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    t.elapsed()
}

fn clean(out: &Path) {
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(e.path());
    }
}

/// Median and worst (slowest) of the rounds, as MB/s of `bytes` each.
fn stats(times: &mut [Duration], bytes: f64) -> (f64, f64) {
    times.sort();
    let mbps = |d: Duration| bytes / 1e6 / d.as_secs_f64();
    (mbps(times[times.len() / 2]), mbps(times[times.len() - 1]))
}

fn main() {
    let arg = |i: usize, d: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (one_mb, each_mb) = (arg(1, 256), arg(2, 16));
    let root = std::env::temp_dir().join(format!("agentpm-relay-bench-{}", std::process::id()));
    let out: PathBuf = root.join("out");
    std::fs::create_dir_all(&out).expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let prices = Arc::new(PriceTable::default());
    println!(
        "relay benchmark: {ROUNDS} rounds each, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (n, mb) in [(1usize, one_mb), (MANY, each_mb)] {
        let data = root.join(format!("stream-{n}.jsonl"));
        let text = claude_stream(mb << 20);
        std::fs::write(&data, &text).unwrap();
        let lines = text.lines().count();
        let bytes = text.len() as f64;
        drop(text);
        // Warm up: the page cache holds the data, the PATH lookup is done.
        rt.block_on(relay_round(1, &data, &out, &prices));
        clean(&out);
        let (mut relay, mut cat) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            cat.push(cat_round(n, &data, &out));
            clean(&out);
            relay.push(rt.block_on(relay_round(n, &data, &out, &prices)));
            clean(&out);
        }
        let total = bytes * n as f64;
        let (rm, rw) = stats(&mut relay, total);
        let (cm, cw) = stats(&mut cat, total);
        println!(
            "{n:>2} agent{} × {:.0} MB ({} lines each, {:.0} B/line): relay median {rm:.0} MB/s, worst {rw:.0} MB/s; cat median {cm:.0} MB/s, worst {cw:.0} MB/s; relay/cat {:.2} (median), {:.2} (worst)",
            if n == 1 { " " } else { "s" },
            bytes / 1e6,
            lines,
            bytes / lines as f64,
            rm / cm,
            rw / cw
        );
        let _ = std::fs::remove_file(&data);
    }
    let _ = std::fs::remove_dir_all(&root);
}
