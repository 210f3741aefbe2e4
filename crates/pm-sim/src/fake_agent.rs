//! A stand-in for an AI coding CLI. It reads its prompt from stdin (or argv, as the Python coordinator passes
//! it), authenticates with the passkey from its environment, completes one work item and exits.
//!
//! Modes (flags, env `FAKE_AGENT_MODE`, or the server's `sim_behavior`, which wins): succeed, `--fail`,
//! `--quota`, `--hang`, `--grandchild` (spawns `sleep 600` in its process group, then hangs), `--leak`
//! (prints its passkey: a misbehaving agent whose log must still be clean), `--orphan` (leaves a background
//! `sleep 600` that holds its stdout/stderr, like `cmd &` in a shell, then does its work and exits),
//! `--print-env` (prints the names of its environment variables), `--work-ms N`, `--linger-ms N` (after
//! `logout`, stay alive N ms before exiting, as a real CLI winding down does).
//! With `--output-format stream-json` (as Claude is launched) it also prints Claude Code's stream-json
//! lines: `system/init`, an `assistant` message per MCP call (tool_use, with usage), the `user` tool
//! results, a `rate_limit_event` on a quota, and the final `result` with turns, duration, usage and cost.
//! Like a real agent it follows `get_next_action`: a task session does its item, a chat session reads its
//! messages; both log out. "No valid purpose" (nothing to do) is an instruction to exit, not a failure.

mod progress;

use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Succeed,
    Fail(String),
    /// The message, and with a reset time (seconds from now) Claude's usage-limit event and text.
    Quota(String, Option<u64>),
    Hang,
    Grandchild,
    Leak,
}

struct Opts {
    mode: Mode,
    work_ms: u64,
    mcp_config: Option<String>,
    /// Leave a background process holding stdout/stderr behind, then exit normally.
    orphan: bool,
    /// Print the names (never the values) of the environment variables it got.
    print_env: bool,
    /// Stay alive this long after `logout`.
    linger_ms: u64,
    /// `--output-format stream-json`: print Claude's JSON events too.
    stream_json: bool,
}

fn parse(args: &[String]) -> Opts {
    let mut o = Opts {
        mode: Mode::Succeed,
        work_ms: 200,
        mcp_config: None,
        orphan: false,
        print_env: false,
        linger_ms: 0,
        stream_json: false,
    };
    if let Some(ms) = std::env::var("FAKE_AGENT_LINGER_MS").ok().and_then(|v| v.parse().ok()) {
        o.linger_ms = ms;
    }
    if let Ok(m) = std::env::var("FAKE_AGENT_MODE") {
        o.orphan = m == "orphan";
        o.mode = mode_from(&m, None);
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fail" => o.mode = Mode::Fail("Error: simulated failure".into()),
            "--quota" => o.mode = Mode::Quota("TerminalQuotaError: quota will reset after 0m5s".into(), None),
            "--hang" => o.mode = Mode::Hang,
            "--grandchild" => o.mode = Mode::Grandchild,
            "--leak" => o.mode = Mode::Leak,
            "--orphan" => o.orphan = true,
            "--print-env" => o.print_env = true,
            "--work-ms" => o.work_ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(o.work_ms),
            "--linger-ms" => o.linger_ms = it.next().and_then(|v| v.parse().ok()).unwrap_or(o.linger_ms),
            "--mcp-config" => o.mcp_config = it.next().cloned(),
            "--output-format" => o.stream_json = it.next().is_some_and(|f| f == "stream-json"),
            "--output-format=stream-json" => o.stream_json = true,
            // Flags of real CLIs that take a value: skip the value.
            "--model" | "-m" | "--add-dir" | "--debug-file" | "--max-turns" | "--include-directories" => {
                it.next();
            }
            _ => {}
        }
    }
    o
}

fn mode_from(name: &str, message: Option<&str>) -> Mode {
    match name {
        "fail" => Mode::Fail(message.unwrap_or("Error: simulated failure").into()),
        "quota" => Mode::Quota(
            message
                .unwrap_or("TerminalQuotaError: quota will reset after 0m5s")
                .into(),
            None,
        ),
        "hang" => Mode::Hang,
        "grandchild" => Mode::Grandchild,
        "leak" => Mode::Leak,
        _ => Mode::Succeed,
    }
}

