//! A long run's visible work: instead of sleeping silently, the fake agent spreads a scripted session
//! over its working time (assistant text, local tool calls with their results, usage growing), so a
//! live transcript has something to follow. Short runs (tests) stay silent and quick.

use super::{with_stream, StreamJson};
use serde_json::{json, Value};
use std::time::Duration;

/// Below this, a run just waits (the protocol tests' runs are a few hundred ms).
const GRADUAL_FROM_MS: u64 = 1500;
/// About one step every this many ms, but at least `MIN_STEPS` (a short demo run still shows a session).
const STEP_MS: u64 = 2500;
const MIN_STEPS: u64 = 6;

/// One step of the script: what the model says, or a tool it calls and what the tool answered.
enum Step {
    Say(&'static str),
    Tool {
        name: &'static str,
        input: fn(&str) -> Value,
        result: &'static str,
    },
}

const SCRIPT: &[Step] = &[
    Step::Say("Let me read the task and look at the project layout first."),
    Step::Tool { name: "Bash", input: |_| json!({"command": "ls -la && git status --short", "description": "List files and git status"}), result: "total 24\ndrwxr-xr-x  5 dev  staff  160 .\n-rw-r--r--  1 dev  staff  812 README.md\ndrwxr-xr-x  4 dev  staff  128 src\ndrwxr-xr-x  3 dev  staff   96 tests" },
    Step::Tool { name: "Read", input: |_| json!({"file_path": "README.md"}), result: "     1\t# Sample project\n     2\t\n     3\tA small parser with its tests. Run `make test`." },
    Step::Say("The parser is in src/parser.rs. I'll check the tests before changing anything."),
    Step::Tool { name: "Bash", input: |_| json!({"command": "make test", "description": "Run the tests"}), result: "running 12 tests\n............\ntest result: ok. 12 passed; 0 failed" },
    Step::Tool { name: "Read", input: |_| json!({"file_path": "src/parser.rs", "offset": 40, "limit": 30}), result: "    40\tfn parse_line(s: &str) -> Option<Entry> {\n    41\t    let (k, v) = s.split_once('=')?;\n    42\t    Some(Entry { key: k.trim().into(), value: v.trim().into() })\n    43\t}" },
    Step::Say("I'll make the change the task asks for and add a test for it."),
    Step::Tool { name: "Edit", input: |task| json!({"file_path": "src/parser.rs", "old_string": "let (k, v) = s.split_once('=')?;", "new_string": format!("// {task}\n    let (k, v) = s.split_once('=')?;")}), result: "The file src/parser.rs has been updated." },
    Step::Tool { name: "Bash", input: |_| json!({"command": "make test", "description": "Run the tests again"}), result: "running 13 tests\n.............\ntest result: ok. 13 passed; 0 failed" },
    Step::Tool { name: "Bash", input: |_| json!({"command": "git diff --stat"}), result: " src/parser.rs   | 1 +\n tests/parser.rs | 9 +++++++++\n 2 files changed, 10 insertions(+)" },
    Step::Say("The change is in and the tests pass; reporting back."),
];

/// Work `ms` on `task`, streaming the script's steps evenly over the time (cycling for long runs).
pub(super) async fn work(ms: u64, task: &str, stream_json: bool) {
    if ms < GRADUAL_FROM_MS {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return;
    }
    let n = (ms / STEP_MS).clamp(MIN_STEPS, 60);
    let each = Duration::from_millis(ms / n);
    for i in 0..n as usize {
        tokio::time::sleep(each).await;
        let step = &SCRIPT[i % SCRIPT.len()];
        if stream_json {
            with_stream(|s| play(s, step, task, i));
        } else {
            match step {
                Step::Say(t) => println!("fake-agent: {t}"),
                Step::Tool { name, .. } => println!("fake-agent: ran {name}"),
            }
        }
    }
}

fn play(s: &mut StreamJson, step: &Step, task: &str, i: usize) {
    match step {
        Step::Say(t) => s.say(t),
        // Output sizes vary a little, so usage grows unevenly as in a real session.
        Step::Tool { name, input, result } => s.local_tool(name, input(task), result, 40 + (i as u64 * 37) % 160),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_alternates_talk_and_tools() {
        assert!(SCRIPT.iter().filter(|s| matches!(s, Step::Say(_))).count() >= 3);
        assert!(SCRIPT.iter().filter(|s| matches!(s, Step::Tool { .. })).count() >= 5);
        let Step::Tool { input, .. } = &SCRIPT[7] else {
            panic!("step 8 edits")
        };
        assert!(input("tsk_1").to_string().contains("tsk_1"));
    }
}
