use super::*;
use crate::runs::parse::tests::CLAUDE_RUN;
use proptest::prelude::*;
use std::io::Write;

fn log(dir: &tempfile::TempDir, name: &str, text: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn kinds(items: &[Item]) -> Vec<ItemKind> {
    items.iter().map(|i| i.kind).collect()
}

#[test]
fn a_claude_run_becomes_messages_tool_calls_and_results() {
    let d = tempfile::tempdir().unwrap();
    // A plain-text line of the agent's stderr and a blank line between the events.
    let text = format!("fake-agent: authenticated as agt_1\n\n{CLAUDE_RUN}");
    let t = Transcript::open(&log(&d, "1.log", text.as_bytes())).unwrap();
    assert_eq!(t.len(), 8);
    let items = t.window(0, 100).unwrap();
    use ItemKind::*;
    assert_eq!(
        kinds(&items),
        vec![Raw, System, Assistant, ToolCall, ToolResult, System, Assistant, System]
    );
    assert_eq!(items[0].text, "fake-agent: authenticated as agt_1");
    // Line numbers count the blank line the items skip.
    assert_eq!((items[0].line, items[1].line), (1, 3));
    assert_eq!(items[1].text, "session started · model claude-sonnet-4-5 · /w");
    assert_eq!(items[2].text, "Looking.");
    assert_eq!(items[3].tool.as_deref(), Some("mcp__agent-pm__get_my_task"));
    assert_eq!(
        (items[4].text.as_str(), items[4].tool.as_deref(), items[4].is_error),
        ("{\"task\":null}", Some("tu_1"), false)
    );
    assert!(
        items[5]
            .text
            .starts_with("rate limit: allowed_warning (five_hour), resets "),
        "{}",
        items[5].text
    );
    assert_eq!(
        items[7].text,
        "result: success · 2 turns · 1.2 s · $0.0123\nNo task; done."
    );
    assert!(items.iter().all(|i| !i.is_error));
    // A window is a slice of the whole; past the end it is empty.
    assert_eq!(t.window(3, 2).unwrap(), items[3..5].to_vec());
    assert!(t.window(8, 10).unwrap().is_empty());
    assert_eq!(t.items(&[7, 2, 99]).unwrap(), vec![items[7].clone(), items[2].clone()]);
}

#[test]
fn errors_are_marked_and_filtered() {
    let d = tempfile::tempdir().unwrap();
    let text = concat!(
        r#"{"type":"assistant","message":{"id":"m","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls /nope"}}]}}"#,
        "\n",
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"ls: /nope: No such file"}]}}"#,
        "\n",
        r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t2","is_error":false,"content":"fine"}]}}"#,
        "\n",
        "Some plain text\n",
        "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"an error in a cut line\n",
        "API Error: 401 invalid x-api-key\n",
        r#"{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":1771390800}}"#,
        "\n",
        r#"{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":1,"errors":["boom"]}"#,
        "\n",
        "[agentpm] 2026-12-03 10:00:02.000 exit code=0\n",
        "[agentpm] 2026-12-03 10:00:03.000 exit code=1\n",
    );
    let t = Transcript::open(&log(&d, "e.log", text.as_bytes())).unwrap();
    let items = t.window(0, 10).unwrap();
    assert_eq!(items[0].text, "{\n  \"command\": \"ls /nope\"\n}");
    assert!(items[1].is_error && !items[2].is_error && !items[3].is_error && items[5].is_error);
    // A cut event that mentions an error in its text is not an error event.
    assert!(items[4].kind == ItemKind::Raw && !items[4].is_error);
    let items: Vec<Item> = items.into_iter().filter(|i| i.index != 4).collect();
    assert_eq!(items[5].kind, ItemKind::Error);
    assert!(
        items[6].is_error && items[6].text.ends_with("\nboom"),
        "{}",
        items[6].text
    );
    assert_eq!(
        (items[7].kind, items[7].text.as_str(), items[7].is_error),
        (ItemKind::System, "2026-12-03 10:00:02.000 exit code=0", false)
    );
    assert!(items[8].is_error);
    assert_eq!(
        t.errors(100).unwrap(),
        Matches {
            indices: vec![1, 5, 6, 7, 9],
            truncated: false
        }
    );
    assert_eq!(
        t.errors(2).unwrap(),
        Matches {
            indices: vec![1, 5],
            truncated: true
        }
    );
}