/// Where the server is: the claude-style `--mcp-config` file, else `AGENTPM_SERVER`.
/// Where the agent reaches the PM server, as a real CLI reads its MCP config.
enum Target {
    /// A URL (with the Bearer token from the config's headers) or a socket path (`nc -U <socket>`).
    Direct(String, Option<String>),
    /// A stdio MCP server to start (our `mcp-bridge`): program, args, extra environment.
    Stdio(String, Vec<String>, Vec<(String, String)>),
}

fn server_address(o: &Opts) -> Result<Target, String> {
    if let Some(path) = &o.mcp_config {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("bad MCP config: {e}"))?;
        let e = &v["mcpServers"]["agent-pm"];
        if let Some(url) = e["url"].as_str() {
            let auth = e["headers"]["Authorization"].as_str().map(expand_env);
            return Ok(Target::Direct(
                url.to_string(),
                auth.map(|a| a.trim_start_matches("Bearer ").to_string()),
            ));
        }
        let args: Vec<String> = e["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if let Some(cmd) = e["command"].as_str() {
            if cmd == "nc" {
                return Ok(Target::Direct(args.last().cloned().unwrap_or_default(), None));
            }
            let env = e["env"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), expand_env(v.as_str()?))))
                .collect();
            return Ok(Target::Stdio(cmd.to_string(), args, env));
        }
        return Err("MCP config has no agent-pm server".into());
    }
    let (a, t) = server_from_env()?;
    Ok(Target::Direct(a, t))
}

fn server_from_env() -> Result<(String, Option<String>), String> {
    let addr = std::env::var("AGENTPM_SERVER").map_err(|_| "no --mcp-config and no AGENTPM_SERVER".to_string())?;
    Ok((addr, std::env::var("AGENTPM_COORDINATOR_TOKEN").ok()))
}

/// `${VAR}` → its value (as Claude Code does for MCP config headers).
fn expand_env(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(start) = out.find("${") {
        let Some(end) = out[start..].find('}') else { break };
        let var = &out[start + 2..start + end];
        let val = std::env::var(var).unwrap_or_default();
        out.replace_range(start..start + end + 1, &val);
    }
    out
}

enum Conn {
    Unix(BufReader<tokio::net::UnixStream>),
    /// Through a stdio MCP server (the bridge): JSON-RPC lines on its stdin/stdout.
    Stdio {
        _child: tokio::process::Child,
        stdin: tokio::process::ChildStdin,
        stdout: BufReader<tokio::process::ChildStdout>,
    },
    Http {
        client: reqwest::Client,
        url: String,
        bearer: Option<String>,
    },
}

impl Conn {
    /// Like a real MCP client, give up on a server that does not answer.
    async fn call(&mut self, id: &mut u64, tool: &str, args: Value) -> Result<Value, String> {
        let r = match tokio::time::timeout(Duration::from_secs(5), self.call_once(id, tool, args)).await {
            Ok(r) => r,
            Err(_) => Err(format!("{tool}: no reply from the server within 5 s")),
        };
        with_stream(|s| s.tool(tool, r.as_ref().err()));
        r
    }

    async fn call_once(&mut self, id: &mut u64, tool: &str, args: Value) -> Result<Value, String> {
        *id += 1;
        let req =
            json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}, "id": *id});
        let env: Value = match self {
            Conn::Unix(s) => {
                let mut line = serde_json::to_vec(&req).unwrap();
                line.push(b'\n');
                s.get_mut().write_all(&line).await.map_err(|e| e.to_string())?;
                let mut buf = String::new();
                s.read_line(&mut buf).await.map_err(|e| e.to_string())?;
                serde_json::from_str(&buf).map_err(|e| format!("bad reply to {tool}: {e}"))?
            }
            Conn::Stdio { stdin, stdout, .. } => {
                let mut line = serde_json::to_vec(&req).unwrap();
                line.push(b'\n');
                stdin.write_all(&line).await.map_err(|e| e.to_string())?;
                let mut buf = String::new();
                if stdout.read_line(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                    return Err(format!("{tool}: the MCP server closed its output"));
                }
                let v: Value = serde_json::from_str(&buf).map_err(|e| format!("bad reply to {tool}: {e}"))?;
                if let Some(m) = v["error"]["message"].as_str() {
                    return Err(format!("{tool}: {m}"));
                }
                v
            }
            Conn::Http { client, url, bearer } => {
                let mut r = client.post(url.as_str()).json(&req);
                if let Some(b) = bearer {
                    r = r.bearer_auth(b);
                }
                let resp = r.send().await.map_err(|e| e.to_string())?;
                if !resp.status().is_success() {
                    return Err(format!("{tool}: HTTP {}", resp.status()));
                }
                resp.json().await.map_err(|e| e.to_string())?
            }
        };
        let result = &env["result"];
        let text = result["content"][0]["text"].as_str().unwrap_or("");
        if result["isError"].as_bool() == Some(true) {
            return Err(format!("{tool}: {text}"));
        }
        Ok(serde_json::from_str(text).unwrap_or_else(|_| json!({"text": text})))
    }
}

