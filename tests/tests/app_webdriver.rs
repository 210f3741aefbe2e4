//! The real app under Xvfb, driven through WebDriver (tauri-driver + WebKitWebDriver).
//! scripts/app-e2e starts Xvfb, a D-Bus session with gnome-keyring and tauri-driver, then runs this with
//! AGENTPM_APP_E2E=1 and WEBDRIVER_URL. Screenshots go to docs/screenshots/.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "webdriver/transcript.rs"]
mod transcript;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn new(app: &Path, args: &[&str]) -> Session {
        let url = std::env::var("WEBDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:4444".into());
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app.display().to_string(), "args": args}}}});
        let v: Value = http
            .post(format!("{url}/session"))
            .json(&caps)
            .send()
            .await
            .expect("webdriver reachable")
            .json()
            .await
            .unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Session {
            http,
            base: format!("{url}/session/{id}"),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// Wait until the selector exists and is displayed.
    async fn wait(&self, css: &str, timeout: Duration) -> String {
        let t = Instant::now();
        loop {
            if let Some(e) = self.find(css).await {
                let shown: Value = self
                    .http
                    .get(format!("{}/element/{e}/displayed", self.base))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if shown["value"].as_bool() == Some(true) {
                    return e;
                }
            }
            assert!(t.elapsed() < timeout, "{css} did not appear within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    async fn click(&self, css: &str) {
        let e = self.wait(css, Duration::from_secs(15)).await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
    }

    async fn text(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => {
                let v: Value = self
                    .http
                    .get(format!("{}/element/{e}/text", self.base))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["value"].as_str().unwrap_or("").to_string()
            }
            None => String::new(),
        }
    }

    async fn wait_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let t = Instant::now();
        loop {
            let text = self.text(css).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                t.elapsed() < timeout,
                "{css} never contained {needle:?}; last text: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.wait(css, Duration::from_secs(15)).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({"text": text})).await;
    }

    async fn exec(&self, script: &str) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": []})).await["value"].clone()
    }

    /// Invoke a command of the app from the page, as a hostile page could: "ok: <result>" or "err: <error>".
    async fn invoke(&self, command: &str, args: Value) -> String {
        let js = format!("const done = arguments[arguments.length - 1]; window.__TAURI__.core.invoke({command:?}, {args}).then((r) => done('ok: ' + JSON.stringify(r)), (e) => done('err: ' + (e.message || e)));");
        self.post("/execute/async", json!({"script": js, "args": []})).await["value"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Screenshot after the window finished starting and painted what the DOM holds now (a capture taken
    /// right after a DOM change can show the previous frame).
    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let t = Instant::now();
        while self.exec("return window.__readyMs !== undefined").await != json!(true) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the window never finished starting (screenshot {name})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let js = "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
        self.post("/execute/async", json!({"script": js, "args": []})).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let v: Value = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap_or(""))
            .expect("screenshot");
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// SIGTERM to the app started with `--data-dir <dir_arg>` (a logout or `kill`), then wait for it to exit.
async fn terminate_app(dir_arg: &str) -> Duration {
    let app_pid = processes()
        .into_iter()
        .find(|(_, _, cmd)| {
            cmd.contains("agentpm-coordinator-app") && cmd.contains(dir_arg) && !cmd.contains("--fake-agent")
        })
        .map(|(pid, _, _)| pid)
        .expect("the app process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(app_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let t = Instant::now();
    while agentpm_e2e::pid_alive(app_pid as i32) {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "the app did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.elapsed()
}

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}

/// The app under test: the workspace's debug build, or `AGENTPM_APP_BIN` (e.g. a release build, to measure it).
fn app() -> PathBuf {
    std::env::var_os("AGENTPM_APP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| agentpm_e2e::bin("agentpm-coordinator-app"))
}

/// (pid, ppid, argv) of every process, from /proc.
fn processes() -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the `(comm)` part; comm may contain spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        let cmd =
            String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default()).replace('\0', " ");
        out.push((pid, ppid, cmd));
    }
    out
}

/// A field of /proc/<pid>/smaps_rollup in kB: `Rss:` counts every shared library page the process maps,
/// `Pss:` shares each page among the processes that map it (what the process really costs).
fn mem_kb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// CPU time (user + system, seconds) of a process, from /proc/<pid>/stat.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after `(comm) state`; clock ticks of 1/100 s.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// The app's CPU use over `secs` while it shows the window with agents running: percent of one core for the
/// app process, and with its WebKit helpers.
async fn app_cpu_percent(secs: u64) -> Option<(f64, f64)> {
    let (app, helpers) = app_pids()?;
    let total = |pids: &[u32]| pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();
    let all: Vec<u32> = std::iter::once(app).chain(helpers).collect();
    let (a0, t0) = (cpu_secs(app), total(&all));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (a1, t1) = (cpu_secs(app), total(&all));
    Some(((a1 - a0) * 100.0 / secs as f64, (t1 - t0) * 100.0 / secs as f64))
}

/// The app process under this test's tauri-driver and its WebKit helper processes.
fn app_pids() -> Option<(u32, Vec<u32>)> {
    let driver: u32 = std::env::var("TAURI_DRIVER_PID").ok()?.parse().ok()?;
    let procs = processes();
    let mut tree = vec![driver];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(procs.iter().filter(|(_, pp, _)| *pp == p).map(|(c, _, _)| *c));
        i += 1;
    }
    let (app, _, _) = procs.iter().find(|(pid, _, cmd)| {
        tree.contains(pid) && cmd.contains("agentpm-coordinator-app") && !cmd.contains("--fake-agent")
    })?;
    Some((
        *app,
        procs
            .iter()
            .filter(|(_, pp, cmd)| pp == app && cmd.contains("WebKit"))
            .map(|(c, _, _)| *c)
            .collect(),
    ))
}

/// (RSS, PSS) in MB of the app process under this test's tauri-driver, and of the app plus its WebKit
/// helper processes (web content, network). `None` when the app cannot be found.
fn app_mem_mb() -> Option<[(f64, f64); 2]> {
    let (app, helpers) = app_pids()?;
    let sum = |field: &str| helpers.iter().map(|h| mem_kb(*h, field)).sum::<f64>();
    let (rss, pss) = (mem_kb(app, "Rss:"), mem_kb(app, "Pss:"));
    Some([
        (rss / 1024.0, pss / 1024.0),
        ((rss + sum("Rss:")) / 1024.0, (pss + sum("Pss:")) / 1024.0),
    ])
}

#[tokio::test]
async fn app_end_to_end() {
    if std::env::var("AGENTPM_APP_E2E").as_deref() != Ok("1") {
        eprintln!("SKIPPED: run scripts/app-e2e (it starts Xvfb and tauri-driver and sets AGENTPM_APP_E2E=1)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo_dir = tmp.path().join("demo-data");
    let demo_dir_s = demo_dir.display().to_string();

    // 1. Demo mode: enable the disabled agent, give it its passkey, watch its instance come and go.
    let launched = Instant::now();
    let s = Session::new(&app(), &["--demo", "--data-dir", &demo_dir_s]).await;
    s.wait_text("#status-line", "Demo", Duration::from_secs(30)).await;
    let mut ready = Value::Null;
    for _ in 0..50 {
        ready = s.exec("return window.__readyMs || null").await;
        if !ready.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready.is_number(), "the page never reported ready");
    println!(
        "cold start (app main() -> window rendered): {:.0} ms; WebDriver session request -> window ready: {} ms",
        ready.as_f64().unwrap_or(0.0),
        launched.elapsed().as_millis()
    );
    s.click("#nav-agents").await;
    s.wait("[data-testid=enable-agt_03]", Duration::from_secs(10)).await;
    s.wait_text("[data-testid=passkey-state-agt_03]", "missing", Duration::from_secs(10))
        .await;
    s.click("[data-testid=enable-agt_03]").await;
    // Enabled without a passkey: it needs the user. The banner says so with the fix as a button, the badge counts it.
    s.wait_text(
        "[data-testid=\"attention-agent:agt_03:passkey\"]",
        "agt_03 has no passkey",
        Duration::from_secs(30),
    )
    .await;
    assert!(
        !s.text("#banner").await.contains("agentpm-coordinator"),
        "CLI commands in the window's banner"
    );
    s.wait_text("[data-testid=attention-badge]", "1", Duration::from_secs(10))
        .await;
    s.screenshot("attention").await;
    s.click("[data-testid=\"fix-agent:agt_03:passkey\"]").await;
    // The table is live: retry the click if it landed on a row that was just redrawn.
    let mut opened = false;
    for _ in 0..10 {
        // The banner's button opened it already, unless a live redraw closed it again.
        if s.find("[data-testid=passkey-input-agt_03]").await.is_none() {
            s.click("[data-testid=set-passkey-agt_03]").await;
        }
        if s.find("[data-testid=passkey-input-agt_03]").await.is_some() {
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(opened, "the passkey field never opened");
    s.type_into("[data-testid=passkey-input-agt_03]", "demo-agt_03").await;
    s.click("[data-testid=passkey-save-agt_03]").await;
    s.wait_text("[data-testid=passkey-state-agt_03]", "present", Duration::from_secs(10))
        .await;
    s.screenshot("agents").await;
    s.click("#nav-instances").await;
    s.wait("tr[data-testid^=instance-agt_03]", Duration::from_secs(30))
        .await;
    s.screenshot("instances").await;
    // What the app costs while agents run and the Instances page updates live.
    let running = s
        .exec("return document.querySelectorAll('#instances-table tbody tr').length")
        .await;
    if let (Some((app_cpu, with_webkit)), Some([(rss, _), (total, _)])) = (app_cpu_percent(10).await, app_mem_mb()) {
        println!("app with {running} running instances on the Instances page: CPU {app_cpu:.1} % of a core (app), {with_webkit:.1} % with WebKit over 10 s; RSS {rss:.0} MB, {total:.0} MB with WebKit");
    }
    // The demo keeps going (refilled work): "Stop and pause agent" ends its runs, and they disappear.
    s.click("[data-testid=stop-pause-agt_03]").await;
    let t = Instant::now();
    let mut gone_since: Option<Instant> = None;
    loop {
        let present = s.find("tr[data-testid^=instance-agt_03]").await.is_some();
        match (present, gone_since) {
            (false, None) => gone_since = Some(Instant::now()),
            (true, _) => gone_since = None,
            (false, Some(g)) if g.elapsed() > Duration::from_secs(4) => break,
            _ => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "agt_03's instances never went away"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.click("#nav-agents").await;
    s.wait_text("[data-testid=state-agt_03]", "paused", Duration::from_secs(15))
        .await;
    // Its log, in the Logs page.
    s.click("#nav-logs").await;
    s.exec("const a = document.querySelector('#log-agent'); a.value = 'agt_03'; a.dispatchEvent(new Event('change')); return true").await;
    s.wait_text(
        "#log-view",
        "fake-agent: authenticated as agt_03",
        Duration::from_secs(15),
    )
    .await;
    let log = s.text("#log-view").await;
    assert!(!log.contains("demo-agt_03"), "the passkey is shown in the log");
    s.screenshot("logs").await;
    // Runs page: the demo's runs from the run history, with tokens and cost from their stream-json.
    s.click("#nav-runs").await;
    s.exec("const a = document.querySelector('#runs-since'); a.value = ''; a.dispatchEvent(new Event('change')); return true").await;
    let runs = s
        .wait_text("[data-testid=runs-table]", "agt_03", Duration::from_secs(20))
        .await;
    // The demo's runs last 20-60 s: the first to end are the failing and the stopped ones.
    assert!(
        ["worked", "failed", "stopped"].iter().any(|o| runs.contains(o)) && runs.contains("$"),
        "runs without outcome or cost: {runs}"
    );
    s.screenshot("runs").await;
    transcript::transcript_phase(&s).await;
    // Usage page: per agent, the totals of those runs.
    s.click("#nav-usage").await;
    s.exec("const a = document.querySelector('#usage-by'); a.value = 'agent'; a.dispatchEvent(new Event('change')); return true").await;
    let usage = s
        .wait_text("[data-testid=usage-table]", "agt_03", Duration::from_secs(20))
        .await;
    assert!(usage.contains("$"), "usage without cost: {usage}");
    s.wait("#usage-chart rect.bar", Duration::from_secs(10)).await;
    s.screenshot("usage").await;
    // Providers page with a working "Test".
    s.click("#nav-providers").await;
    s.click("[data-testid=prov-claude-test]").await;
    s.wait_text("[data-testid=prov-claude-result]", "claude", Duration::from_secs(10))
        .await;
    // A custom provider whose command resolves; saved to settings.json.
    s.type_into("#new-provider", "local-sh").await;
    s.click("#add-provider").await;
    s.type_into("[data-testid=prov-local-sh-command]", "sh").await;
    s.type_into("[data-testid=prov-local-sh-args]", "-c true").await;
    s.click("[data-testid=prov-local-sh-test]").await;
    s.wait_text(
        "[data-testid=prov-local-sh-result]",
        "found: /",
        Duration::from_secs(10),
    )
    .await;
    s.click("#save-providers").await;
    s.wait_text("#providers-msg", "Saved", Duration::from_secs(10)).await;
    let saved = std::fs::read_to_string(demo_dir.join("coordinator/demo-settings.json")).unwrap();
    assert!(saved.contains("\"local-sh\""), "custom provider not saved: {saved}");
    s.screenshot("providers").await;
    // Settings: a valid change is saved; an invalid one shows the inline error and saves nothing.
    s.click("#nav-settings").await;
    s.type_into("#set-polling", "7").await;
    s.click("#save-settings").await;
    s.wait_text("#settings-msg", "Saved", Duration::from_secs(10)).await;
    s.type_into("#set-max", "0").await;
    s.click("#save-settings").await;
    let err = s
        .wait_text("#err-max_concurrent", "not valid", Duration::from_secs(10))
        .await;
    println!("inline error: {err}");
    s.screenshot("settings-invalid").await;
    let saved = std::fs::read_to_string(demo_dir.join("coordinator/demo-settings.json")).unwrap();
    assert!(
        saved.contains("\"max_concurrent\": 3") && saved.contains("\"polling_interval_secs\": 7"),
        "{saved}"
    );
    // The window's input is not trusted (issue 15 item 11): `/` as the log folder is a field error and is not
    // saved, and read_log refuses files that are not run logs below the log folder.
    s.type_into("#set-max", "3").await;
    s.type_into("#set-logdir", "/").await;
    s.click("#save-settings").await;
    s.wait_text("#err-log_dir", "system folder", Duration::from_secs(10))
        .await;
    let saved = std::fs::read_to_string(demo_dir.join("coordinator/demo-settings.json")).unwrap();
    assert!(!saved.contains("\"log_dir\": \"/\""), "log_dir / was saved: {saved}");
    let settings_json = demo_dir.join("coordinator/demo-settings.json").display().to_string();
    for path in ["/etc/passwd", settings_json.as_str()] {
        let r = s.invoke("read_log", json!({"path": path})).await;
        assert!(
            r.starts_with("err: ") && r.contains("not inside the log folder"),
            "read_log {path}: {r}"
        );
    }
    instance_rows_open_their_own_run_and_a_disabled_agents_run_stays_visible(&s).await;
    shortcuts_and_removing_an_agent(&s).await;
    // Window geometry is kept across launches (tauri-plugin-window-state, window-state.json).
    let r = s.post("/window/rect", json!({"width": 880, "height": 620})).await;
    let size = s.exec("return [window.outerWidth, window.outerHeight]").await;
    println!("window resized to {size} ({})", r["value"]);
    // Quit as a logout does (WebDriver's own session end kills the app without warning).
    terminate_app(&demo_dir_s).await;
    s.close().await;
    // The last page was saved when it was opened (read now: the next launch rewrites the file as it starts).
    let ui_state = std::fs::read_to_string(demo_dir.join("coordinator/ui-state.json")).unwrap_or_default();
    assert!(
        ui_state.contains("\"settings\""),
        "last page not kept in ui-state.json: {ui_state}"
    );

    // 2. Restart: the setting is still there, and the window reopens on the page it was left on (UI state in
    // the store plugin's ui-state.json, next to settings.json).
    let s = Session::new(&app(), &["--demo", "--data-dir", &demo_dir_s]).await;
    s.wait_text("#status-line", "Demo", Duration::from_secs(30)).await;
    let mut on_settings = false;
    for _ in 0..50 {
        if s.exec("return !document.querySelector('#page-settings').classList.contains('hidden')")
            .await
            == json!(true)
        {
            on_settings = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(on_settings, "the window did not reopen on the Settings page");
    let size = s.exec("return [window.outerWidth, window.outerHeight]").await;
    assert_eq!(
        size,
        json!([880, 620]),
        "the window size was not kept across launches: {}",
        std::fs::read_to_string(demo_dir.join("coordinator/window-state.json")).unwrap_or_default()
    );
    assert!(
        demo_dir.join("coordinator/window-state.json").exists(),
        "no window-state.json beside settings.json"
    );
    // The window's errors reach the app log (tauri-plugin-log), which never holds a passkey.
    s.exec("setTimeout(() => { throw new Error('e2e-probe: a window error') }, 0); return true")
        .await;
    let app_log = demo_dir.join("coordinator/app.log");
    let t = Instant::now();
    let log_text = loop {
        let text = std::fs::read_to_string(&app_log).unwrap_or_default();
        if text.contains("e2e-probe: a window error") {
            break text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the window error never reached {}: {text}",
            app_log.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        log_text.contains("window ready"),
        "app.log lacks the engine's own lines: {log_text}"
    );
    assert!(!log_text.contains("demo-agt_03"), "a passkey reached app.log");
    s.click("#nav-settings").await;
    let v = s.exec("return document.querySelector('#set-polling').value").await;
    assert_eq!(v, json!("7"), "polling interval not persisted across restarts");
    s.screenshot("settings").await;
    s.close().await;

    // 3. First run: the welcome view, then import a YAML and see its agents with passkeys present.
    let fresh = tmp.path().join("fresh-data");
    let s = Session::new(&app(), &["--data-dir", &fresh.display().to_string()]).await;
    s.wait("#page-welcome", Duration::from_secs(30)).await;
    s.wait_text(
        "#doctor",
        "AI Agent PM is not running (no server socket at",
        Duration::from_secs(20),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    match app_mem_mb() {
        Some([(own, own_pss), (total, total_pss)]) => println!(
            "idle app RSS: {own:.1} MB (app process), {total:.1} MB with its WebKit helper processes; PSS {own_pss:.1} MB / {total_pss:.1} MB"
        ),
        None => println!("idle app RSS: not measured (TAURI_DRIVER_PID unset or app not found)"),
    }
    s.screenshot("welcome").await;
    // Single instance: a second launch hands over to the running app (which shows its window) and exits.
    let mut second = std::process::Command::new(app())
        .args(["--data-dir", &fresh.display().to_string()])
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(st) = second.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(20) {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second launch kept running next to the first");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "second launch: {status}");
    s.wait("#page-welcome", Duration::from_secs(5)).await;
    let yaml = tmp.path().join("coordinator.yaml");
    std::fs::write(&yaml, "polling_interval: 10\nmax_concurrent: 2\nagents:\n  agt_imported_a:\n    passkey: imported-secret-aaaa\n  agt_imported_b:\n    passkey: imported-secret-bbbb\n").unwrap();
    s.type_into("#import-path", &yaml.display().to_string()).await;
    s.click("#import-btn").await;
    let moved = s
        .wait_text("[data-testid=import-moved]", "agt_imported_b", Duration::from_secs(20))
        .await;
    assert!(moved.contains("agt_imported_a"), "{moved}");
    // Offered afterwards: scrub the file (no plaintext copy kept).
    s.click("[data-testid=import-scrub]").await;
    s.wait_text(
        "[data-testid=import-scrubbed]",
        "no longer contains passkeys",
        Duration::from_secs(20),
    )
    .await;
    let moved_after = s.text("[data-testid=import-moved]").await;
    assert!(
        moved_after.contains("agt_imported_a") && moved_after.contains("agt_imported_b"),
        "the scrub hid which passkeys moved: {moved_after}"
    );
    let scrubbed = std::fs::read_to_string(&yaml).unwrap();
    assert!(
        !scrubbed.contains("imported-secret"),
        "scrubbed file still holds a passkey: {scrubbed}"
    );
    // No plaintext copy is left beside it (the scrub keeps no backup of secrets).
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains("imported-secret")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "plaintext copies of the passkeys left: {leftovers:?}"
    );
    s.screenshot("import").await;
    import_with_new_values_replaces_on_request(&s, &yaml).await;
    // The app holds the coordinator lock of its settings file: the CLI refuses to run beside it, naming it.
    let cli = std::process::Command::new(agentpm_e2e::bin("agentpm-coordinator"))
        .arg("run")
        .env("AGENTPM_DATA_DIR", &fresh)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli.status.success() && err.contains("another coordinator is already running"),
        "the CLI ran beside the app: {} {err}",
        cli.status
    );
    s.click("[data-testid=import-done]").await;
    s.wait_text(
        "[data-testid=passkey-state-agt_imported_a]",
        "present",
        Duration::from_secs(15),
    )
    .await;
    s.wait_text(
        "[data-testid=passkey-state-agt_imported_b]",
        "present",
        Duration::from_secs(15),
    )
    .await;
    let settings = std::fs::read_to_string(fresh.join("coordinator/settings.json")).unwrap();
    assert!(!settings.contains("imported-secret"), "a passkey reached settings.json");
    s.screenshot("agents-imported").await;
    // The welcome view (import, setup checks) stays reachable once the app is set up.
    s.click("[data-testid=open-import]").await;
    s.wait("#page-welcome", Duration::from_secs(10)).await;
    // Dropping a YAML on the window imports it too. The OS drag itself cannot be driven through WebDriver:
    // emit the webview's drag-drop event (what Tauri sends on a real drop) and check the window's handling.
    let dropped = tmp.path().join("dropped.yaml");
    std::fs::write(
        &dropped,
        "agents:\n  agt_dropped_c:\n    passkey: dropped-secret-cccc\n",
    )
    .unwrap();
    let js = format!("window.__TAURI__.event.emit('tauri://drag-drop', {{ paths: [{:?}], position: {{ x: 20, y: 20 }} }}); return true", dropped.display().to_string());
    s.exec(&js).await;
    s.wait_text("[data-testid=import-moved]", "agt_dropped_c", Duration::from_secs(20))
        .await;
    s.click("[data-testid=import-done]").await;
    s.wait_text(
        "[data-testid=passkey-state-agt_dropped_c]",
        "present",
        Duration::from_secs(15),
    )
    .await;
    s.close().await;

    // 4. The other way round: a CLI coordinator already runs on these settings. The window says so (naming its
    // pid), and the app takes over by itself once the CLI stops.
    let shared = tmp.path().join("shared-data");
    std::fs::create_dir_all(shared.join("coordinator")).unwrap();
    std::fs::write(shared.join("coordinator/settings.json"), "{}").unwrap();
    let mut cli = std::process::Command::new(agentpm_e2e::bin("agentpm-coordinator"))
        .args(["--json", "run"])
        .env("AGENTPM_DATA_DIR", &shared)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its first JSON line (a snapshot or an event) comes after it took the lock.
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(cli.stdout.as_mut().unwrap()), &mut first).unwrap();
    assert!(
        first.starts_with("{\"event\"") || first.starts_with("{\"snapshot\""),
        "{first}"
    );
    let s = Session::new(&app(), &["--data-dir", &shared.display().to_string(), "--show"]).await;
    let banner = s
        .wait_text(
            "#banner",
            "another coordinator is already running",
            Duration::from_secs(30),
        )
        .await;
    assert!(banner.contains(&format!("pid {}", cli.id())), "{banner}");
    s.screenshot("lock-held").await;
    let (status, obeyed) = agentpm_e2e::sigterm_and_wait(&mut cli, Duration::from_secs(20));
    assert!(obeyed && status.success(), "the CLI did not stop: {status:?}");
    let t = Instant::now();
    loop {
        let text = s.text("#banner").await;
        let status_line = s.text("#status-line").await;
        if !text.contains("another coordinator") && !status_line.contains("stopped") {
            println!("app took over {:.1} s after the CLI stopped", t.elapsed().as_secs_f64());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the app did not take over: banner {text:?}, status {status_line:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    s.close().await;

    // 5. SIGTERM (logout, `kill`) ends the app like Quit: running agents are stopped by the coordinator (their
    // run logs get the closing line saying so), none is left behind.
    let term_dir = tmp.path().join("term-data");
    let s = Session::new(&app(), &["--demo", "--data-dir", &term_dir.display().to_string()]).await;
    s.wait("tr[data-testid^=instance-]", Duration::from_secs(30)).await;
    let dir_arg = term_dir.display().to_string();
    let t = terminate_app(&dir_arg).await;
    println!("app exited {:.1} s after SIGTERM", t.as_secs_f64());
    // The app's fake agents are the app binary itself (other runs on this machine are not ours).
    let exe = app().display().to_string();
    let left: Vec<_> = processes()
        .into_iter()
        .filter(|(_, _, cmd)| cmd.starts_with(&exe) && cmd.contains("--fake-agent"))
        .collect();
    assert!(left.is_empty(), "agents outlived the app: {left:?}");
    let mut stopped_logs = 0;
    for agent in std::fs::read_dir(term_dir.join("demo/logs")).unwrap().flatten() {
        for log in std::fs::read_dir(agent.path()).unwrap().flatten() {
            stopped_logs += std::fs::read_to_string(log.path())
                .unwrap_or_default()
                .contains("(stopped by the coordinator)") as usize;
        }
    }
    assert!(
        stopped_logs > 0,
        "no run was stopped by the coordinator: the app died without stopping its agents"
    );
    drop(s);
}

/// Instances: a row opens the transcript of that very run; an agent disabled mid-run still shows its run.
async fn instance_rows_open_their_own_run_and_a_disabled_agents_run_stays_visible(s: &Session) {
    s.click("#nav-instances").await;
    s.wait("tr[data-testid^=instance-agt_01]", Duration::from_secs(60))
        .await;
    // Read the row and click it in one step: rows come and go with the demo's runs.
    let task = s.exec("const r = document.querySelector('tr[data-testid^=instance-agt_01]'); if (!r) return null; const t = r.children[2].textContent; r.click(); return t").await;
    let task = task
        .as_str()
        .expect("the agt_01 row vanished before the click")
        .to_string();
    let title = s.wait_text("#tr-title", &task, Duration::from_secs(10)).await;
    assert!(title.contains("agt_01"), "the row opened another run: {title}");
    // Disable agt_01 while it runs: the run goes on and the Agents page says so (running, not "disabled").
    s.click("#nav-instances").await;
    s.wait("tr[data-testid^=instance-agt_01]", Duration::from_secs(60))
        .await;
    s.click("#nav-agents").await;
    s.click("[data-testid=enable-agt_01]").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the settings reload and the next snapshot
    let state = s.text("[data-testid=state-agt_01]").await;
    let rows = s
        .exec("return document.querySelectorAll('tr[data-testid^=instance-agt_01]').length")
        .await;
    if rows.as_u64().unwrap_or(0) > 0 {
        assert!(
            state.contains("running"),
            "a disabled agent's current run is hidden: {state}"
        );
    }
    s.click("[data-testid=enable-agt_01]").await;
}

/// ⌘/Ctrl+1…7 open the pages; an agent can be removed from the window (after a confirmation).
async fn shortcuts_and_removing_an_agent(s: &Session) {
    s.exec(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: '2', ctrlKey: true, bubbles: true})); return true",
    )
    .await;
    s.wait("#page-agents:not(.hidden)", Duration::from_secs(5)).await;
    s.exec(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: '1', metaKey: true, bubbles: true})); return true",
    )
    .await;
    s.wait("#page-instances:not(.hidden)", Duration::from_secs(5)).await;
    s.exec(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: '2', ctrlKey: true, bubbles: true})); return true",
    )
    .await;
    s.type_into("#new-agent", "agt_removable").await;
    s.click("#add-agent").await;
    s.wait("[data-testid=remove-agt_removable]", Duration::from_secs(10))
        .await;
    // The confirmations are the page's own dialogs: answered yes to removing, no to deleting a passkey.
    s.exec("let n = 0; window.confirm = () => (n++ === 0); return true")
        .await;
    s.click("[data-testid=remove-agt_removable]").await;
    let t = Instant::now();
    while s.find("[data-testid=agent-agt_removable]").await.is_some() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the removed agent is still listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t = Instant::now();
    while s.invoke("app_state", json!({})).await.contains("agt_removable") {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the removed agent is still in the settings or the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Back to Settings (the 4th page), where the next step expects the window to be left.
    s.exec(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: '4', ctrlKey: true, bubbles: true})); return true",
    )
    .await;
    s.wait("#page-settings:not(.hidden)", Duration::from_secs(5)).await;
}

/// A re-export with a rotated passkey: kept by default (a conflict), replaced by "Use the file's values".
async fn import_with_new_values_replaces_on_request(s: &Session, yaml: &Path) {
    std::fs::write(yaml, "agents:\n  agt_imported_a:\n    passkey: imported-rotated-cccc\n").unwrap();
    s.click("[data-testid=import-done]").await;
    s.click("[data-testid=open-import]").await;
    s.type_into("#import-path", &yaml.display().to_string()).await;
    s.click("#import-btn").await;
    s.wait_text(
        "[data-testid=import-conflicts]",
        "agt_imported_a",
        Duration::from_secs(20),
    )
    .await;
    s.click("[data-testid=import-overwrite]").await;
    s.wait_text("[data-testid=import-moved]", "agt_imported_a", Duration::from_secs(20))
        .await;
    assert!(
        s.find("[data-testid=import-overwrite]").await.is_none(),
        "still offering to replace after replacing"
    );
}
