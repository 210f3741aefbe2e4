// AgentPM Coordinator window: plain JS, no bundler. Talks to the Rust side through Tauri commands and events.
"use strict";
const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "style") e.style.cssText = v; // CSSOM, which the CSP allows (a style attribute it would not)
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
};

// The window's errors go to the app log (tauri-plugin-log), so a broken page leaves a trace in app.log.
const logToApp = (level, message) =>
  invoke("plugin:log|log", { level, message: String(message).slice(0, 4000), location: "window" }).catch(() => {});
window.addEventListener("error", (ev) => logToApp(5, `${ev.message} (${ev.filename}:${ev.lineno})`));
window.addEventListener("unhandledrejection", (ev) => logToApp(5, `unhandled rejection: ${(ev.reason && ev.reason.stack) || ev.reason}`));

// Window state that is not a setting (last page, chosen log agent): tauri-plugin-store, ui-state.json.
// Saved at once, not debounced: a window closed (or an app killed) right after a click still reopens there.
let uiState = null;
const remember = (key, value) => { if (uiState) uiState.set(key, value).then(() => uiState.save()).catch(() => {}); };

let view = null;      // AppView from the backend
let snap = null;      // latest Snapshot
let page = "instances";

function showPage(name) {
  page = name;
  if (name !== "welcome") remember("page", name);
  document.querySelectorAll(".page").forEach((p) => p.classList.add("hidden"));
  $(`#page-${name}`).classList.remove("hidden");
  document.querySelectorAll("#nav button").forEach((b) => b.classList.toggle("active", b.dataset.page === name));
  if (name === "agents") renderAgents(true);
  if (name === "providers") renderProviders();
  if (name === "settings") renderSettings();
  if (name === "logs") renderLogAgents();
  if (name === "runs") renderRunHistory();
  if (name === "usage") renderUsage();
  if (name === "welcome") runDoctor();
  renderStatus();
}

// Times of day in the user's locale, to the minute: the tray writes them the same way (set_clock_style).
const fmtClock = (ms) => new Date(ms).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
const twelveHour = () => /^h1[12]$/.test(new Intl.DateTimeFormat([], { hour: "numeric" }).resolvedOptions().hourCycle || "");