/// The whole CLI; returns the exit code.
pub fn run(args: Vec<String>) -> i32 {
    // The providers page's "Test" asks every CLI for its version.
    if args.iter().any(|a| a == "--version") {
        println!("fake-agent {} (AgentPM simulator)", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start: {e}");
            return 1;
        }
    };
    let started = std::time::Instant::now();
    let code = rt.block_on(main(args));
    STREAM.with(|s| {
        if let Some(s) = s.borrow_mut().take() {
            s.result(code, started.elapsed());
        }
    });
    code
}

thread_local! {
    /// The stream-json writer of the run on this thread (the runtime is single-threaded), if asked for.
    static STREAM: RefCell<Option<StreamJson>> = const { RefCell::new(None) };
}

fn with_stream(f: impl FnOnce(&mut StreamJson)) {
    STREAM.with(|s| {
        if let Some(s) = s.borrow_mut().as_mut() {
            f(s)
        }
    })
}

/// Claude Code's stream-json, with made-up but consistent token counts and a cost at Sonnet 4.5 prices.
struct StreamJson {
    session: String,
    model: String,
    prompt_tokens: u64,
    turns: u32,
    /// input, output, cache read, cache write.
    usage: [u64; 4],
    text: String,
    error: Option<String>,
}

fn emit(v: Value) {
    println!("{v}");
}

impl StreamJson {
    fn new(prompt_len: usize) -> StreamJson {
        let session = format!(
            "fake-{:x}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        );
        let model = std::env::var("AGENTPM_MODEL")
            .ok()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "claude-sonnet-4-5".into());
        let s = StreamJson {
            session,
            model,
            prompt_tokens: prompt_len as u64 / 4 + 500,
            turns: 0,
            usage: [0; 4],
            text: String::new(),
            error: None,
        };
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        emit(
            json!({"type": "system", "subtype": "init", "cwd": cwd, "session_id": s.session, "tools": ["Bash", "Read", "Edit"], "mcp_servers": [{"name": "agent-pm", "status": "connected"}], "model": s.model, "permissionMode": "default", "apiKeySource": "none"}),
        );
        s
    }

    /// One model call: the first writes the prompt to the cache, later ones read it.
    fn call_usage(&mut self, output: u64) -> Value {
        let first = self.turns == 0;
        self.turns += 1;
        let u = if first {
            [12, output, 0, self.prompt_tokens]
        } else {
            [4, output, self.prompt_tokens + 40 * self.turns as u64, 40]
        };
        for (t, n) in self.usage.iter_mut().zip(u) {
            *t += n;
        }
        json!({"input_tokens": u[0], "output_tokens": u[1], "cache_read_input_tokens": u[2], "cache_creation_input_tokens": u[3]})
    }

    fn tool(&mut self, tool: &str, err: Option<&String>) {
        let usage = self.call_usage(30);
        let id = format!("toolu_{:03}", self.turns);
        emit(
            json!({"type": "assistant", "message": {"id": format!("msg_{:03}", self.turns), "type": "message", "role": "assistant", "model": self.model, "content": [{"type": "tool_use", "id": id, "name": format!("mcp__agent-pm__{tool}"), "input": {}}], "usage": usage}, "parent_tool_use_id": null, "session_id": self.session}),
        );
        let text = err.cloned().unwrap_or_else(|| "ok".into());
        emit(
            json!({"type": "user", "message": {"role": "user", "content": [{"tool_use_id": id, "type": "tool_result", "content": [{"type": "text", "text": text}], "is_error": err.is_some()}]}, "parent_tool_use_id": null, "session_id": self.session}),
        );
    }

