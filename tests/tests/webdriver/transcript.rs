//! The Transcript page (issue 17), a phase of `app_end_to_end`: a finished demo run opens from the Runs
//! page with its items drawn (a tool call expands with its result), search finds a term, "errors only"
//! shows only error rows; then a log with known errors, put in the demo's log folder, shows exactly those.
//! Saves docs/screenshots/transcript.png.
use super::*;

/// The rows drawn now: (item index, kind, is an error row).
async fn rows(s: &Session) -> Vec<(u64, String, bool)> {
    let v = s
        .exec("return [...document.querySelectorAll('#tr-rows .tr-row[data-testid]')].map((r) => [Number(r.dataset.testid.split('-').pop()), r.dataset.kind, r.classList.contains('err') || r.classList.contains('k-error')])")
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_u64().unwrap(),
                r[1].as_str().unwrap().to_string(),
                r[2].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn wait_rows(s: &Session, what: &str, ok: impl Fn(&[(u64, String, bool)]) -> bool) -> Vec<(u64, String, bool)> {
    let t = Instant::now();
    loop {
        let r = rows(s).await;
        if ok(&r) {
            return r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "transcript rows never {what}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

pub async fn transcript_phase(s: &Session) {
    // From the Runs page (showing agt_03's finished runs): open one that worked.
    s.click("#nav-runs").await;
    s.wait_text("[data-testid=runs-table]", "worked", Duration::from_secs(20))
        .await;
    let opened = s
        .exec("const r = [...document.querySelectorAll('#runs-table tbody tr')].find((tr) => tr.textContent.includes('Finished task') && tr.querySelector('[data-testid^=run-open-]')); if (!r) return null; r.querySelector('[data-testid^=run-open-]').click(); return r.dataset.testid")
        .await;
    assert!(opened.is_string(), "no finished run with a log on the Runs page");
    s.wait("[data-testid=transcript-page]", Duration::from_secs(10)).await;
    let t0 = Instant::now();
    let items = wait_rows(s, "rendered", |r| r.len() >= 4).await;
    println!(
        "transcript: first rows drawn {} ms after the click returned",
        t0.elapsed().as_millis()
    );
    let kinds: Vec<&str> = items.iter().map(|r| r.1.as_str()).collect();
    for k in ["system", "tool_call", "tool_result", "assistant"] {
        assert!(
            kinds.contains(&k),
            "no {k} item in the demo run's transcript: {kinds:?}"
        );
    }
    let meta = s.text("[data-testid=transcript-meta]").await;
    assert!(meta.contains("items") && meta.contains("finished"), "{meta}");
    // A tool call expands together with its result.
    let call = items.iter().find(|r| r.1 == "tool_call").unwrap().0;
    s.click(&format!("[data-testid=transcript-item-{call}]")).await;
    let t = Instant::now();
    while s.exec(&format!("return document.querySelectorAll('[data-testid=transcript-item-{call}] pre, [data-testid=transcript-item-{}] pre').length", call + 1)).await != json!(2) {
        assert!(t.elapsed() < Duration::from_secs(5), "the tool call did not expand with its result");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let header = s.text(&format!("[data-testid=transcript-item-{call}]")).await;
    assert!(
        header.contains("agent-pm__"),
        "tool call row without its tool name: {header}"
    );
    // Search: the demo agent's final words; the hit count and the current-hit row.
    s.type_into("[data-testid=transcript-search]", "finished task").await;
    let hits = s
        .wait_text("[data-testid=transcript-hits]", "/", Duration::from_secs(10))
        .await;
    assert!(hits.starts_with("1 / "), "{hits}");
    s.wait(".tr-row.hit-current", Duration::from_secs(5)).await;
    let current = s
        .exec("return document.querySelector('.tr-row.hit-current').textContent")
        .await;
    assert!(
        current.as_str().unwrap_or("").to_lowercase().contains("finished task"),
        "current hit: {current}"
    );
    // For the picture: the tool call after the hit, opened with its result.
    s.exec("const c = document.querySelector('.tr-row.hit-current ~ .tr-row[data-kind=tool_call]'); if (c) c.click(); return true").await;
    s.screenshot("transcript").await;
    // ⌘F/Ctrl+F focuses the search box.
    s.exec("document.activeElement.blur(); document.dispatchEvent(new KeyboardEvent('keydown', {key: 'f', ctrlKey: true, bubbles: true})); return true").await;
    assert_eq!(
        s.exec("return document.activeElement && document.activeElement.id")
            .await,
        json!("tr-search")
    );
    // Errors only on this run: every row left is an error row (or none, said so).
    s.click("[data-testid=transcript-errors]").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let errs = rows(s).await;
    assert!(errs.iter().all(|r| r.2), "errors only shows non-error rows: {errs:?}");
    if errs.is_empty() {
        s.wait("[data-testid=transcript-empty]", Duration::from_secs(5)).await;
    }

    // A log with known errors in the demo's log folder: errors only shows exactly those three.
    let state: Value = serde_json::from_str(
        s.invoke("app_state", json!({}))
            .await
            .strip_prefix("ok: ")
            .expect("app_state"),
    )
    .unwrap();
    let dir = PathBuf::from(state["log_root"].as_str().unwrap()).join("agt_03");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("20000101_000000_000.log");
    let mut text = String::from("[agentpm] 2000-01-01 00:00:00.000 start pid=1 command=claude\n");
    for i in 0..300 {
        text += &format!(
            r#"{{"type":"assistant","message":{{"id":"m{i}","content":[{{"type":"tool_use","id":"t{i}","name":"Read","input":{{"file_path":"/w/f{i}.rs"}}}}]}}}}"#
        );
        text += "\n";
        let err = i == 10 || i == 250;
        text += &format!(
            r#"{{"type":"user","message":{{"content":[{{"type":"tool_result","tool_use_id":"t{i}","is_error":{err},"content":"{}"}}]}}}}"#,
            if err { "ENOENT: no such file" } else { "ok" }
        );
        text += "\n";
    }
    text += "[agentpm] 2000-01-01 00:00:09.000 exit code=1\n";
    std::fs::write(&log, text).unwrap();
    let r = s
        .exec(&format!(
            "openTranscript({{ logPath: {:?}, agentId: 'agt_03' }}); return true",
            log.display().to_string()
        ))
        .await;
    assert_eq!(r, json!(true));
    wait_rows(s, "showed the new log", |r| {
        r.first().is_some_and(|f| f.1 == "system") && r.len() > 20
    })
    .await;
    s.click("[data-testid=transcript-errors]").await;
    let errs = wait_rows(s, "filtered to the 3 errors", |r| r.len() == 3).await;
    assert_eq!(
        errs.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![22, 502, 601],
        "{errs:?}"
    );
    assert!(errs.iter().all(|r| r.2));
    // Search within errors, then the raw log one click away.
    s.type_into("[data-testid=transcript-search]", "enoent").await;
    s.wait_text("[data-testid=transcript-hits]", "1 / 2", Duration::from_secs(10))
        .await;
    s.click("[data-testid=transcript-raw]").await;
    s.wait_text("#log-view", "ENOENT", Duration::from_secs(10)).await;
    // A path outside the log folder is refused by the command, whatever the page asks.
    let r = s.invoke("run_transcript_open", json!({"logPath": "/etc/passwd"})).await;
    assert!(r.starts_with("err: "), "{r}");
}
