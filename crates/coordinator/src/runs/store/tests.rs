use super::*;
use crate::runs::parse::tests::CLAUDE_RUN;
use crate::runs::record::{Outcome, RunProgress, Summarizer};

fn start(agent: &str, project: &str, at: UnixMs, log: Option<PathBuf>) -> RunStart {
    RunStart {
        agent_id: agent.into(),
        project_id: project.into(),
        task_id: Some("t-1".into()),
        provider: "claude-main".into(),
        provider_kind: "claude".into(),
        model: None,
        started_at: at,
        log_path: log,
    }
}

fn end(at: UnixMs, code: i32) -> RunEnd {
    RunEnd {
        ended_at: at,
        exit_code: Some(code),
        provider_kind: "claude".into(),
        ..Default::default()
    }
}

fn write_log(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_claude_run_round_trips_with_what_its_result_says() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        dir.path(),
        "a.log",
        &format!("[agentpm] start pid=1\n{CLAUDE_RUN}[agentpm] exit code=0\n"),
    );
    let db = dir.path().join("coordinator/runs.db");
    let s = RunStore::open(&db).unwrap();
    s.run_started("r1", start("ag", "pr", 1000, Some(log.clone())));
    s.flush();
    let running = s.query(&RunFilter::default()).unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].outcome, Outcome::Running);
    s.run_finished("r1", end(3500, 0));
    s.flush();
    let r = &s.query(&RunFilter::default()).unwrap()[0];
    assert_eq!(
        (
            r.run_id.as_str(),
            r.agent_id.as_str(),
            r.project_id.as_str(),
            r.task_id.as_deref()
        ),
        ("r1", "ag", "pr", Some("t-1"))
    );
    assert_eq!(
        (r.outcome, r.exit_code, r.duration_ms, r.ended_at),
        (Outcome::Ok, Some(0), Some(2500), Some(3500))
    );
    assert_eq!(
        (r.session_id.as_deref(), r.model.as_deref(), r.turns),
        (Some("s-1"), Some("claude-sonnet-4-5"), Some(2))
    );
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens
        ),
        (15, 27, 100, 100)
    );
    assert_eq!((r.cost_usd, r.cost_is_estimate), (Some(0.0123), false));
    assert_eq!(r.final_message.as_deref(), Some("No task; done."));
    assert_eq!(r.log_path.as_deref(), Some(log.to_str().unwrap()));
    // By id, through a read-only reader (the window's).
    let reader = RunReader::open(&db).unwrap();
    assert_eq!(reader.get("r1").unwrap().as_ref(), Some(r));
    assert_eq!(reader.get("nope").unwrap(), None);
    // The file and its directory are private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(db.parent().unwrap()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // JSON is the record itself.
    let v = serde_json::to_value(r).unwrap();
    assert_eq!(
        (v["outcome"].as_str(), v["stopped_by"].is_null(), v["cost_usd"].as_f64()),
        (Some("ok"), true, Some(0.0123))
    );
}

#[test]
fn outcomes_failed_and_stopped() {
    let s = RunStore::open_in_memory();
    s.run_started("f", start("a", "p", 1, None));
    s.run_started("k", start("a", "p", 2, None));
    s.run_finished("f", end(5, 1));
    s.run_finished(
        "k",
        RunEnd {
            ended_at: 9,
            signal: Some(15),
            stopped_by: Some(StoppedBy::User),
            ..Default::default()
        },
    );
    s.flush();
    let all = s.query(&RunFilter::default()).unwrap();
    assert_eq!(
        all.iter().map(|r| (r.run_id.as_str(), r.outcome)).collect::<Vec<_>>(),
        vec![("k", Outcome::Stopped), ("f", Outcome::Failed)]
    );
    assert_eq!(
        (all[0].signal, all[0].stopped_by, all[0].exit_code),
        (Some(15), Some(StoppedBy::User), None)
    );
    // Exit 0 with an error result is a failure too.
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        dir.path(),
        "e.log",
        r#"{"type":"result","subtype":"error_during_execution","is_error":true,"num_turns":1,"total_cost_usd":0.01,"errors":["API Error: 401 invalid x-api-key"]}"#,
    );
    s.run_started("e", start("a", "p", 3, Some(log)));
    s.run_finished("e", end(7, 0));
    s.flush();
    let failed = s
        .query(&RunFilter {
            failed: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        failed.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(),
        vec!["e", "f"]
    );
    assert_eq!(
        failed[0].error_line.as_deref(),
        Some("API Error: 401 invalid x-api-key")
    );
}