    /// A tool of the CLI's own (Bash, Read, Edit) and its result.
    fn local_tool(&mut self, name: &str, input: Value, result: &str, output_tokens: u64) {
        let usage = self.call_usage(output_tokens);
        let id = format!("toolu_{:03}", self.turns);
        emit(
            json!({"type": "assistant", "message": {"id": format!("msg_{:03}", self.turns), "type": "message", "role": "assistant", "model": self.model, "content": [{"type": "tool_use", "id": id, "name": name, "input": input}], "usage": usage}, "parent_tool_use_id": null, "session_id": self.session}),
        );
        emit(
            json!({"type": "user", "message": {"role": "user", "content": [{"tool_use_id": id, "type": "tool_result", "content": result, "is_error": false}]}, "parent_tool_use_id": null, "session_id": self.session}),
        );
    }

    fn say(&mut self, text: &str) {
        let usage = self.call_usage(12);
        emit(
            json!({"type": "assistant", "message": {"id": format!("msg_{:03}", self.turns), "type": "message", "role": "assistant", "model": self.model, "content": [{"type": "text", "text": text}], "usage": usage}, "parent_tool_use_id": null, "session_id": self.session}),
        );
        self.text = text.to_string();
    }

    fn rate_limited(&mut self, resets_in_secs: u64) {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + resets_in_secs;
        emit(
            json!({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "resetsAt": at, "rateLimitType": "five_hour"}, "session_id": self.session}),
        );
        self.error = Some(format!("Claude AI usage limit reached|{at}"));
    }

    fn result(self, code: i32, elapsed: Duration) {
        let [i, o, cr, cw] = self.usage;
        let cost = (i as f64 * 3.0 + o as f64 * 15.0 + cr as f64 * 0.3 + cw as f64 * 3.75) / 1e6;
        let is_error = code != 0;
        let error = self
            .error
            .unwrap_or_else(|| format!("fake-agent exited with code {code}"));
        let text = if is_error { error.clone() } else { self.text };
        let mut v = json!({"type": "result", "subtype": if is_error { "error_during_execution" } else { "success" }, "is_error": is_error, "duration_ms": elapsed.as_millis() as u64, "duration_api_ms": elapsed.as_millis() as u64 / 2, "num_turns": self.turns, "result": text, "session_id": self.session, "total_cost_usd": cost, "usage": {"input_tokens": i, "output_tokens": o, "cache_read_input_tokens": cr, "cache_creation_input_tokens": cw, "service_tier": "standard"}, "permission_denials": []});
        if is_error {
            v["errors"] = json!([error]);
        }
        emit(v);
    }
}

