//! Benchmark of the transcript view (issue 17), not a timed test: writes a Claude stream-json log of
//! N MB (default 100) that looks like a long real run (tool calls with inputs, tool results of a few KB,
//! assistant text, rate-limit notices, a failed tool call now and then), then, 5 times each, measures
//! - first screen: open lazily (index the first 4 MB) + the first window of 60 items (what the app does;
//!   it indexes the rest in the background),
//! - full index: open and index the whole file + the first window,
//! - jump to end: the last window,
//! - search for a term that occurs rarely, and "errors only",
//! - follow: 1 MB appended, then refresh (index only the new bytes) + the last window.
//!
//! Prints median and worst of each. The log is written first, so it is in the page cache (as a log a run
//! just wrote is). `cargo run --release -p agentpm-coordinator --bin agentpm-transcript-bench [MB] [dir]`.
use coordinator::runs::transcript::Transcript;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const SCREEN: usize = 60;

/// One turn of a long run: an assistant text, a tool call, its result (a few KB), every 50th a failure.
fn turn(i: usize, out: &mut Vec<u8>) {
    let sess = "sess-bench";
    let filler =
        "fn parse(line: &str) -> Option<Event> { serde_json::from_str(line).ok() } // reading the module as asked. ";
    let result: String = filler.repeat(8 + i % 40).replace('"', "'");
    writeln!(out, r#"{{"type":"assistant","message":{{"id":"msg_{i}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"text","text":"Step {i}: reading the next file and checking the parser against the tests before editing it."}}],"usage":{{"input_tokens":4,"cache_creation_input_tokens":200,"cache_read_input_tokens":{},"output_tokens":80}}}},"parent_tool_use_id":null,"session_id":"{sess}"}}"#, 12000 + i).unwrap();
    writeln!(out, r#"{{"type":"assistant","message":{{"id":"msg_{i}","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{{"type":"tool_use","id":"tu_{i}","name":"Read","input":{{"file_path":"/work/prj/src/module_{}.rs"}}}}],"usage":{{"input_tokens":4,"cache_creation_input_tokens":200,"cache_read_input_tokens":{},"output_tokens":120}}}},"parent_tool_use_id":null,"session_id":"{sess}"}}"#, i % 300, 12000 + i).unwrap();
    let (err, text) = if i % 50 == 49 {
        (
            true,
            format!("Error: ENOENT: no such file or directory, open module_{i}.rs"),
        )
    } else {
        (false, result)
    };
    writeln!(out, r#"{{"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"tu_{i}","type":"tool_result","content":[{{"type":"text","text":"{text}"}}],"is_error":{err}}}]}},"parent_tool_use_id":null,"session_id":"{sess}"}}"#).unwrap();
    if i % 1000 == 999 {
        writeln!(out, r#"{{"type":"rate_limit_event","rate_limit_info":{{"status":"allowed_warning","resetsAt":1771390800,"rateLimitType":"five_hour"}},"session_id":"{sess}"}}"#).unwrap();
    }
}

fn write_log(path: &Path, bytes: u64) -> usize {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(f, "[agentpm] 2026-12-03 10:00:00.000 start pid=1 cwd=/work/prj command=claude -p --output-format stream-json --verbose").unwrap();
    writeln!(f, r#"{{"type":"system","subtype":"init","cwd":"/work/prj","session_id":"sess-bench","tools":["Bash","Read","Edit"],"model":"claude-sonnet-4-5","permissionMode":"default","apiKeySource":"none"}}"#).unwrap();
    let (mut written, mut i, mut buf) = (0u64, 0usize, Vec::new());
    while written < bytes {
        buf.clear();
        turn(i, &mut buf);
        f.write_all(&buf).unwrap();
        written += buf.len() as u64;
        i += 1;
    }
    f.flush().unwrap();
    i
}

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} median {:>8.1} ms   worst {:>8.1} ms",
        ms(v[v.len() / 2]),
        ms(*v.last().unwrap())
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let dir = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("agentpm-transcript-bench-{}.log", std::process::id()));
    let t0 = Instant::now();
    let turns = write_log(&path, mb << 20);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "log: {} ({:.1} MB, {turns} turns) written in {:.1} s",
        path.display(),
        size as f64 / 1048576.0,
        t0.elapsed().as_secs_f64()
    );

    let (mut first, mut full, mut end, mut search, mut errors, mut follow) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut items = 0;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let tr = Transcript::open_lazy(&path).unwrap();
        let w = tr.window(0, SCREEN).unwrap();
        first.push(t.elapsed());
        assert_eq!(w.len(), SCREEN);

        let t = Instant::now();
        let tr = Transcript::open(&path).unwrap();
        let w = tr.window(0, SCREEN).unwrap();
        full.push(t.elapsed());
        assert_eq!(w.len(), SCREEN);
        items = tr.len();

        let t = Instant::now();
        let w = tr.window(tr.len() - SCREEN, SCREEN).unwrap();
        end.push(t.elapsed());
        assert_eq!(w.len(), SCREEN);

        let t = Instant::now();
        let m = tr.search("module_7799.rs", 500).unwrap();
        search.push(t.elapsed());
        assert!(!m.indices.is_empty());

        let t = Instant::now();
        let e = tr.errors(500).unwrap();
        errors.push(t.elapsed());
        assert!(!e.indices.is_empty());
    }
    let mut tr = Transcript::open(&path).unwrap();
    for r in 0..ROUNDS {
        let mut more = Vec::new();
        let mut i = 10_000_000 + r * 1000;
        while more.len() < 1 << 20 {
            turn(i, &mut more);
            i += 1;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&more)
            .unwrap();
        let t = Instant::now();
        tr.refresh().unwrap();
        let w = tr.window(tr.len() - SCREEN, SCREEN).unwrap();
        follow.push(t.elapsed());
        assert!(w.last().unwrap().text.len() > 10);
    }
    println!("{items} items; {ROUNDS} rounds each");
    stats("first screen (lazy open + first 60 items)", first);
    stats("full index (open + index all + 60 items)", full);
    stats("jump to end (last 60 items)", end);
    stats("search a rare term (bounded 500)", search);
    stats("errors only (bounded 500)", errors);
    stats("follow: 1 MB appended, refresh + last 60", follow);
    let _ = std::fs::remove_file(&path);
}