#[test]
fn a_run_left_running_is_interrupted_on_reopen_and_migrating_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    // Half a Claude run: the usage seen so far is kept.
    let half: String = CLAUDE_RUN.lines().take(3).map(|l| format!("{l}\n")).collect();
    let log = write_log(dir.path(), "half.log", &half);
    {
        let s = RunStore::open(&db).unwrap();
        s.run_started("r", start("a", "p", 1000, Some(log)));
        s.run_started("done", start("a", "p", 900, None));
        s.run_finished("done", end(950, 0));
        s.flush();
        // The coordinator dies here: no run_finished for "r".
    }
    let s = RunStore::open(&db).unwrap();
    let all = s.query(&RunFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let r = &all[0];
    assert_eq!(r.run_id, "r");
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(r.ended_at.unwrap() >= 1000, "ends at the log's mtime: {:?}", r.ended_at);
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_write_tokens,
            r.session_id.as_deref()
        ),
        (10, 20, 100, Some("s-1"))
    );
    assert_eq!(all[1].outcome, Outcome::Ok);
    let v: i64 = s
        .reader
        .conn
        .lock()
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::version());
    drop(s);
    let s = RunStore::open(&db).unwrap();
    assert_eq!(s.query(&RunFilter::default()).unwrap(), all);
    // WAL mode stuck to the file.
    let mode: String = s
        .reader
        .conn
        .lock()
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_database_from_a_newer_coordinator_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    drop(RunStore::open(&db).unwrap());
    Connection::open(&db)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let e = RunStore::open(&db).err().unwrap().to_string();
    assert!(e.contains("runs.db") && e.contains("99"), "{e}");
    let e = RunReader::open(&db).err().unwrap().to_string();
    assert!(e.contains("99"), "{e}");
    assert!(RunReader::open(&dir.path().join("none.db")).is_err());
}

#[test]
fn filters_and_usage_sums() {
    let dir = tempfile::tempdir().unwrap();
    let s = RunStore::open_in_memory();
    let day = 86_400_000;
    let codex = write_log(dir.path(), "c.log", "{\"type\":\"thread.started\",\"thread_id\":\"t\"}\n{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":1000,\"cached_input_tokens\":0,\"output_tokens\":100}}\n");
    let claude = write_log(dir.path(), "cl.log", CLAUDE_RUN);
    for (i, (agent, project, at, log, kind, code)) in [
        ("a", "p1", day, claude.clone(), "claude", 0),
        ("a", "p2", day + 10, claude.clone(), "claude", 1),
        ("b", "p1", 2 * day, codex.clone(), "codex", 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut st = start(agent, project, at, Some(log));
        st.provider = kind.into();
        st.provider_kind = kind.into();
        s.run_started(&format!("r{i}"), st);
        s.run_finished(
            &format!("r{i}"),
            RunEnd {
                ended_at: at + 5,
                exit_code: Some(code),
                provider_kind: kind.into(),
                ..Default::default()
            },
        );
    }
    s.flush();
    // The JSON written straight from the rows is the records' JSON.
    let mut json = Vec::new();
    assert_eq!(s.write_json(&RunFilter::default(), &mut json).unwrap(), 3);
    let back: Vec<RunRecord> = serde_json::from_slice(&json).unwrap();
    let records = s.query(&RunFilter::default()).unwrap();
    assert_eq!(back, records);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
        serde_json::to_value(&records).unwrap()
    );
    assert!(
        records.iter().any(|r| r.cost_is_estimate)
            && records.iter().any(|r| !r.cost_is_estimate && r.cost_usd.is_some())
    );
    let mut none = Vec::new();
    assert_eq!(
        s.write_json(
            &RunFilter {
                agent: Some("nobody".into()),
                ..Default::default()
            },
            &mut none
        )
        .unwrap(),
        0
    );
    assert_eq!(none, b"[]\n");
    let ids = |f: RunFilter| s.query(&f).unwrap().into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    assert_eq!(ids(RunFilter::default()), vec!["r2", "r1", "r0"]);
    assert_eq!(
        ids(RunFilter {
            agent: Some("a".into()),
            ..Default::default()
        }),
        vec!["r1", "r0"]
    );
    assert_eq!(
        ids(RunFilter {
            project: Some("p1".into()),
            ..Default::default()
        }),
        vec!["r2", "r0"]
    );
    assert_eq!(
        ids(RunFilter {
            since: Some(day + 1),
            ..Default::default()
        }),
        vec!["r2", "r1"]
    );
    assert_eq!(
        ids(RunFilter {
            limit: Some(1),
            ..Default::default()
        }),
        vec!["r2"]
    );

    let by_agent = s.usage(UsageBy::Agent, None).unwrap();
    assert_eq!(by_agent.len(), 2);
    let a = &by_agent[0];
    assert_eq!(
        (
            a.key.as_str(),
            a.runs,
            a.failed,
            a.input_tokens,
            a.output_tokens,
            a.cache_read_tokens
        ),
        ("a", 2, 1, 30, 54, 200)
    );
    assert!((a.cost_usd - 0.0246).abs() < 1e-9 && !a.cost_has_estimate, "{a:?}");
    let b = &by_agent[1];
    assert_eq!(
        (b.key.as_str(), b.runs, b.input_tokens, b.output_tokens),
        ("b", 1, 1000, 100)
    );
    assert!(
        b.cost_has_estimate && (b.cost_usd - (1000.0 * 1.25 + 100.0 * 10.0) / 1e6).abs() < 1e-12,
        "{b:?}"
    );
    let by_day = s.usage(UsageBy::Day, None).unwrap();
    assert_eq!(
        by_day.iter().map(|r| (r.key.as_str(), r.runs)).collect::<Vec<_>>(),
        vec![("1970-01-02", 2), ("1970-01-03", 1)]
    );
    let by_provider = s.usage(UsageBy::Provider, Some(2 * day)).unwrap();
    assert_eq!(
        by_provider.iter().map(|r| (r.key.as_str(), r.runs)).collect::<Vec<_>>(),
        vec![("codex", 1)]
    );
}

