use super::*;
use crate::runs::events::{RunResult, TokenUsage};
use proptest::prelude::*;

/// A Claude Code 2.1 stream-json run: init, two assistant lines of one message (usage repeated), a tool
/// round trip, a rate-limit notice, the result.
pub(crate) const CLAUDE_RUN: &str = r#"{"type":"system","subtype":"init","cwd":"/w","session_id":"s-1","tools":["Bash"],"mcp_servers":[{"name":"agent-pm","status":"connected"}],"model":"claude-sonnet-4-5","permissionMode":"default","apiKeySource":"ANTHROPIC_API_KEY"}
{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Looking."}],"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":3}},"parent_tool_use_id":null,"session_id":"s-1"}
{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"tool_use","id":"tu_1","name":"mcp__agent-pm__get_my_task","input":{}}],"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":0,"output_tokens":20}},"parent_tool_use_id":null,"session_id":"s-1"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"tu_1","type":"tool_result","content":[{"type":"text","text":"{\"task\":null}"}]}]},"parent_tool_use_id":null,"session_id":"s-1"}
{"type":"rate_limit_event","rate_limit_info":{"status":"allowed_warning","resetsAt":1771390800,"rateLimitType":"five_hour"},"uuid":"u","session_id":"s-1"}
{"type":"assistant","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"No task; done."}],"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":100,"output_tokens":7}},"parent_tool_use_id":null,"session_id":"s-1"}
{"type":"result","subtype":"success","is_error":false,"duration_ms":1234,"duration_api_ms":1000,"num_turns":2,"result":"No task; done.","session_id":"s-1","total_cost_usd":0.0123,"usage":{"input_tokens":15,"cache_creation_input_tokens":100,"cache_read_input_tokens":100,"output_tokens":27,"server_tool_use":{"web_search_requests":0},"service_tier":"standard"},"modelUsage":{"claude-sonnet-4-5":{"inputTokens":15,"outputTokens":27,"costUSD":0.0123}},"permission_denials":[],"uuid":"r"}
"#;

fn usage_sum(ev: &[RunEvent]) -> TokenUsage {
    let mut t = TokenUsage::default();
    for e in ev {
        if let RunEvent::Usage(u) = e {
            t.add(u);
        }
    }
    t
}

fn result(ev: &[RunEvent]) -> Option<&RunResult> {
    ev.iter()
        .find_map(|e| if let RunEvent::Result(r) = e { Some(r) } else { None })
}

#[test]
fn claude_run_is_read_fully() {
    let ev = parse_all("claude", CLAUDE_RUN.as_bytes());
    assert_eq!(
        ev[0],
        RunEvent::Init {
            session_id: Some("s-1".into()),
            model: Some("claude-sonnet-4-5".into())
        }
    );
    // The repeated usage of msg_1 is counted once, at its final size.
    assert_eq!(
        usage_sum(&ev),
        TokenUsage {
            input: 15,
            output: 27,
            cache_read: 100,
            cache_write: 100
        }
    );
    assert!(ev.contains(&RunEvent::ToolUse {
        name: "mcp__agent-pm__get_my_task".into()
    }));
    assert!(ev.contains(&RunEvent::ToolResult { is_error: false }));
    assert!(ev.contains(&RunEvent::RateLimit {
        status: "allowed_warning".into(),
        resets_at: Some(1_771_390_800_000),
        limit_type: Some("five_hour".into())
    }));
    let r = result(&ev).unwrap();
    assert_eq!(
        (r.is_error, r.num_turns, r.duration_ms, r.cost_usd),
        (false, Some(2), Some(1234), Some(0.0123))
    );
    assert_eq!(
        r.usage,
        Some(TokenUsage {
            input: 15,
            output: 27,
            cache_read: 100,
            cache_write: 100
        })
    );
    assert_eq!(r.text.as_deref(), Some("No task; done."));
    assert!(!ev.iter().any(|e| matches!(e, RunEvent::Raw(_))), "{ev:?}");
}

#[test]
fn claude_error_result_names_the_error() {
    let ev = parse_all("claude", br#"{"type":"result","subtype":"error_during_execution","is_error":true,"duration_ms":5,"num_turns":1,"session_id":"s","total_cost_usd":0,"usage":{"input_tokens":1,"output_tokens":0},"errors":["API Error: 401 invalid x-api-key"]}"#);
    let r = result(&ev).unwrap();
    assert!(r.is_error);
    assert_eq!(r.error.as_deref(), Some("API Error: 401 invalid x-api-key"));
}

#[test]
fn gemini_run_is_read_fully() {
    let run = r#"{"type":"init","timestamp":"2026-01-01T00:00:00.000Z","session_id":"g-1","model":"gemini-2.5-flash"}
{"type":"message","timestamp":"t","role":"user","content":"do it"}
{"type":"message","timestamp":"t","role":"assistant","content":"Check","delta":true}
{"type":"tool_use","timestamp":"t","tool_name":"get_my_task","tool_id":"c1","parameters":{}}
{"type":"tool_result","timestamp":"t","tool_id":"c1","status":"error","output":"","error":{"type":"TOOL_EXECUTION_ERROR","message":"boom"}}
{"type":"error","timestamp":"t","severity":"warning","message":"Retrying after 429"}
{"type":"message","timestamp":"t","role":"assistant","content":"Done","delta":true}
{"type":"result","timestamp":"t","status":"success","stats":{"total_tokens":130,"input_tokens":100,"output_tokens":30,"cached":40,"input":60,"duration_ms":900,"tool_calls":1,"models":{"gemini-2.5-flash":{"total_tokens":130}}}}
"#;
    let ev = parse_all("gemini", run.as_bytes());
    assert_eq!(
        ev[0],
        RunEvent::Init {
            session_id: Some("g-1".into()),
            model: Some("gemini-2.5-flash".into())
        }
    );
    assert!(ev.contains(&RunEvent::Message {
        text: "Done".into(),
        delta: true
    }));
    assert!(ev.contains(&RunEvent::ToolResult { is_error: true }));
    assert!(ev.contains(&RunEvent::Error {
        message: "Retrying after 429".into(),
        fatal: false
    }));
    let r = result(&ev).unwrap();
    assert_eq!(
        r.usage,
        Some(TokenUsage {
            input: 60,
            output: 30,
            cache_read: 40,
            cache_write: 0
        })
    );
    assert_eq!((r.is_error, r.duration_ms), (false, Some(900)));
    let err = parse_all("gemini", br#"{"type":"result","timestamp":"t","status":"error","error":{"type":"FatalAuthenticationError","message":"API key not valid"},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0,"models":{}}}"#);
    let r = result(&err).unwrap();
    assert!(r.is_error);
    assert_eq!(r.error.as_deref(), Some("FatalAuthenticationError: API key not valid"));
    assert_eq!(r.duration_ms, None);
}

#[test]
fn codex_run_is_read_fully() {
    let run = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"**Thinking**"}}
{"type":"item.started","item":{"id":"item_1","type":"mcp_tool_call","server":"agent-pm","tool":"get_my_task","status":"in_progress"}}
{"type":"item.completed","item":{"id":"item_1","type":"mcp_tool_call","server":"agent-pm","tool":"get_my_task","status":"failed"}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Nothing to do."}}
{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":800,"output_tokens":50}}
"#;
    let ev = parse_all("codex", run.as_bytes());
    assert_eq!(
        ev[0],
        RunEvent::Init {
            session_id: Some("0199a213-81c0-7800-8aa1-bbab2a035a53".into()),
            model: None
        }
    );
    assert!(ev.contains(&RunEvent::ToolUse {
        name: "get_my_task".into()
    }));
    assert!(ev.contains(&RunEvent::ToolResult { is_error: true }));
    assert!(ev.contains(&RunEvent::Message {
        text: "Nothing to do.".into(),
        delta: false
    }));
    assert_eq!(
        usage_sum(&ev),
        TokenUsage {
            input: 200,
            output: 50,
            cache_read: 800,
            cache_write: 0
        }
    );
    assert!(ev.contains(&RunEvent::TurnDone));
    let failed = parse_all(
        "codex",
        br#"{"type":"turn.failed","error":{"message":"exceeded retry limit, last status: 429 Too Many Requests"}}"#,
    );
    assert_eq!(
        failed[0],
        RunEvent::Error {
            message: "exceeded retry limit, last status: 429 Too Many Requests".into(),
            fatal: true
        }
    );
}

#[test]
fn unknown_types_and_text_are_kept_raw() {
    let ev = parse_all(
        "claude",
        b"plain text from a hook\n{\"type\":\"brand_new\",\"x\":1}\n[1,2]\n",
    );
    assert_eq!(
        ev,
        vec![
            RunEvent::Raw("plain text from a hook".into()),
            RunEvent::Raw("{\"type\":\"brand_new\",\"x\":1}".into()),
            RunEvent::Raw("[1,2]".into())
        ]
    );
}

const RL: &str = r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1771390800,"rateLimitType":"five_hour"},"session_id":"s-1"}"#;

fn rejected() -> RunEvent {
    RunEvent::RateLimit {
        status: "rejected".into(),
        resets_at: Some(1_771_390_800_000),
        limit_type: Some("five_hour".into()),
    }
}

#[test]
fn an_event_spliced_into_another_line_yields_both() {
    let result_line = CLAUDE_RUN.lines().last().unwrap();
    let cut = result_line.find("\"num_turns\"").unwrap();
    let spliced = format!("{}{}{}\n", &result_line[..cut], RL, &result_line[cut..]);
    let ev = parse_all("claude", spliced.as_bytes());
    assert!(ev.contains(&rejected()), "{ev:?}");
    assert_eq!(result(&ev).and_then(|r| r.cost_usd), Some(0.0123), "{ev:?}");
    assert!(!ev.iter().any(|e| matches!(e, RunEvent::Raw(_))), "{ev:?}");
}

#[test]
fn an_event_with_its_newline_spliced_in_still_yields_both() {
    // The spliced event brought its own newline: the outer line arrives in two pieces.
    let result_line = CLAUDE_RUN.lines().last().unwrap();
    let cut = result_line.find("\"usage\"").unwrap();
    let spliced = format!("{}{}\n{}\n", &result_line[..cut], RL, &result_line[cut..]);
    let ev = parse_all("claude", spliced.as_bytes());
    assert!(ev.contains(&rejected()), "{ev:?}");
    assert_eq!(result(&ev).and_then(|r| r.num_turns), Some(2), "{ev:?}");
}

#[test]
fn text_around_events_is_kept() {
    let ev = parse_all("claude", format!("warn: slow {RL} more\n").as_bytes());
    assert_eq!(ev, vec![rejected(), RunEvent::Raw("warn: slow  more".into())]);
    // Two events on one line.
    let ev = parse_all("claude", format!("{RL}{RL}\n").as_bytes());
    assert_eq!(ev, vec![rejected(), rejected()]);
}

#[test]
fn a_cut_last_line_is_raw_and_chunking_does_not_matter() {
    let whole = parse_all("claude", CLAUDE_RUN.as_bytes());
    for chunk in [1usize, 7, 64, 4096] {
        let mut p = for_kind("claude").unwrap();
        let mut out = Vec::new();
        for c in CLAUDE_RUN.as_bytes().chunks(chunk) {
            p.feed(c, &mut out);
        }
        p.finish(&mut out);
        assert_eq!(out, whole, "chunk {chunk}");
    }
    let cut = &CLAUDE_RUN[..CLAUDE_RUN.len() - 40];
    let ev = parse_all("claude", cut.as_bytes());
    assert!(
        matches!(ev.last(), Some(RunEvent::Raw(s)) if s.starts_with("{\"type\":\"result\"")),
        "{:?}",
        ev.last()
    );
    assert!(result(&ev).is_none());
}

#[test]
fn wrong_field_types_do_not_lose_the_event() {
    let ev = parse_all("claude", br#"{"type":"result","subtype":"success","is_error":false,"num_turns":"two","total_cost_usd":null,"usage":{"input_tokens":3,"output_tokens":"x"}}"#);
    let r = result(&ev).unwrap();
    assert_eq!((r.num_turns, r.cost_usd), (None, None));
    assert_eq!(
        r.usage,
        Some(TokenUsage {
            input: 3,
            ..Default::default()
        })
    );
}

fn all_kinds() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("claude"), Just("gemini"), Just("codex")]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(kind in all_kinds(), bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_all(kind, &bytes);
    }

    /// A real run cut anywhere and with arbitrary bytes inserted anywhere never panics, and every line
    /// the damage did not touch still yields its events.
    #[test]
    fn damaged_runs_keep_the_undamaged_lines(cut in 0usize..2000, at in 0usize..2000, junk in "[\\x00-\\x7f]{0,40}") {
        let run = CLAUDE_RUN.as_bytes();
        let at = at % run.len();
        let mut bytes = run[..at].to_vec();
        bytes.extend_from_slice(junk.as_bytes());
        bytes.extend_from_slice(&run[at..]);
        bytes.truncate(bytes.len().saturating_sub(cut % 200));
        let ev = parse_all("claude", &bytes);
        // The init line is whole whenever the damage starts after it.
        let init_end = CLAUDE_RUN.find('\n').unwrap();
        if at > init_end && bytes.len() > init_end {
            prop_assert!(matches!(ev.first(), Some(RunEvent::Init { .. })), "{:?}", ev.first());
        }
    }

    /// Splicing an event into any line at any point yields that event.
    #[test]
    fn spliced_event_is_found(kind_line in 0usize..7, pos in 0usize..2000) {
        let line = CLAUDE_RUN.lines().nth(kind_line).unwrap();
        let mut p = pos % (line.len() + 1);
        while !line.is_char_boundary(p) { p -= 1; }
        let spliced = format!("{}{}{}\n", &line[..p], RL, &line[p..]);
        let ev = parse_all("claude", spliced.as_bytes());
        prop_assert!(ev.contains(&rejected()), "{:?}", ev);
    }
}