async fn main(args: Vec<String>) -> i32 {
    let mut o = parse(&args);
    // Read the prompt (stdin is closed by the coordinator after writing it).
    let prompt = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_to_string(&mut s);
        s
    });
    let prompt = tokio::time::timeout(Duration::from_secs(5), prompt)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    println!("fake-agent: received a prompt of {} bytes", prompt.len());
    if o.stream_json {
        STREAM.with(|s| *s.borrow_mut() = Some(StreamJson::new(prompt.len())));
    }
    if o.print_env {
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        names.sort();
        println!("fake-agent env: {}", names.join(" "));
    }
    if o.orphan {
        // Like `cmd &` in a shell: the background process inherits stdout/stderr and outlives us.
        match std::process::Command::new("sleep")
            .arg("600")
            .stdin(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => println!("orphan pid {}", c.id()),
            Err(e) => println!("Error: cannot spawn a background process: {e}"),
        }
    }
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let (agent, passkey, project) = (env("AGENT_ID"), env("AGENT_PASSKEY"), env("PROJECT_ID"));
    let target = match server_address(&o) {
        Ok(a) => a,
        Err(e) => {
            println!("Error: {e}");
            return 2;
        }
    };
    // Through a bridge the credentials are filled in for us (as for a real model, which never sees them).
    let bridged = matches!(target, Target::Stdio(..));
    let mut conn = match target {
        Target::Direct(address, bearer) if address.starts_with("http") => Conn::Http {
            client: reqwest::Client::new(),
            url: address.clone(),
            bearer,
        },
        Target::Direct(address, _) => match tokio::net::UnixStream::connect(&address).await {
            Ok(s) => Conn::Unix(BufReader::new(s)),
            Err(e) => {
                println!("Error: cannot connect to {address}: {e}");
                return 2;
            }
        },
        Target::Stdio(cmd, args, env) => {
            let spawned = tokio::process::Command::new(&cmd)
                .args(&args)
                .envs(env)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn();
            match spawned {
                Ok(mut c) => {
                    let (stdin, stdout) = (c.stdin.take().expect("piped"), c.stdout.take().expect("piped"));
                    Conn::Stdio {
                        _child: c,
                        stdin,
                        stdout: BufReader::new(stdout),
                    }
                }
                Err(e) => {
                    println!("Error: cannot start the MCP server {cmd}: {e}");
                    return 2;
                }
            }
        }
    };
    let mut id = 0u64;
    let creds = if bridged {
        json!({"pid": std::process::id()})
    } else {
        json!({"agent_id": agent, "passkey": passkey, "project_id": project, "pid": std::process::id()})
    };
    let auth = match conn.call(&mut id, "authenticate", creds).await {
        Ok(v) => v,
        Err(e) => {
            println!("Error: {e}");
            return 1;
        }
    };
    if auth["success"].as_bool() != Some(true)
        && auth["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("No valid purpose"))
    {
        println!(
            "fake-agent: the server has no work for me ({}); exiting",
            auth["error"].as_str().unwrap_or("")
        );
        return 0;
    }
    if auth["success"].as_bool() != Some(true) {
        println!(
            "Error: authentication failed: {}",
            auth["error"].as_str().unwrap_or("unknown")
        );
        return 1;
    }
    let session = auth["session_token"].as_str().unwrap_or("").to_string();
    if let Some(b) = auth
        .get("sim_behavior")
        .filter(|b| b["mode"].as_str().is_some_and(|m| m != "succeed"))
    {
        o.mode = mode_from(b["mode"].as_str().unwrap_or(""), b["message"].as_str());
    }
    if let (Mode::Quota(_, reset @ None), Some(secs)) = (&mut o.mode, auth["sim_behavior"]["resets_in_secs"].as_u64()) {
        *reset = Some(secs);
    }
    // A failing run told how long to work first works visibly, then fails (the demo's failing agents).
    let work_before_failing = auth["sim_behavior"]["work_ms"].as_u64();
    if let Some(ms) = work_before_failing {
        o.work_ms = ms;
    }
    if let Some(ms) = auth["sim_behavior"]["linger_ms"].as_u64() {
        o.linger_ms = ms;
    }
    println!("fake-agent: authenticated as {agent} on {project}");
    match &o.mode {
        Mode::Fail(msg) => {
            println!("working…");
            if let Some(ms) = work_before_failing {
                progress::work(ms, &project, o.stream_json).await;
            }
            println!("{msg}");
            with_stream(|s| s.error = Some(msg.clone()));
            return 1;
        }
        Mode::Quota(msg, reset) => {
            if let Some(ms) = work_before_failing {
                progress::work(ms, &project, o.stream_json).await;
            }
            match reset {
                // Claude Code's own words for it, with the reset as a Unix time.
                Some(secs) => {
                    let at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                        + *secs;
                    println!("Claude AI usage limit reached|{at}");
                    with_stream(|s| s.rate_limited(*secs));
                }
                None => {
                    println!("{msg}");
                    with_stream(|s| s.rate_limited(5));
                }
            }
            return 1;
        }
        Mode::Hang => loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        },
        Mode::Grandchild => {
            match std::process::Command::new("sleep").arg("600").spawn() {
                Ok(c) => println!("grandchild pid {}", c.id()),
                Err(e) => println!("Error: cannot spawn a grandchild: {e}"),
            }
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        Mode::Leak => println!("my passkey is {passkey} (an agent should never print this)"),
        Mode::Succeed => {}
    }
    let s = json!(session);
    let code = match conn.call(&mut id, "get_next_action", json!({"session_token": s})).await {
        Ok(next) if next["action"] == "get_pending_messages" => chat(&mut conn, &mut id, &s).await,
        Ok(next) if next["action"] == "execute" => task(&mut conn, &mut id, &s, &o).await,
        Ok(next) => {
            println!(
                "fake-agent: nothing to do ({}); logging out",
                next["action"].as_str().unwrap_or("?")
            );
            0
        }
        Err(e) => {
            println!("Error: {e}");
            return 1;
        }
    };
    if code != 0 {
        return code;
    }
    with_stream(|st| {
        if st.text.is_empty() {
            st.say("Nothing left to do; logging out.")
        }
    });
    if let Err(e) = conn.call(&mut id, "logout", json!({"session_token": s})).await {
        println!("Error: logout failed: {e}");
        return 1;
    }
    if o.linger_ms > 0 {
        println!("fake-agent: logged out; exiting in {} ms", o.linger_ms);
        tokio::time::sleep(Duration::from_millis(o.linger_ms)).await;
    }
    0
}