#[test]
fn prune_keeps_the_newest_finished_runs_per_agent() {
    let s = RunStore::open_in_memory();
    for i in 0..5 {
        s.run_started(&format!("a{i}"), start("a", "p", i, None));
        s.run_finished(&format!("a{i}"), end(i + 1, 0));
        s.run_started(&format!("b{i}"), start("b", "p", i, None));
        s.run_finished(&format!("b{i}"), end(i + 1, 0));
    }
    s.run_started("a-live", start("a", "p", 0, None));
    s.prune(2);
    s.flush();
    let mut ids: Vec<String> = s
        .query(&RunFilter::default())
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["a-live", "a3", "a4", "b3", "b4"]);
}

#[test]
fn the_store_is_shared_across_threads_and_never_blocks_the_sender() {
    let s = RunStore::open_in_memory();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let id = format!("{t}-{i}");
                    s.run_started(&id, start(&format!("ag{t}"), "p", i, None));
                    s.run_finished(&id, end(i + 1, 0));
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    s.flush();
    let u = s.usage(UsageBy::Agent, None).unwrap();
    assert_eq!(u.iter().map(|r| r.runs).collect::<Vec<_>>(), vec![250; 4]);
    assert!(new_run_id() != new_run_id());
}

#[test]
fn live_progress_updates_a_running_run_only() {
    let s = RunStore::open_in_memory();
    s.run_started("r", start("a", "p", 10, None));
    let mut z = Summarizer::new("claude");
    // The relay feeds the first lines of the stream as they are written.
    for l in CLAUDE_RUN.lines().take(3) {
        z.feed(format!("{l}\n").as_bytes());
    }
    let p = z.progress(20, &PriceTable::default());
    // No `result` yet: the cost so far is the price table's.
    assert!(p.cost_is_estimate && p.cost_usd.unwrap() > 0.0, "{p:?}");
    s.run_progress("r", p.clone());
    s.flush();
    let r = &s.query(&RunFilter::default()).unwrap()[0];
    assert_eq!(
        (
            r.outcome,
            r.input_tokens,
            r.output_tokens,
            r.cache_write_tokens,
            r.last_activity_at
        ),
        (Outcome::Running, 10, 20, 100, Some(20))
    );
    assert_eq!((r.cost_usd, r.cost_is_estimate), (p.cost_usd, true));
    assert_eq!(r.session_id.as_deref(), Some("s-1"));
    s.run_finished("r", end(30, 0));
    s.run_progress(
        "r",
        RunProgress {
            last_activity_at: 99,
            ..Default::default()
        },
    );
    s.flush();
    let r = &s.query(&RunFilter::default()).unwrap()[0];
    assert_eq!((r.outcome, r.last_activity_at), (Outcome::Ok, Some(20)));
}