function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${String(r).padStart(2, "0")}s` : `${r}s`;
}

// An agent's state in words comes from the Rust side (status_words.rs, the same words as the tray menu):
// each snapshot carries `agent_words[agent_id] = {text, tone}`; the tone is the pill's CSS class.
function stateWords(id) {
  const w = snap && snap.agent_words && snap.agent_words[id];
  return w ? [w.text, w.tone === "neutral" ? "" : w.tone] : ["…", ""];
}

// ---------- status line and instances ----------
function renderStatus() {
  if (!snap) return;
  const parts = [`${snap.instances.length} running`];
  const cooling = snap.agents.filter((a) => a.state.kind === "cooldown").length;
  if (cooling) parts.push(`${cooling} cooling down`);
  parts.push(snap.server_words ? snap.server_words.text : (!snap.running ? "stopped" : snap.server.reachable ? "server OK" : "server unreachable"));
  $("#status-line").textContent = (view && view.demo ? "Demo · " : "") + parts.join(" · ");
  $("#toggle-run").textContent = snap.running ? "Stop" : "Start";
  const banner = $("#banner");
  const problems = [];
  if (snap.running && snap.server.token_rejected) {
    problems.push(`The PM server rejected the coordinator token. Set the new one in Settings → Coordinator token.`);
  } else if (snap.running && !snap.server.reachable && snap.server.unreachable_since) {
    problems.push(`PM server unreachable since ${fmtClock(snap.server.unreachable_since)}: ${snap.server.last_error || ""}`);
  }
  if (snap.secret_store_error) problems.push(snap.secret_store_error);
  $("#nav-badge") && ($("#nav-badge").textContent = (snap.attention || []).length ? String(snap.attention.length) : "");
  if (view && view.start_error) problems.unshift(view.start_error);
  // Agents' attention items (the server's and the secret store's are said above), each with its fix as a button.
  const items = (snap.attention || []).filter((a) => a.agent_id);
  const sig = JSON.stringify([problems, items.map((a) => [a.key, a.reason, a.action])]);
  if (sig !== bannerSig) {
    bannerSig = sig;
    banner.replaceChildren(...(problems.length ? [el("div", {}, problems.join(" — "))] : []),
      ...items.map((a) => el("div", { class: "attention", "data-testid": `attention-${a.key}` }, `${a.reason} `,
        a.until ? el("span", { class: "countdown", "data-until": a.until }, countdown(a.until)) : "", " ", attentionButton(a))));
  }
  // The welcome view explains a missing server in plain words (doctor): no banner on top of it.
  banner.classList.toggle("hidden", problems.length + items.length === 0 || page === "welcome");
}

let bannerSig = "";
const countdown = (until) => { const ms = until - Date.now(); return ms > 0 ? `resets in ${fmtDuration(ms)}` : "resetting…"; };
setInterval(() => document.querySelectorAll(".countdown").forEach((e) => (e.textContent = countdown(Number(e.dataset.until)))), 1000);

// The fix of an attention item as one button: where to go, or what to do.
function attentionButton(a) {
  const go = (p) => () => showPage(p);
  const agentRun = () => { const st = snap.agents.find((x) => x.agent_id === a.agent_id); openLogPage(a.agent_id, st && st.last_log_path); };
  const [label, act] = {
    set_passkey: ["Set passkey", () => { showPage("agents"); const b = $(`[data-testid=set-passkey-${a.agent_id}]`); if (b) b.click(); }],
    set_token: ["Set token", go("settings")],
    check_server: ["Settings", go("settings")],
    choose_log_folder: ["Settings", go("settings")],
    fix_provider: ["Providers", go("providers")],
    open_last_run: ["Open last run", agentRun],
    retry_now: ["Retry now", () => invoke("retry_agent", { agentId: a.agent_id }).then(refresh, alertErr)],
  }[a.action] || [null, null];
  return label ? el("button", { class: "small", "data-testid": `fix-${a.key}`, onclick: act }, label) : el("span", { class: "muted" }, a.fix);
}

// One row per running instance: the work (task, project, what it is doing now, tokens and cost so far), not
// the process; a click on the row opens its transcript.
function renderInstances() {
  if (!snap) return;
  const tbody = $("#instances-table tbody");
  const ago = (at) => at ? ` · ${fmtDuration(Date.now() - at)} ago` : "";
  tbody.replaceChildren(...snap.instances.map((i) => {
    const tokens = i.tokens ? i.tokens.input + i.tokens.output + i.tokens.cache_read + i.tokens.cache_write : 0;
    const open = () => openTranscript({ logPath: i.log_path, agentId: i.agent_id, title: `Transcript · ${i.agent_id} · ${i.project_name || i.project_id} · ${i.task_id || "chat"}` });
    const stop = (ev) => { ev.stopPropagation(); invoke("stop_instance", { id: i.id }).catch(alertErr); };
    const stopPause = (ev) => { ev.stopPropagation(); invoke("pause_agent", { agentId: i.agent_id, until: null, stopRunning: true }).catch(alertErr); };
    return el("tr", { class: "clickable", "data-testid": `instance-${i.agent_id}-${i.project_id}`, title: `${i.provider}${i.model ? " / " + i.model : ""} · pid ${i.pid} — click for the transcript`, onclick: open },
      el("td", {}, el("b", {}, i.agent_id)),
      el("td", { title: i.project_id }, i.project_name || i.project_id),
      el("td", { "data-testid": `instance-task-${i.agent_id}` }, i.task_id || el("span", { class: "muted" }, "chat / no task")),
      el("td", { class: "elapsed", "data-start": i.started_at }, fmtDuration(Date.now() - i.started_at)),
      el("td", { class: "activity", "data-testid": `instance-activity-${i.agent_id}` }, i.last_activity ? `${i.last_activity}` : el("span", { class: "muted" }, "starting…"), el("span", { class: "muted" }, ago(i.last_activity_at))),
      el("td", { "data-testid": `instance-usage-${i.agent_id}` }, tokens ? `${fmtTokens(tokens)} · ${fmtCost(i.cost_usd, i.cost_estimated)}` : "—"),
      el("td", { class: "actions" }, el("button", { class: "small", title: "Stops this run; the server may start the agent again for the same work", onclick: stop }, "Stop"), " ",
        el("button", { class: "small", "data-testid": `stop-pause-${i.agent_id}`, title: "Stops the agent's runs and keeps it from starting until you resume it", onclick: stopPause }, "Stop and pause agent")));
  }));
  $("#instances-table").classList.toggle("hidden", snap.instances.length === 0);
  $("#instances-empty").classList.toggle("hidden", snap.instances.length > 0);
  const errs = snap.last_errors.slice(-8).reverse();
  $("#errors").replaceChildren(...(errs.length ? errs.map((e) => el("li", {}, `${fmtClock(e.at)} ${e.agent_id ? e.agent_id + ": " : ""}${e.message}`)) : [el("li", {}, "None.")]));
}

setInterval(() => {
  document.querySelectorAll("td.elapsed").forEach((td) => (td.textContent = fmtDuration(Date.now() - Number(td.dataset.start))));
}, 1000);

// ---------- agents ----------
let editing = null; // agent whose passkey field is open: live updates must not wipe what is being typed
let agentsSig = "";  // what the table shows; it is rebuilt only when that changes
function renderAgents(force) {
  if (!view || editing) return;
  const sig = JSON.stringify([view.settings.agents, Object.keys(view.settings.providers), view.demo_hint, snap && snap.agents]);
  if (!force && sig === agentsSig) return;
  agentsSig = sig;
  const s = view.settings;
  const byId = Object.fromEntries((snap ? snap.agents : []).map((a) => [a.agent_id, a]));
  $("#demo-hint").textContent = view.demo_hint || "";
  $("#demo-hint").classList.toggle("hidden", !view.demo_hint);
  const ids = Object.keys(s.agents);
  $("#agents-empty").classList.toggle("hidden", ids.length > 0);
  $("#agents-table").classList.toggle("hidden", ids.length === 0);
  const providers = Object.keys(s.providers);
  $("#agents-table tbody").replaceChildren(...ids.map((id) => {
    const a = s.agents[id];
    const st = byId[id];
    const [text, cls] = stateWords(id);
    const has = st ? st.has_passkey : false;
    const pkCell = el("td", {}, el("span", { class: `pill ${has ? "ok" : "bad"}`, "data-testid": `passkey-state-${id}` }, has ? "present" : "missing"), " ",
      el("button", { class: "small", "data-testid": `set-passkey-${id}`, onclick: (ev) => editPasskey(id, ev.target.closest("td")) }, has ? "Replace" : "Set"),
      has ? el("button", { class: "small", onclick: async () => { if (!confirm(`Remove the passkey of ${id} from the secret store? The agent cannot start until you set it again.`)) return; await invoke("delete_passkey", { agentId: id }); await refresh(); } }, "Remove") : "");
    const paused = st && st.state.kind === "paused";
    const pauseBtn = el("button", { class: "small", "data-testid": `pause-${id}`, disabled: !(snap && snap.running),
      onclick: () => invoke(paused ? "resume_agent" : "pause_agent", paused ? { agentId: id } : { agentId: id, until: null, stopRunning: true }).then(refresh, alertErr) }, paused ? "Resume" : "Pause");
    const sel = el("select", { "data-testid": `provider-${id}`, onchange: (ev) => invoke("set_agent", { agentId: id, enabled: a.enabled, provider: ev.target.value || null }).then(refresh, alertErr) },
      el("option", { value: "" }, "as the server says"), ...providers.map((p) => el("option", { value: p, selected: a.provider === p }, p)));
    return el("tr", { "data-testid": `agent-${id}` },
      el("td", {}, el("input", { type: "checkbox", "data-testid": `enable-${id}`, checked: a.enabled, onchange: (ev) => invoke("set_agent", { agentId: id, enabled: ev.target.checked, provider: a.provider || null }).then(refresh, alertErr) })),
      el("td", {}, el("b", {}, id)),
      el("td", {}, el("span", { class: `pill ${cls}`, "data-testid": `state-${id}` }, text)),
      pkCell,
      el("td", {}, sel),
      el("td", {}, pauseBtn, " ", el("button", { class: "small", onclick: () => invoke("list_runs", { agentId: id }).then((r) => openLogPage(id, r[0] && r[0].path)) }, "Logs"), " ",
        el("button", { class: "small danger", "data-testid": `remove-${id}`, onclick: () => removeAgent(id, has) }, "Remove agent…")));
  }));
}

// Removing an agent stops its runs first (a removed agent's process would otherwise run on unseen), then takes
// it out of the settings; its passkey is deleted only when the user says so.
async function removeAgent(id, hasPasskey) {
  const running = snap ? snap.instances.filter((i) => i.agent_id === id) : [];
  const runs = running.length ? ` Its ${running.length === 1 ? "running instance is" : running.length + " running instances are"} stopped.` : "";
  if (!confirm(`Remove ${id} from this coordinator?${runs} The PM server keeps the agent; you can add it again later.`)) return;
  const dropKey = hasPasskey && confirm(`Also delete the passkey of ${id} from the Keychain?\n\nOK deletes it; Cancel keeps it for when you add the agent again.`);
  try {
    for (const i of running) await invoke("stop_instance", { id: i.id });
    await invoke("remove_agent", { agentId: id });
    if (dropKey) await invoke("delete_passkey", { agentId: id });
    await refresh();
    renderAgents(true);
  } catch (e) { alertErr(e); }
}

function editPasskey(id, td) {
  const input = el("input", { type: "password", placeholder: "passkey", "data-testid": `passkey-input-${id}`, autocomplete: "off" });
  const save = el("button", { class: "small primary", "data-testid": `passkey-save-${id}` }, "Save");
  const cancel = el("button", { class: "small" }, "Cancel");
  const err = el("span", { class: "err" });
  editing = id;
  save.onclick = async () => {
    try {
      await invoke("set_passkey", { agentId: id, value: input.value });
      input.value = "";
      editing = null;
      await refresh();
      renderAgents(true);
    } catch (e) { err.textContent = e; }
  };
  cancel.onclick = () => { editing = null; renderAgents(true); };
  input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") save.click(); if (ev.key === "Escape") cancel.click(); });
  td.replaceChildren(input, " ", save, " ", cancel, err);
  input.focus();
}

// ---------- providers ----------
let providerDraft = null;
const providerResults = {}; // last "Test" outcome per provider, kept when the list is redrawn
function renderProviders() {
  if (!view) return;
  providerDraft = JSON.parse(JSON.stringify(view.saved.providers));
  drawProviders();
}
function drawProviders() {
  $("#providers").replaceChildren(...Object.entries(providerDraft).map(([name, p]) => {
    const field = (key, label, value, width) => el("input", { value: value ?? "", placeholder: label, title: label, style: `width:${width}px`, "data-testid": `prov-${name}-${key}`,
      oninput: (ev) => { const v = ev.target.value; if (key === "args") p.args = v.trim() ? v.trim().split(/\s+/) : []; else p[key] = v.trim() === "" && key !== "command" ? null : v; } });
    const last = providerResults[name];
    const result = el("span", { class: last ? `small pill ${last[1]}` : "small", "data-testid": `prov-${name}-result` }, last ? last[0] : "");
    const show = (text, cls) => { providerResults[name] = [text, cls]; result.textContent = text; result.className = `small pill ${cls}`; };
    return el("div", { class: "provider" },
      el("div", { class: "row" }, el("b", {}, name),
        field("command", "command", p.command, 220), field("args", "arguments", (p.args || []).join(" "), 320), field("model", "model (optional)", p.model, 160),
        el("button", { class: "small", "data-testid": `prov-${name}-test`, onclick: async () => {
          try { show("found: " + (await invoke("test_provider", { command: p.command })), "ok"); }
          catch (e) { show(String(e), "bad"); }
        } }, "Test"), result));
  }));
}

// ---------- settings ----------
function renderSettings() {
  if (!view) return;
  const s = view.saved;
  $("#set-server").value = s.server || "";
  $("#set-polling").value = s.polling_interval_secs;
  $("#set-max").value = s.max_concurrent;
  $("#set-logdir").value = s.log_dir || "";
  $("#set-root").value = s.root_agent_id || "";
  $("#set-debug").checked = s.debug;
  $("#set-login").checked = s.launch_at_login;
  $("#set-demo").checked = view.demo;
  $("#settings-path").textContent = view.settings_path;
  $("#token-state").textContent = view.token_present ? "token stored" : "no token";
  $("#token-state").className = `pill ${view.token_present ? "ok" : "warn"}`;
  clearErrors();
}

function clearErrors() {
  document.querySelectorAll("#settings-form .err").forEach((e) => (e.textContent = ""));
  document.querySelectorAll("#settings-form input").forEach((e) => e.classList.remove("invalid"));
  $("#settings-msg").textContent = "";
}

function showFieldError(field, message) {
  const span = $(`#err-${CSS.escape(field)}`) || $("#err-");
  span.textContent = message;
  const input = document.querySelector(`#settings-form [name="${field}"]`);
  if (input) input.classList.add("invalid");
}

