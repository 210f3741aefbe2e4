//! `agentpm-coordinator mcp-bridge`: the agent's `agent-pm` MCP server (stdio, one JSON-RPC message a line).
//!
//! It forwards every message to the PM server (Unix socket or HTTP `POST /mcp`) and fills the credentials in
//! on the way: `authenticate` gets `agent_id`, `project_id` and `passkey` from the bridge's own environment,
//! and HTTP requests get the coordinator token as the Bearer header. The model calls `authenticate` with no
//! secret, so no secret is ever part of the conversation sent to a model provider. `tools/list` is rewritten
//! so that `authenticate` asks the model for nothing, and replies are masked in case a server echoes a secret.
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// Environment the bridge reads (set by the launch plan for the agent, inherited through the CLI).
pub const ENV_SERVER: &str = "AGENTPM_SERVER";
pub const ENV_AGENT: &str = "AGENT_ID";
pub const ENV_PROJECT: &str = "PROJECT_ID";
pub const ENV_PASSKEY: &str = "AGENT_PASSKEY";
/// Every variable the bridge needs, for CLIs that pass MCP servers only the variables they are told to.
pub const ENV_VARS: &[&str] = &[
    ENV_SERVER,
    ENV_AGENT,
    ENV_PROJECT,
    ENV_PASSKEY,
    crate::launch::TOKEN_ENV,
];

/// The credentials the bridge injects. Never printed (Debug is hand-written).
#[derive(Clone)]
pub struct Credentials {
    pub agent_id: String,
    pub project_id: String,
    pub passkey: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("agent_id", &self.agent_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// Arguments of `authenticate` that the bridge owns: the model must not be asked for them.
const INJECTED: &[&str] = &["agent_id", "project_id", "passkey"];

/// A client→server message with the credentials filled in (only `tools/call` of `authenticate` changes).
pub fn inject(mut msg: Value, c: &Credentials) -> Value {
    let is_auth =
        msg["method"] == "tools/call" && msg.pointer("/params/name").and_then(Value::as_str) == Some("authenticate");
    if is_auth {
        let params = msg["params"].as_object_mut().expect("tools/call params is an object");
        let args = params.entry("arguments").or_insert_with(|| json!({}));
        if !args.is_object() {
            *args = json!({});
        }
        let a = args.as_object_mut().expect("object");
        a.insert("agent_id".into(), c.agent_id.clone().into());
        a.insert("project_id".into(), c.project_id.clone().into());
        a.insert("passkey".into(), c.passkey.clone().into());
    }
    msg
}

/// A server→client reply as the model may see it: `authenticate` takes no credentials in `tools/list`, and a
/// secret the server echoed anywhere is masked.
pub fn filter_reply(mut reply: Value, c: &Credentials) -> Value {
    if let Some(tools) = reply.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
        for t in tools.iter_mut().filter(|t| t["name"] == "authenticate") {
            strip_schema(t);
        }
    }
    let text = reply.to_string();
    let secrets = std::iter::once(c.passkey.as_str())
        .chain(c.token.as_deref())
        .filter(|s| s.len() >= 4);
    let mut masked = text.clone();
    for s in secrets {
        // Secrets are matched as they appear inside a JSON string (escaped).
        let esc = serde_json::to_string(s).unwrap_or_default();
        masked = masked.replace(esc.trim_matches('"'), crate::redact::MASK);
    }
    if masked != text {
        reply = serde_json::from_str(&masked).unwrap_or(reply);
    }
    reply
}

fn strip_schema(tool: &mut Value) {
    let schema = tool
        .as_object_mut()
        .and_then(|t| t.get_mut("inputSchema"))
        .and_then(Value::as_object_mut);
    let Some(schema) = schema else { return };
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for k in INJECTED {
            props.remove(*k);
        }
    }
    if let Some(req) = schema.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| !r.as_str().is_some_and(|r| INJECTED.contains(&r)));
    }
    let d =
        "Authenticate this agent instance. Call it with no arguments: the agent-pm server supplies the credentials.";
    tool["description"] = d.into();
}