#[test]
fn search_matches_the_shown_text_ignoring_case_not_the_json_keys() {
    let d = tempfile::tempdir().unwrap();
    let text = format!("{CLAUDE_RUN}Über café\nplain LOOKING line\n");
    let t = Transcript::open(&log(&d, "s.log", text.as_bytes())).unwrap();
    assert_eq!(t.search("looking", 10).unwrap().indices, vec![1, 8]);
    // A tool's name is searched too.
    assert_eq!(t.search("GET_MY_TASK", 10).unwrap().indices, vec![2]);
    // Keys and structure of the JSON are not the transcript's text.
    assert!(t.search("parent_tool_use_id", 10).unwrap().indices.is_empty());
    // Quotes (escaped in the JSON) and non-ASCII (maybe escaped) are found without the raw prefilter.
    assert_eq!(t.search("\"task\"", 10).unwrap().indices, vec![3]);
    assert_eq!(t.search("über", 10).unwrap().indices, vec![7]);
    assert_eq!(t.search("CAFÉ", 10).unwrap().indices, vec![7]);
    assert_eq!(
        t.search("o", 2).unwrap(),
        Matches {
            indices: vec![0, 1],
            truncated: true
        }
    );
    assert_eq!(t.search("  ", 10).unwrap(), Matches::default());
}