async function saveSettings(ev) {
  ev.preventDefault();
  clearErrors();
  const s = JSON.parse(JSON.stringify(view.saved));
  const whole = (id, field) => {
    const raw = $(id).value.trim();
    if (!/^\d+$/.test(raw)) { showFieldError(field, `"${raw}" is not a whole number`); return null; }
    return Number(raw);
  };
  const p = whole("#set-polling", "polling_interval_secs");
  const m = whole("#set-max", "max_concurrent");
  if (p === null || m === null) return;
  s.polling_interval_secs = p;
  s.max_concurrent = m;
  s.server = $("#set-server").value.trim() || null;
  s.log_dir = $("#set-logdir").value.trim() || null;
  s.root_agent_id = $("#set-root").value.trim() || null;
  s.debug = $("#set-debug").checked;
  s.launch_at_login = $("#set-login").checked;
  s.demo = $("#set-demo").checked;
  try {
    view = await invoke("save_settings", { settings: s });
    $("#settings-msg").textContent = "Saved.";
    renderSettings();
    $("#settings-msg").textContent = "Saved.";
  } catch (e) {
    if (e && typeof e === "object" && "field" in e) showFieldError(e.field, e.message);
    else showFieldError("", String(e));
  }
}

// ---------- runs (the run history database) ----------
const fmtTokens = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n || 0);
const fmtCost = (c, est) => c == null ? "—" : `${est ? "≈" : ""}$${c < 0.01 && c > 0 ? c.toFixed(4) : c.toFixed(2)}`;
const fmtWhen = (ms) => new Date(ms).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
const OUTCOME = { ok: ["worked", "ok"], failed: ["failed", "bad"], stopped: ["stopped", ""], interrupted: ["interrupted", "warn"], running: ["running", "ok"] };
function sinceOf(sel) { const v = $(sel).value; return v ? Date.now() - Number(v) : null; }
async function renderRunHistory() {
  if (!view) return;
  const agents = Object.keys(view.settings.agents);
  const cur = $("#runs-agent").value;
  $("#runs-agent").replaceChildren(el("option", { value: "" }, "all agents"), ...agents.map((a) => el("option", { value: a, selected: a === cur }, a)));
  let runs = [];
  try {
    runs = await invoke("run_history", { agent: $("#runs-agent").value || null, project: $("#runs-project").value.trim() || null, failed: $("#runs-failed").checked, since: sinceOf("#runs-since"), limit: 500 });
  } catch (e) { $("#runs-empty").textContent = String(e); }
  $("#runs-empty").classList.toggle("hidden", runs.length > 0);
  $("#runs-table").classList.toggle("hidden", runs.length === 0);
  $("#runs-table tbody").replaceChildren(...runs.map((r) => {
    const [word, tone] = OUTCOME[r.outcome] || [r.outcome, ""];
    const detail = r.error_line || r.final_message || "";
    return el("tr", { "data-testid": `run-${r.run_id}`, class: r.outcome === "failed" ? "failed" : "" },
      el("td", {}, fmtWhen(r.started_at)),
      el("td", {}, r.agent_id), el("td", {}, r.project_id), el("td", {}, r.task_id || "—"),
      el("td", {}, r.duration_ms != null ? fmtDuration(r.duration_ms) : r.outcome === "running" ? fmtDuration(Date.now() - r.started_at) : "—"),
      el("td", {}, el("span", { class: `pill ${tone}` }, word + (r.exit_code != null && r.exit_code !== 0 ? ` (${r.exit_code})` : ""))),
      el("td", {}, `${fmtTokens(r.input_tokens + r.cache_read_tokens)} / ${fmtTokens(r.output_tokens)}`),
      el("td", {}, fmtCost(r.cost_usd, r.cost_is_estimate)),
      el("td", { class: "detail", title: detail }, detail.length > 90 ? detail.slice(0, 90) + "…" : detail),
      el("td", {}, r.log_path ? el("a", { "data-testid": `run-open-${r.run_id}`, onclick: () => openTranscript({ runId: r.run_id, agentId: r.agent_id, title: `Transcript · ${r.agent_id} · ${r.project_id} · ${fmtWhen(r.started_at)}` }) }, "open") : ""));
  }));
}
["#runs-agent", "#runs-since", "#runs-failed"].forEach((s) => $(s).addEventListener("change", renderRunHistory));
$("#runs-project").addEventListener("keydown", (ev) => { if (ev.key === "Enter") renderRunHistory(); });

