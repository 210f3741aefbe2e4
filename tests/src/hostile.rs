//! A hostile PM server for the security tests: it speaks the coordinator protocol (Unix socket, and HTTP with
//! the dynamic-configuration endpoint) well enough to be believed, and answers what an attacker would.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What the server answers. Every field can be changed while it runs.
#[derive(Clone, Default)]
pub struct Script {
    pub project_dir: PathBuf,
    pub agents: Vec<String>,
    /// The first `get_agent_action` answer per agent (later ones are `hold`).
    pub first_action: Value,
    /// Every answer to `get_agent_action` is `first_action` (the server keeps granting starts).
    pub always: bool,
    /// Body of `GET /api/coordinator/config` (HTTP only).
    pub remote_config: Value,
    /// When set, the text answered to `list_active_projects_with_agents` verbatim (e.g. a huge list).
    pub projects_text: Option<Arc<String>>,
}

#[derive(Clone)]
pub struct Hostile {
    pub socket: PathBuf,
    pub http: Option<String>,
    script: Arc<Mutex<Script>>,
    /// Every tool call received: (tool, arguments).
    pub calls: Arc<Mutex<Vec<(String, Value)>>>,
    answered: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Hostile {
    pub async fn start(dir: &Path, script: Script, http: bool) -> Hostile {
        let socket = dir.join("hostile.sock");
        let mut h = Hostile {
            socket: socket.clone(),
            http: None,
            script: Arc::new(Mutex::new(script)),
            calls: Default::default(),
            answered: Default::default(),
        };
        let l = tokio::net::UnixListener::bind(&socket).unwrap();
        let me = h.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = l.accept().await {
                let me = me.clone();
                tokio::spawn(async move {
                    let (r, mut w) = conn.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let Ok(req) = serde_json::from_str::<Value>(&line) else {
                            continue;
                        };
                        let mut out = serde_json::to_vec(&me.answer(&req)).unwrap();
                        out.push(b'\n');
                        if w.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        if http {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            h.http = Some(format!("http://{}", l.local_addr().unwrap()));
            let me = h.clone();
            tokio::spawn(async move {
                while let Ok((c, _)) = l.accept().await {
                    let me = me.clone();
                    tokio::spawn(async move { me.serve_http(c).await });
                }
            });
        }
        h
    }

    pub fn set(&self, f: impl FnOnce(&mut Script)) {
        f(&mut self.script.lock().unwrap());
    }

    pub fn calls_of(&self, tool: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t == tool)
            .map(|(_, a)| a.clone())
            .collect()
    }

    fn answer(&self, req: &Value) -> Value {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let tool = req
            .pointer("/params/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let args = req.pointer("/params/arguments").cloned().unwrap_or(Value::Null);
        self.calls.lock().unwrap().push((tool.clone(), args.clone()));
        let s = self.script.lock().unwrap().clone();
        let agent = args
            .get("agent_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let (Some(text), "list_active_projects_with_agents") = (&s.projects_text, tool.as_str()) {
            return json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": text.as_str()}]}});
        }
        let body = match tool.as_str() {
            "health_check" => json!({"status": "ok", "agent_count": s.agents.len(), "project_count": 1}),
            "list_active_projects_with_agents" => json!({"success": true, "projects": [{
                "project_id": "prj_hostile", "project_name": "Hostile", "working_directory": s.project_dir, "agents": s.agents}]}),
            "get_agent_action" => {
                let first = self.answered.lock().unwrap().insert(agent.clone());
                if first || s.always {
                    s.first_action.clone()
                } else {
                    json!({"action": "hold", "reason": "no_work"})
                }
            }
            "get_subordinate_profile" => {
                json!({"success": true, "agent_id": agent, "name": agent, "system_prompt": "", "skills": []})
            }
            "get_app_settings" => json!({"success": true}),
            _ => json!({"success": true}),
        };
        json!({"jsonrpc": "2.0", "id": id, "result": {"content": [{"type": "text", "text": body.to_string()}]}})
    }

    async fn serve_http(&self, c: tokio::net::TcpStream) {
        let mut r = BufReader::new(c);
        loop {
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            if r.read_exact(&mut body).await.is_err() {
                return;
            }
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let reply = if path.starts_with("/api/coordinator/config") {
                self.calls.lock().unwrap().push(("GET config".into(), Value::Null));
                self.script.lock().unwrap().remote_config.clone()
            } else {
                serde_json::from_slice::<Value>(&body)
                    .map(|req| self.answer(&req))
                    .unwrap_or(Value::Null)
            };
            let text = reply.to_string();
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            if r.get_mut().write_all(resp.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}
