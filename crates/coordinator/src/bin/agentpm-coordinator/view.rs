//! What `run` and `demo` print: a live status line on a terminal, JSON lines with `--json`.

use super::*;

/// Live status for a terminal (one redrawn line) or JSON lines.
pub(crate) struct StatusView {
    pub(crate) json: bool,
    pub(crate) tty: bool,
    pub(crate) last_line: String,
    pub(crate) last_print: Option<Instant>,
    pub(crate) total: Option<usize>,
    pub(crate) completed: Option<usize>,
    /// stdout was closed (e.g. `run --json | head`): the caller stops the agents cleanly and exits, instead
    /// of a panic on the next print leaving them behind.
    pub(crate) closed: bool,
}

impl StatusView {
    pub(crate) fn out(&mut self, text: &str) {
        if self.closed {
            return;
        }
        let mut o = std::io::stdout().lock();
        if o.write_all(text.as_bytes()).and_then(|_| o.flush()).is_err() {
            self.closed = true;
        }
    }

    pub(crate) fn new(json: bool) -> Self {
        StatusView {
            json,
            tty: std::io::stdout().is_terminal(),
            last_line: String::new(),
            last_print: None,
            total: None,
            completed: None,
            closed: false,
        }
    }

    pub(crate) fn snapshot(&mut self, s: &Snapshot) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({"snapshot": s})) {
                self.out(&format!("{line}\n"));
            }
            return;
        }
        let mut line = s.summary();
        match (self.total, self.completed) {
            (Some(t), Some(c)) => line = format!("{c}/{t} items · {line}"),
            (None, Some(c)) => line = format!("{c} items done · {line}"),
            _ => {}
        }
        let agents: Vec<String> = s
            .instances
            .iter()
            .map(|i| format!("{}@{}", i.agent_id, i.project_id))
            .collect();
        if !agents.is_empty() {
            line.push_str(&format!(" · {}", agents.join(" ")));
        }
        if line == self.last_line {
            return;
        }
        if self.tty {
            self.out(&format!("\r\x1b[2K{line}"));
        } else if self.last_print.is_none_or(|t| t.elapsed() > Duration::from_millis(500)) {
            self.out(&format!("{line}\n"));
            self.last_print = Some(Instant::now());
        }
        self.last_line = line;
    }

    pub(crate) fn event(&mut self, e: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(&serde_json::json!({"event": e})) {
                self.out(&format!("{line}\n"));
            }
            return;
        }
        let text = match e {
            Event::InstanceExited { instance, exit_code: Some(c), error } if *c != 0 => {
                format!("{} on {} failed (exit {c}): {}", instance.agent_id, instance.project_id, error.clone().unwrap_or_default())
            }
            Event::SpawnFailed { agent_id, project_id, error } => format!("cannot start {agent_id} on {project_id}: {error}"),
            Event::CooldownStarted { agent_id, until, reason } => {
                format!("{agent_id} cooling down for {} s ({reason})", (until - coordinator::api::now_ms()).max(0) / 1000)
            }
            Event::ServerUnreachable { error, .. } => format!("server unreachable: {error}"),
            Event::ServerReachable { after_ms } => format!("server reachable again after {:.1} s", *after_ms as f64 / 1000.0),
            Event::AttentionStarted { item } => {
                let cmd = item.action.and_then(|a| a.cli_command(item.agent_id.as_deref())).map(|c| format!(" (`{c}`)")).unwrap_or_default();
                format!("needs you: {} {}{cmd}", item.reason, item.fix)
            }
            Event::AttentionEnded { key } => format!("resolved: {key}"),
            Event::TokenRejected { error } => format!("the server rejected the coordinator token — set the new one (`agentpm-coordinator token set`): {error}"),
            Event::PasskeyMissing { agent_id } => format!("{agent_id} has no passkey: `agentpm-coordinator passkey set {agent_id}`"),
            _ => return,
        };
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        self.out(&format!("{clear}{text}\n"));
        self.last_line.clear();
    }

    pub(crate) fn finish(&mut self) {
        if self.tty && !self.json && !self.last_line.is_empty() {
            self.out("\n");
        }
    }
}