/// Where the bridge forwards to.
enum Upstream {
    Unix {
        path: String,
        conn: Option<BufReader<tokio::net::UnixStream>>,
    },
    Http {
        client: reqwest::Client,
        url: String,
    },
}

/// How long one HTTP request may take: the server long-polls `get_next_action` for up to 45 s (§1.4).
const HTTP_TIMEOUT: Duration = Duration::from_secs(120);

impl Upstream {
    fn new(address: &str) -> Result<Upstream, String> {
        if address.starts_with("http://") || address.starts_with("https://") {
            let client = reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
            Ok(Upstream::Http {
                client,
                url: address.to_string(),
            })
        } else if address.is_empty() {
            Err(format!(
                "{ENV_SERVER} is not set: the bridge does not know where the PM server is"
            ))
        } else {
            Ok(Upstream::Unix {
                path: address.to_string(),
                conn: None,
            })
        }
    }

    /// Send one message; the reply, or None for a notification.
    async fn send(&mut self, msg: &Value, c: &Credentials) -> Result<Option<Value>, String> {
        let notification = msg.get("id").is_none();
        match self {
            Upstream::Unix { path, conn } => {
                // One connection carries many requests (the server serves a connection until EOF); reconnect
                // once if the server closed it in between.
                for attempt in 0..2 {
                    if conn.is_none() {
                        let s = tokio::net::UnixStream::connect(&*path)
                            .await
                            .map_err(|e| format!("cannot connect to the PM server at {path}: {e}"))?;
                        *conn = Some(BufReader::new(s));
                    }
                    let s = conn.as_mut().expect("connected");
                    let mut line = serde_json::to_vec(msg).expect("json");
                    line.push(b'\n');
                    let wrote = s.get_mut().write_all(&line).await;
                    if notification {
                        return wrote.map(|_| None).map_err(|e| format!("cannot write to {path}: {e}"));
                    }
                    let mut buf = String::new();
                    let read = match wrote {
                        Ok(()) => s.read_line(&mut buf).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    match read {
                        Ok(n) if n > 0 => {
                            return serde_json::from_str(&buf)
                                .map(Some)
                                .map_err(|e| format!("the PM server at {path} sent a reply that is not JSON ({e})"))
                        }
                        Ok(_) | Err(_) if attempt == 0 => *conn = None,
                        Ok(_) => return Err(format!("the PM server at {path} closed the connection without a reply")),
                        Err(e) => return Err(format!("cannot read from {path}: {e}")),
                    }
                }
                unreachable!("two attempts")
            }
            Upstream::Http { client, url } => {
                let mut r = client.post(url.as_str()).json(msg);
                if let Some(t) = &c.token {
                    r = r.bearer_auth(t);
                }
                let resp = r
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach the PM server at {url}: {e}"))?;
                let status = resp.status();
                let body = resp
                    .text()
                    .await
                    .map_err(|e| format!("cannot read the reply of {url}: {e}"))?;
                if !status.is_success() {
                    return Err(format!(
                        "the PM server at {url} answered HTTP {status}: {}",
                        body.chars().take(200).collect::<String>()
                    ));
                }
                // The HTTP transport acknowledges notifications with an id-less body: not for the client.
                if notification {
                    return Ok(None);
                }
                serde_json::from_str(&body)
                    .map(Some)
                    .map_err(|e| format!("the PM server at {url} sent a reply that is not JSON ({e})"))
            }
        }
    }
}

fn rpc_error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Serve one stdio session: messages from `input`, replies to `output`, until EOF.
pub async fn serve<R, W>(input: R, mut output: W, address: &str, c: &Credentials) -> Result<(), String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut upstream = Upstream::new(address)?;
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await.map_err(|e| format!("cannot read stdin: {e}"))? {
        if line.trim().is_empty() {
            continue;
        }
        let msg: Value = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(_) => {
                write_line(
                    &mut output,
                    &json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "Parse error"}}),
                )
                .await?;
                continue;
            }
        };
        let id = msg.get("id").cloned();
        let reply = match upstream.send(&inject(msg, c), c).await {
            Ok(Some(r)) => Some(filter_reply(r, c)),
            Ok(None) => None,
            // Tell the client instead of leaving it waiting; the message names the server, never a secret.
            Err(e) => id.as_ref().map(|id| rpc_error(id, -32603, &e)),
        };
        if let Some(r) = reply {
            write_line(&mut output, &r).await?;
        }
    }
    Ok(())
}