#[test]
fn gemini_and_codex_streams_are_shown_too() {
    let d = tempfile::tempdir().unwrap();
    let gemini = concat!(
        r#"{"type":"init","session_id":"g","model":"gemini-2.5-flash"}"#,
        "\n",
        r#"{"type":"message","role":"user","content":"do it"}"#,
        "\n",
        r#"{"type":"message","role":"assistant","content":"Check","delta":true}"#,
        "\n",
        r#"{"type":"tool_use","tool_name":"get_my_task","tool_id":"c1","parameters":{"a":1}}"#,
        "\n",
        r#"{"type":"tool_result","tool_id":"c1","status":"error","output":"","error":{"type":"X","message":"boom"}}"#,
        "\n",
        r#"{"type":"error","severity":"warning","message":"Retrying after 429"}"#,
        "\n",
        r#"{"type":"result","status":"error","error":{"type":"FatalAuthenticationError","message":"API key not valid"},"stats":{"input_tokens":0,"output_tokens":0}}"#,
        "\n",
    );
    let t = Transcript::open(&log(&d, "g.log", gemini.as_bytes())).unwrap();
    let g = t.window(0, 10).unwrap();
    use ItemKind::*;
    assert_eq!(
        kinds(&g),
        vec![System, User, Assistant, ToolCall, ToolResult, Error, Error]
    );
    assert_eq!(
        (g[3].tool.as_deref(), g[4].text.as_str(), g[4].is_error),
        (Some("get_my_task"), "boom", true)
    );
    assert!(!g[5].is_error, "a warning is shown as one but is no error");
    assert!(g[6].is_error && g[6].text.contains("FatalAuthenticationError: API key not valid"));

    let codex = concat!(
        r#"{"type":"thread.started","thread_id":"th"}"#,
        "\n",
        r#"{"type":"turn.started"}"#,
        "\n",
        r#"{"type":"item.started","item":{"id":"i1","type":"command_execution","command":"bash -lc ls","status":"in_progress"}}"#,
        "\n",
        r#"{"type":"item.completed","item":{"id":"i1","type":"command_execution","command":"bash -lc ls","aggregated_output":"a\nb\n","exit_code":2,"status":"failed"}}"#,
        "\n",
        r#"{"type":"item.started","item":{"id":"i2","type":"mcp_tool_call","server":"agent-pm","tool":"get_my_task","arguments":{},"status":"in_progress"}}"#,
        "\n",
        r#"{"type":"item.completed","item":{"id":"i3","type":"agent_message","text":"All done."}}"#,
        "\n",
        r#"{"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":40,"output_tokens":7}}"#,
        "\n",
        r#"{"type":"turn.failed","error":{"message":"stream disconnected"}}"#,
        "\n",
    );
    let t = Transcript::open(&log(&d, "c.log", codex.as_bytes())).unwrap();
    let c = t.window(0, 10).unwrap();
    assert_eq!(
        kinds(&c),
        vec![System, System, ToolCall, ToolResult, ToolCall, Assistant, System, Error]
    );
    assert_eq!(
        (c[2].text.as_str(), c[3].text.as_str(), c[3].is_error),
        ("bash -lc ls", "a\nb\n\nexit code 2", true)
    );
    assert_eq!(c[4].tool.as_deref(), Some("agent-pm.get_my_task"));
    assert_eq!(c[6].text, "turn completed · 100 in / 7 out tokens");
    assert!(c[7].is_error && c[7].text.contains("stream disconnected"));
    // An unknown event of a JSON stream is kept as its raw JSON.
    let t = Transcript::open(&log(&d, "u.log", br#"{"type":"brand_new","x":1}"#)).unwrap();
    assert_eq!(
        (
            t.window(0, 1).unwrap()[0].kind,
            t.window(0, 1).unwrap()[0].text.as_str()
        ),
        (Raw, r#"{"type":"brand_new","x":1}"#)
    );
}

#[test]
fn a_live_log_is_followed_by_indexing_only_what_was_appended() {
    let d = tempfile::tempdir().unwrap();
    let p = log(&d, "live.log", b"first\r\nsecond half");
    let mut t = Transcript::open(&p).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t.window(0, 5).unwrap()[1].text, "second half");
    assert!(!t.refresh().unwrap(), "nothing changed");
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b" done\n\nthird\n").unwrap();
    assert!(t.refresh().unwrap());
    let w = t.window(0, 5).unwrap();
    assert_eq!(
        w.iter().map(|i| (i.text.as_str(), i.line)).collect::<Vec<_>>(),
        vec![("first", 1), ("second half done", 2), ("third", 4)]
    );
    assert_eq!(t.bytes(), std::fs::metadata(&p).unwrap().len());
    // Rewritten shorter: indexed again from the start.
    std::fs::write(&p, "new\n").unwrap();
    assert!(t.refresh().unwrap());
    assert_eq!(
        t.window(0, 5)
            .unwrap()
            .iter()
            .map(|i| i.text.clone())
            .collect::<Vec<_>>(),
        vec!["new"]
    );
}

#[test]
fn lines_across_chunk_boundaries_keep_their_place() {
    let d = tempfile::tempdir().unwrap();
    // ~10 MB: lines of varying length so boundaries land everywhere, a needle every 997th line.
    let mut text = Vec::new();
    let mut expected = Vec::new();
    for i in 0..60_000usize {
        let pad = "x".repeat(i % 331);
        if i % 997 == 0 {
            expected.push(i);
            writeln!(text, "line {i} NEEDLE {pad}").unwrap();
        } else {
            writeln!(text, "line {i} {pad}").unwrap();
        }
    }
    let p = log(&d, "big.log", &text);
    // Lazily: the first chunk at once, the rest in steps, ending where a full index is.
    let mut lazy = Transcript::open_lazy(&p).unwrap();
    assert!(
        !lazy.is_complete() && lazy.len() > 1000 && lazy.len() < 60_000,
        "{}",
        lazy.len()
    );
    let head = lazy.window(0, 50).unwrap();
    let mut steps = 0;
    while !lazy.is_complete() {
        lazy.index_more(1 << 20).unwrap();
        steps += 1;
    }
    assert!(steps >= 5, "{steps}");
    let t = Transcript::open(&p).unwrap();
    assert_eq!((lazy.len(), lazy.bytes()), (t.len(), t.bytes()));
    assert_eq!(head, t.window(0, 50).unwrap());
    assert_eq!(lazy.window(59_990, 10).unwrap(), t.window(59_990, 10).unwrap());
    assert!(text.len() > 2 * CHUNK);
    assert_eq!(t.len(), 60_000);
    for i in [0, 1, 12_345, 25_000, 59_999] {
        assert!(t.window(i, 1).unwrap()[0].text.starts_with(&format!("line {i} ")));
    }
    assert_eq!(t.search("needle", 1000).unwrap().indices, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Any bytes: no panic, one item per non-blank line, windows and searches stay in range.
    #[test]
    fn any_log_is_indexed_without_panicking(bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'{'), Just(b'"'), Just(b' '), any::<u8>()], 0..400), from in 0usize..50, needle in "[a-z\"{ ]{0,3}") {
        let d = tempfile::tempdir().unwrap();
        let t = Transcript::open(&log(&d, "p.log", &bytes)).unwrap();
        let blank = |l: &[u8]| l.iter().all(|b| b.is_ascii_whitespace());
        let lines = bytes.split(|b| *b == b'\n').filter(|l| !blank(l)).count();
        // Whitespace-only lines longer than the quick check are kept as (empty) items.
        prop_assert!(t.len() <= lines + bytes.split(|b| *b == b'\n').filter(|l| blank(l) && l.len() > 8).count());
        prop_assert!(t.len() >= lines);
        let w = t.window(from, 10).unwrap();
        prop_assert!(w.len() <= 10 && w.iter().all(|i| i.index >= from && i.index < t.len()));
        let m = t.search(&needle, 1000).unwrap();
        prop_assert!(m.indices.iter().all(|&i| i < t.len()));
        prop_assert!(t.errors(1000).unwrap().indices.windows(2).all(|p| p[0] < p[1]));
    }
}