#[test]
fn a_version_1_database_is_migrated_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    {
        let mut c = Connection::open(&db).unwrap();
        schema::prepare_up_to(&mut c, 1);
        c.execute("INSERT INTO runs (run_id, agent_id, project_id, provider, provider_kind, started_at, outcome, input_tokens) VALUES ('old', 'a', 'p', 'claude', 'claude', 5, 'ok', 42)", []).unwrap();
    }
    assert!(matches!(RunReader::open(&db), Err(StoreError::TooOld { found: 1, .. })));
    let s = RunStore::open(&db).unwrap();
    let r = &s.query(&RunFilter::default()).unwrap()[0];
    assert_eq!(
        (r.run_id.as_str(), r.input_tokens, r.last_activity_at),
        ("old", 42, None)
    );
    drop(s);
    assert!(RunReader::open(&db).is_ok());
}

#[test]
fn json_written_from_the_rows_is_the_records_in_order_for_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let s = RunStore::open(&dir.path().join("runs.db")).unwrap();
    // Equal start times: the order is (started_at, id), newest first.
    for i in 0..181_i64 {
        let id = format!("r{i:03}");
        s.run_started(&id, start(&format!("a{}", i % 3), "p", i / 4, None));
        s.run_finished(&id, end(i / 4 + 1, (i % 2) as i32));
    }
    s.flush();
    for f in [
        RunFilter::default(),
        RunFilter {
            agent: Some("a1".into()),
            ..Default::default()
        },
        RunFilter {
            failed: true,
            since: Some(10),
            ..Default::default()
        },
        RunFilter {
            limit: Some(70),
            ..Default::default()
        },
        RunFilter {
            agent: Some("none".into()),
            ..Default::default()
        },
    ] {
        let mut json = Vec::new();
        let n = s.write_json(&f, &mut json).unwrap();
        let back: Vec<RunRecord> = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{f:?}: {e}"));
        let want = s.query(&f).unwrap();
        assert_eq!(n, want.len(), "{f:?}");
        assert_eq!(back, want, "{f:?}");
    }
}

#[test]
fn a_file_that_is_no_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    std::fs::write(
        &db,
        b"this is not SQLite, just some bytes that are long enough to be looked at",
    )
    .unwrap();
    let e = RunStore::open(&db).err().expect("refused").to_string();
    assert!(e.contains("runs.db") && e.contains("not a database"), "{e}");
}

#[test]
fn newest_first_is_by_start_whatever_the_order_runs_were_recorded_in() {
    // Recorded out of order, some in the same millisecond: the listing (one backwards pass over the
    // table) and a filtered one (through an index) agree with the start times.
    let s = RunStore::open_in_memory();
    for (id, at) in [("a", 50), ("b", 10), ("c", 50), ("d", 30), ("e", 10)] {
        s.run_started(id, start("agt", "p", at, None));
    }
    s.flush();
    let ids = |f: &RunFilter| s.query(f).unwrap().into_iter().map(|r| r.run_id).collect::<Vec<_>>();
    let want = vec!["c", "a", "d", "e", "b"];
    assert_eq!(ids(&RunFilter::default()), want);
    assert_eq!(
        ids(&RunFilter {
            agent: Some("agt".into()),
            ..Default::default()
        }),
        want
    );
    assert_eq!(
        ids(&RunFilter {
            since: Some(0),
            ..Default::default()
        }),
        want
    );
}

#[test]
fn migrating_to_ids_by_start_keeps_the_order_and_the_rows() {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    crate::runs::schema::prepare_up_to(&mut conn, 2);
    for (i, (id, at)) in [("x", 300), ("y", 100), ("z", 300)].iter().enumerate() {
        conn.execute("INSERT INTO runs (id, run_id, agent_id, project_id, provider, provider_kind, started_at, outcome) VALUES (?1, ?2, 'a', 'p', 'c', 'claude', ?3, 'ok')", rusqlite::params![i as i64 + 1, id, at]).unwrap();
    }
    crate::runs::schema::prepare(&mut conn, ":memory:").unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id, run_id FROM runs ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (100 << 20, "y".into()),
            (300 << 20, "x".into()),
            ((300 << 20) + 1, "z".into())
        ]
    );
}