async fn write_line<W: AsyncWrite + Unpin>(w: &mut W, v: &Value) -> Result<(), String> {
    let mut b = serde_json::to_vec(v).expect("json");
    b.push(b'\n');
    w.write_all(&b).await.map_err(|e| format!("cannot write stdout: {e}"))?;
    w.flush().await.map_err(|e| format!("cannot write stdout: {e}"))
}

/// Credentials and server address from the environment; a clear error naming the missing variable.
pub fn from_env() -> Result<(String, Credentials), String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let need = |k: &str| {
        var(k).ok_or_else(|| format!("mcp-bridge: {k} is not set (the coordinator sets it for every agent it starts)"))
    };
    let address = need(ENV_SERVER)?;
    let c = Credentials {
        agent_id: need(ENV_AGENT)?,
        project_id: need(ENV_PROJECT)?,
        passkey: need(ENV_PASSKEY)?,
        token: var(crate::launch::TOKEN_ENV),
    };
    Ok((address, c))
}

/// The `mcp-bridge` subcommand: stdin/stdout until EOF. Errors go to stderr (the CLI's MCP log), exit 1.
pub fn run() -> i32 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-bridge: cannot start: {e}");
            return 1;
        }
    };
    let r = rt.block_on(async {
        let (address, c) = from_env()?;
        serve(tokio::io::stdin(), tokio::io::stdout(), &address, &c).await
    });
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// The bridge's command line as agents' MCP configs name it: this program (or `AGENTPM_MCP_BRIDGE`, for
/// an engine hosted by another binary, e.g. a test) with `mcp-bridge`.
pub fn command() -> (String, Vec<String>) {
    let exe = std::env::var("AGENTPM_MCP_BRIDGE")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::current_exe().ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| "agentpm-coordinator".to_string());
    (exe, vec!["mcp-bridge".to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            agent_id: "agt_a".into(),
            project_id: "prj_1".into(),
            passkey: "PK-secret-1234".into(),
            token: Some("TOK-secret-5678".into()),
        }
    }

    #[test]
    fn authenticate_gets_the_credentials_and_nothing_else_changes() {
        let m = inject(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "authenticate", "arguments": {"passkey": "guess"}}}),
            &creds(),
        );
        assert_eq!(
            m["params"]["arguments"],
            json!({"agent_id": "agt_a", "project_id": "prj_1", "passkey": "PK-secret-1234"})
        );
        let m = inject(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "authenticate"}}),
            &creds(),
        );
        assert_eq!(m["params"]["arguments"]["passkey"], "PK-secret-1234");
        let other = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "get_next_action", "arguments": {"session_token": "s"}}});
        assert_eq!(inject(other.clone(), &creds()), other);
    }

    #[test]
    fn tools_list_asks_for_no_credentials_and_secrets_are_masked() {
        let reply = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": [
            {"name": "authenticate", "inputSchema": {"type": "object", "properties": {"agent_id": {}, "passkey": {}, "project_id": {}, "pid": {}}, "required": ["agent_id", "passkey", "project_id"]}},
            {"name": "logout", "description": "echo PK-secret-1234 and TOK-secret-5678", "inputSchema": {"type": "object"}}
        ]}});
        let r = filter_reply(reply, &creds());
        assert_eq!(r["result"]["tools"][0]["inputSchema"]["properties"], json!({"pid": {}}));
        assert_eq!(r["result"]["tools"][0]["inputSchema"]["required"], json!([]));
        let s = r.to_string();
        assert!(!s.contains("PK-secret-1234") && !s.contains("TOK-secret-5678"), "{s}");
    }

    /// A whole agent session through the bridge against the real simulator, on both transports.
    #[tokio::test]
    async fn a_session_through_the_bridge_against_the_simulator() {
        for http in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let workload = pm_sim::Workload {
                projects: 1,
                agents: 1,
                items_per_pair: 1,
                provider: "claude".into(),
                model: None,
            };
            let mut cfg = pm_sim::SimConfig::new(workload, dir.path().join("projects"));
            cfg.socket_path = Some(dir.path().join("mcp.sock"));
            if http {
                cfg.http_addr = Some("127.0.0.1:0".parse().unwrap());
            }
            let sim = pm_sim::Simulator::start(cfg).await.unwrap();
            let (agent, project) = (sim.agent_ids()[0].clone(), sim.project_ids()[0].clone());
            let c = Credentials {
                agent_id: agent.clone(),
                project_id: project,
                passkey: sim.passkey(&agent),
                token: Some(sim.coordinator_token()),
            };
            let address = if http {
                sim.mcp_url().unwrap()
            } else {
                sim.socket_path().unwrap().display().to_string()
            };
            let (mut client, server_side) = tokio::io::duplex(1 << 16);
            let (r, w) = tokio::io::split(server_side);
            let c2 = c.clone();
            let bridge = tokio::spawn(async move { serve(r, w, &address, &c2).await });
            let (cr, mut cw) = tokio::io::split(&mut client);
            let mut replies = BufReader::new(cr).lines();
            let call = |v: Value| {
                let mut b = serde_json::to_vec(&v).unwrap();
                b.push(b'\n');
                b
            };
            let msgs = [
                call(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})),
                call(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
                call(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})),
                call(
                    json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "authenticate", "arguments": {}}}),
                ),
            ];
            for m in &msgs {
                cw.write_all(m).await.unwrap();
            }
            let mut got = Vec::new();
            for _ in 0..3 {
                let l = tokio::time::timeout(Duration::from_secs(5), replies.next_line())
                    .await
                    .expect("a reply")
                    .unwrap()
                    .unwrap();
                got.push(serde_json::from_str::<Value>(&l).unwrap());
            }
            assert_eq!(
                got.iter().map(|r| r["id"].clone()).collect::<Vec<_>>(),
                vec![json!(1), json!(2), json!(3)],
                "http={http}: {got:?}"
            );
            let auth: Value = serde_json::from_str(got[2]["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(auth["success"], true, "http={http}: {auth}");
            let session = auth["session_token"].as_str().unwrap();
            cw.write_all(&call(json!({"jsonrpc": "2.0", "id": "n", "method": "tools/call", "params": {"name": "get_next_action", "arguments": {"session_token": session}}}))).await.unwrap();
            let l = replies.next_line().await.unwrap().unwrap();
            assert!(l.contains("execute"), "http={http}: {l}");
            for l in got.iter().map(Value::to_string) {
                assert!(!l.contains(&c.passkey), "{l}");
            }
            drop(cw);
            drop(replies);
            drop(client);
            bridge.await.unwrap().unwrap();
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            sim.shutdown().await;
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_json_rpc_error_naming_it() {
        let (mut client, server_side) = tokio::io::duplex(4096);
        let (r, w) = tokio::io::split(server_side);
        let bridge = tokio::spawn(async move { serve(r, w, "/nonexistent/mcp.sock", &creds()).await });
        client
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\"}\nnot json\n")
            .await
            .unwrap();
        let (cr, _cw) = tokio::io::split(client);
        let mut lines = BufReader::new(cr).lines();
        let e: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(e["id"], 7);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/nonexistent/mcp.sock"),
            "{e}"
        );
        let p: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(p["error"]["code"], -32700);
        drop(lines);
        bridge.abort();
    }

    #[test]
    fn debug_never_shows_secrets() {
        let d = format!("{:?}", creds());
        assert!(!d.contains("PK-secret") && !d.contains("TOK-secret"), "{d}");
    }
}