async function renderUsage() {
  let rows = [];
  try { rows = await invoke("run_usage", { by: $("#usage-by").value, since: sinceOf("#usage-since") }); } catch (e) { rows = []; }
  $("#usage-table tbody").replaceChildren(...rows.map((u) => el("tr", { "data-testid": `usage-${u.key}` },
    el("td", {}, el("b", {}, u.key)), el("td", {}, u.runs), el("td", {}, u.failed),
    el("td", {}, fmtTokens(u.input_tokens)), el("td", {}, fmtTokens(u.output_tokens)), el("td", {}, fmtTokens(u.cache_read_tokens)),
    el("td", {}, fmtCost(u.cost_usd, u.cost_has_estimate)))));
  // Bars drawn by us (no chart library): cost per group, runs when nothing cost anything.
  const svg = $("#usage-chart");
  const ns = "http://www.w3.org/2000/svg";
  const byCost = rows.some((u) => u.cost_usd > 0);
  const val = (u) => byCost ? u.cost_usd : u.runs;
  const max = Math.max(1e-9, ...rows.map(val));
  const w = 640, h = 160, bw = rows.length ? Math.min(60, (w - 20) / rows.length - 6) : 0;
  const parts = rows.map((u, i) => {
    const bh = Math.round((val(u) / max) * (h - 40));
    const g = document.createElementNS(ns, "g");
    const x = 10 + i * (bw + 6);
    const rect = document.createElementNS(ns, "rect");
    Object.entries({ x, y: h - 20 - bh, width: bw, height: bh, class: "bar" }).forEach(([k, v]) => rect.setAttribute(k, v));
    const t = document.createElementNS(ns, "title");
    t.textContent = `${u.key}: ${byCost ? fmtCost(u.cost_usd, u.cost_has_estimate) : u.runs + " runs"}`;
    rect.appendChild(t);
    const label = document.createElementNS(ns, "text");
    Object.entries({ x: x + bw / 2, y: h - 6, "text-anchor": "middle", class: "bar-label" }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = u.key.length > 10 ? u.key.slice(-10) : u.key;
    g.append(rect, label);
    return g;
  });
  svg.replaceChildren(...parts);
}
["#usage-by", "#usage-since"].forEach((s) => $(s).addEventListener("change", renderUsage));

// ---------- logs ----------
let logPath = null;
let lastLogAgent = null; // from the UI state store
async function renderLogAgents(selectAgent) {
  if (!view) return;
  const agents = Object.keys(view.settings.agents);
  const cur = selectAgent || $("#log-agent").value || (agents.includes(lastLogAgent) ? lastLogAgent : agents[0]);
  $("#log-agent").replaceChildren(...agents.map((a) => el("option", { value: a, selected: a === cur }, a)));
  await renderRuns();
}
async function renderRuns(selectPath) {
  const agent = $("#log-agent").value;
  if (!agent) { $("#log-view").textContent = "No agents yet."; return; }
  const runs = await invoke("list_runs", { agentId: agent });
  const cur = selectPath || logPath || (runs[0] && runs[0].path);
  // A run asked for by path (an instance's "view") is shown even if the list does not have it yet: never
  // another run's log in its place.
  const listed = runs.some((r) => r.path === cur);
  const wanted = cur && !listed && (selectPath || logPath) && cur.includes(`/${agent}/`);
  const options = runs.map((r) => el("option", { value: r.path, selected: r.path === cur }, `${r.name} (${Math.ceil(r.bytes / 1024)} KB)`));
  if (wanted) options.unshift(el("option", { value: cur, selected: true }, cur.split("/").pop()));
  $("#log-run").replaceChildren(...options);
  logPath = listed || wanted ? cur : runs[0] && runs[0].path;
  if (!runs.length && !wanted) { logPath = null; $("#log-view").textContent = `${agent} has no run logs yet.`; }
  updateLogButtons();
  await showLog();
}
async function showLog() {
  if (!logPath) return;
  try {
    const text = await invoke("read_log", { path: logPath, maxBytes: 262144 });
    const v = $("#log-view");
    const atBottom = v.scrollTop + v.clientHeight >= v.scrollHeight - 20;
    v.textContent = text || "(empty so far)";
    if (atBottom) v.scrollTop = v.scrollHeight;
  } catch (e) { $("#log-view").textContent = String(e); }
}
// Follow only a run that is still going; Open / Show in folder only with a run chosen.
function liveLog() { return !!(logPath && snap && snap.instances.some((i) => i.log_path === logPath)); }
function updateLogButtons() {
  const live = liveLog();
  $("#log-follow").disabled = !live;
  $("#log-follow").title = live ? "Scroll along while the run writes" : "This run has ended";
  $("#log-open").disabled = !logPath;
  $("#log-reveal").disabled = !logPath;
}
async function openLogPage(agent, path) {
  logPath = path || null;
  showPage("logs");
  await renderLogAgents(agent);
}
setInterval(() => {
  if (page !== "logs") return;
  const wasLive = !$("#log-follow").disabled;
  updateLogButtons();
  // One last read when the followed run ends, so its final lines show.
  if ($("#log-follow").checked && (liveLog() || wasLive)) showLog();
}, 1000);

// ---------- welcome ----------
// The engine's doctor hints name CLI commands; in the window, point at the place to click instead.
function appHint(c) {
  if (c.ok) return null;
  if (c.name === "coordinator token") return "Paste it under Settings → Coordinator token (AI Agent PM shows it in its coordinator settings).";
  if (c.name.startsWith("passkey ")) return "Set it on the Agents page.";
  if (c.name === "agents") return "Import your configuration (next card), or add agents on the Agents page.";
  return c.hint;
}
async function runDoctor() {
  const checks = await invoke("run_doctor");
  $("#doctor").replaceChildren(...checks.map((c) => {
    const hint = appHint(c);
    return el("li", { "data-testid": `doctor-${c.name.replace(/\W+/g, "-")}` }, el("span", { class: `pill ${c.ok ? "ok" : "bad"}` }, c.ok ? "OK" : "Needs attention"), " ", `${c.name}: ${c.detail}`, hint ? el("span", { class: "fix" }, hint) : "");
  }));
}

// Removing the passkeys from the file keeps the import's report (which passkeys moved) and updates only its
// last line.
async function scrubYaml(path) {
  const row = $("#import-scrub-row");
  row.replaceChildren(el("span", { class: "muted" }, "Removing the passkeys from the file…"));
  try {
    const r = await invoke("import_config", { path, scrub: true });
    row.replaceChildren(r.backup
      ? el("div", { class: "ok-text", "data-testid": "import-scrubbed" }, `The file no longer contains passkeys. The backup of the original, ${r.backup}, still does: delete it once you have checked the import.`)
      : el("div", { class: "ok-text", "data-testid": "import-scrubbed" }, r.already_scrubbed
          ? "The file holds no passkeys any more (nothing to remove)."
          : "The file no longer contains passkeys, and no copy of it with passkeys was kept: they are in the Keychain now."));
    await refresh();
  } catch (e) { row.replaceChildren(el("div", { class: "bad-text" }, String(e))); }
}

async function importYaml(path, overwrite = false) {
  const out = $("#import-result");
  if (!path) { out.textContent = "Choose the YAML file first."; return; }
  out.textContent = "Importing…";
  try {
    const r = await invoke("import_config", { path, scrub: false, overwrite });
    const line = (id, label, list) => el("div", { "data-testid": `import-${id}` }, el("b", {}, label + ": "), list.length ? list.join(", ") : "—");
    const tokenText = { moved: "moved into the Keychain", unchanged: "already there", conflict: "a different token is already stored (kept it)", missing: "not in the file" }[r.token] || "—";
    // A new export (a rotated token, replaced passkeys) must be able to win over what is stored.
    const conflicting = [...r.conflicts, ...(r.token === "conflict" ? ["the coordinator token"] : [])];
    const replaceRow = conflicting.length
      ? el("div", { class: "row" }, el("span", { class: "muted" }, `The file has different values for ${conflicting.join(", ")}.`),
          el("button", { "data-testid": "import-overwrite", onclick: () => importYaml(path, true) }, "Use the file's values"))
      : "";
    const stored = r.moved.length + r.unchanged.length > 0 || r.token === "moved" || r.token === "unchanged";
    const scrubRow = el("div", { id: "import-scrub-row" }, stored && r.conflicts.length === 0
      ? el("div", { class: "row" }, el("span", { class: "muted" }, "The file still holds the passkeys in plain text."),
          el("button", { "data-testid": "import-scrub", onclick: () => scrubYaml(path) }, "Remove them from the file"))
      : "");
    out.replaceChildren(
      line("moved", "Moved into the Keychain", r.moved), line("unchanged", "Already there", r.unchanged),
      line("conflicts", "Conflicts (kept the stored one)", r.conflicts), line("missing", "Without a passkey", r.missing),
      el("div", { "data-testid": "import-token" }, el("b", {}, "Coordinator token: "), tokenText),
      replaceRow,
      scrubRow,
      ...r.warnings.map((w) => el("div", { class: "muted" }, w)),
      el("div", { class: "row" }, el("button", { class: "primary", "data-testid": "import-done", onclick: async () => { await refresh(); showPage("agents"); } }, "Show agents")));
    await refresh();
  } catch (e) { out.textContent = String(e); }
}

function alertErr(e) { bannerSig = ""; $("#banner").textContent = String(e); $("#banner").classList.remove("hidden"); logToApp(4, e); }

async function refresh() {
  view = await invoke("app_state");
  snap = view.snapshot;
  renderStatus();
  renderInstances();
  if (page === "agents") renderAgents();
}

async function main() {
  document.querySelectorAll("#nav button").forEach((b) => b.addEventListener("click", () => showPage(b.dataset.page)));
  $("#settings-form").addEventListener("submit", saveSettings);
  $("#toggle-run").addEventListener("click", () => invoke(snap && snap.running ? "coordinator_stop" : "coordinator_start").catch(() => {}).then(refresh));
  $("#add-agent").addEventListener("click", async () => { try { await invoke("add_agent", { agentId: $("#new-agent").value }); $("#new-agent").value = ""; await refresh(); } catch (e) { alertErr(e); } });
  $("#add-provider").addEventListener("click", () => { const n = $("#new-provider").value.trim(); if (n && !providerDraft[n]) { providerDraft[n] = { command: "", args: [], model: null, kind: "custom" }; drawProviders(); } $("#new-provider").value = ""; });
  $("#save-providers").addEventListener("click", async () => {
    const s = JSON.parse(JSON.stringify(view.saved)); s.providers = providerDraft;
    s.demo = view.demo; // saving providers must not switch demo mode on or off
    $("#providers-msg").style.color = "";
    try { view = await invoke("save_settings", { settings: s }); $("#providers-msg").textContent = "Saved."; }
    catch (e) { $("#providers-msg").textContent = e.message || String(e); $("#providers-msg").style.color = "var(--bad)"; }
  });
  $("#token-save").addEventListener("click", async () => { try { await invoke("set_token", { value: $("#token-input").value }); $("#token-input").value = ""; await refresh(); renderSettings(); } catch (e) { alertErr(e); } });
  $("#token-remove").addEventListener("click", async () => { await invoke("delete_token"); await refresh(); renderSettings(); });
  $("#log-agent").addEventListener("change", () => { logPath = null; remember("logAgent", $("#log-agent").value); renderRuns(); });
  $("#log-run").addEventListener("change", (ev) => { logPath = ev.target.value; showLog(); });
  $("#log-open").addEventListener("click", () => logPath && invoke("open_log", { path: logPath }).catch(alertErr));
  $("#log-reveal").addEventListener("click", () => logPath && invoke("reveal_log", { path: logPath }).catch(alertErr));
  // The welcome view (setup checks, import, demo) stays reachable after the first run.
  $("#open-import").addEventListener("click", () => showPage("welcome"));
  $("#import-btn").addEventListener("click", () => importYaml($("#import-path").value.trim()));
  $("#import-path").addEventListener("keydown", (ev) => { if (ev.key === "Enter") importYaml($("#import-path").value.trim()); });
  $("#import-choose").addEventListener("click", async () => {
    try {
      const options = { multiple: false, directory: false, title: "Import coordinator configuration", filters: [{ name: "YAML", extensions: ["yaml", "yml"] }] };
      const path = window.__TAURI__.dialog ? await window.__TAURI__.dialog.open(options) : await invoke("plugin:dialog|open", { options });
      if (path) { $("#import-path").value = path; await importYaml(path); }
    } catch (e) { alertErr(e); }
  });
  $("#demo-btn").addEventListener("click", async () => { try { view = await invoke("set_demo", { on: true }); await refresh(); showPage("agents"); } catch (e) { alertErr(e); } });

  // ⌘1…⌘7 (Ctrl on Linux) open the pages in the order of the navigation bar.
  const navPages = [...document.querySelectorAll("#nav button")].map((b) => b.dataset.page);
  document.querySelectorAll("#nav button").forEach((b, n) => { b.title = `${navigator.platform.startsWith("Mac") ? "⌘" : "Ctrl+"}${n + 1}`; });
  document.addEventListener("keydown", (ev) => {
    if (!(ev.metaKey || ev.ctrlKey) || ev.altKey || ev.shiftKey) return;
    const n = Number(ev.key);
    if (n >= 1 && n <= navPages.length) { ev.preventDefault(); showPage(navPages[n - 1]); }
  });
  invoke("set_clock_style", { twelveHour: twelveHour() }).catch(() => {});

  await listen("engine-stopped", () => refresh());
  await listen("snapshot", (ev) => { snap = ev.payload; renderStatus(); renderInstances(); if (page === "agents") renderAgents(); });
  // Dropping a YAML file on the window imports it.
  try {
    window.__TAURI__.webview.getCurrentWebview().onDragDropEvent((ev) => {
      const p = ev.payload;
      document.body.classList.toggle("drop", p.type === "over" || p.type === "enter");
      if (p.type === "drop" && p.paths && p.paths.length) { showPage("welcome"); $("#import-path").value = p.paths[0]; importYaml(p.paths[0]); }
    });
  } catch (_) { /* older webviews: the path field still works */ }

  await refresh();
  let start = "instances";
  try {
    uiState = await window.__TAURI__.store.load(view.ui_state_path, { autoSave: false });
    const last = await uiState.get("page");
    if (typeof last === "string" && document.querySelector(`#page-${last}`)) start = last;
    lastLogAgent = (await uiState.get("logAgent")) || null;
  } catch (e) { logToApp(4, `UI state not loaded: ${e}`); } // a damaged ui-state.json only costs the last page
  showPage(view.first_run ? "welcome" : start);
  window.__readyMs = await invoke("window_ready");
}

main().catch((e) => { logToApp(5, `window failed to start: ${(e && e.stack) || e}`); document.body.prepend(el("pre", { class: "banner" }, "The window failed to start: " + e)); });