/// A chat session: read the messages (that is what makes them read), answer once.
async fn chat(conn: &mut Conn, id: &mut u64, s: &Value) -> i32 {
    match conn.call(id, "get_pending_messages", json!({"session_token": s})).await {
        Ok(v) => {
            let n = v["messages"].as_array().map_or(0, Vec::len);
            println!("fake-agent: read {n} chat message(s)");
            with_stream(|st| st.say(&format!("Read {n} chat message(s).")));
        }
        Err(e) => {
            println!("Error: {e}");
            return 1;
        }
    }
    0
}

/// A task session: one work item, reported like the real prompt asks.
async fn task(conn: &mut Conn, id: &mut u64, s: &Value, o: &Opts) -> i32 {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let _ = conn
        .call(
            id,
            "report_model",
            json!({"session_token": s, "provider": "fake", "model_id": env("AGENTPM_MODEL")}),
        )
        .await;
    let task = match conn.call(id, "get_my_task", json!({"session_token": s})).await {
        Ok(v) => v["task"]["id"].as_str().map(str::to_string),
        Err(e) => {
            println!("Error: {e}");
            return 1;
        }
    };
    let Some(task) = task else {
        println!("fake-agent: no task; logging out");
        return 0;
    };
    let exl = conn
        .call(
            id,
            "report_execution_start",
            json!({"session_token": s, "task_id": task}),
        )
        .await
        .ok()
        .and_then(|v| v["execution_log_id"].as_str().map(str::to_string));
    println!("fake-agent: working on {task} for {} ms", o.work_ms);
    progress::work(o.work_ms, &task, o.stream_json).await;
    println!("fake-agent: {task} done");
    with_stream(|st| st.say(&format!("Finished task {task}.")));
    if let Some(exl) = exl {
        let _ = conn.call(id, "report_execution_complete", json!({"session_token": s, "execution_log_id": exl, "exit_code": 0, "duration_seconds": o.work_ms as f64 / 1000.0})).await;
    }
    if let Err(e) = conn
        .call(id, "report_completed", json!({"session_token": s, "result": "success"}))
        .await
    {
        println!("Error: report_completed failed: {e}");
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignores_real_cli_flags_and_reads_modes() {
        let o = parse(&[
            "--dangerously-skip-permissions".into(),
            "--model".into(),
            "x".into(),
            "-p".into(),
            "--quota".into(),
            "--work-ms".into(),
            "7".into(),
        ]);
        assert!(matches!(o.mode, Mode::Quota(_, None)));
        assert_eq!(o.work_ms, 7);
        let o = parse(&["--orphan".into(), "--print-env".into()]);
        assert!(o.orphan && o.print_env && o.mode == Mode::Succeed && !o.stream_json);
        let o = parse(&[
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ]);
        assert!(o.stream_json && o.mode == Mode::Succeed);
        assert!(!parse(&["--output-format".into(), "text".into()]).stream_json);
    }

    #[test]
    fn expands_env_in_headers() {
        std::env::set_var("FAKE_AGENT_T", "abc");
        assert_eq!(expand_env("Bearer ${FAKE_AGENT_T}"), "Bearer abc");
    }
}
