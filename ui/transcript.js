// The Transcript page: a run's log as messages, tool calls (collapsed with their results), errors; search,
// "errors only", jump to end, follow while the run is live. Loaded after app.js and uses its helpers ($, el,
// invoke, showPage, openLogPage, page, alertErr). Only the visible rows exist in the DOM: the list is a tall
// spacer with the rows of the visible window positioned in it; items come from the Rust side in windows.
"use strict";
const TR = {
  ROW: 26,            // px per collapsed row (fixed, so a position is scrollTop / ROW)
  FETCH: 120,         // items per window request
  path: null, agent: null, title: "",
  total: 0, complete: true, live: false, bytes: 0,
  cache: new Map(),   // item index -> item
  rows: null,         // null: every item; else the item indices shown (errors only)
  hits: [], hit: -1,  // search hits (item indices, ascending) and the current one
  expanded: new Set(),
  inflight: null, timer: null, wantEnd: false, gen: 0,
};

const trCount = () => (TR.rows ? TR.rows.length : TR.total);
const trIndexAt = (pos) => (TR.rows ? TR.rows[pos] : pos);
function trPosOf(index) {
  if (!TR.rows) return index;
  let lo = 0, hi = TR.rows.length;
  while (lo < hi) { const m = (lo + hi) >> 1; if (TR.rows[m] < index) lo = m + 1; else hi = m; }
  return lo;
}

function trAccept(v) {
  // The last item of a live log may be a line still being written: drop it when the log grew.
  if (v.total !== TR.total && TR.total > 0) TR.cache.delete(TR.total - 1);
  TR.total = v.total; TR.complete = v.complete; TR.live = v.live; TR.bytes = v.bytes;
  for (const it of v.items) TR.cache.set(it.index, it);
}

// Open a run's transcript: { runId, logPath, agentId, title }.
async function openTranscript(o) {
  const gen = ++TR.gen;
  Object.assign(TR, { path: null, agent: o.agentId || null, total: 0, complete: true, live: false, rows: null, hits: [], hit: -1, wantEnd: false });
  TR.cache.clear(); TR.expanded.clear();
  $("#tr-errors").checked = false;
  $("#tr-search").value = "";
  $("#tr-hits").textContent = "";
  $("#tr-title").textContent = o.title || "Transcript";
  $("#tr-rows").replaceChildren(el("div", { class: "muted tr-msg" }, "Opening…"));
  showPage("transcript");
  try {
    const v = await invoke("run_transcript_open", { runId: o.runId || null, logPath: o.logPath || null, n: TR.FETCH });
    if (gen !== TR.gen) return;
    TR.path = v.path;
    if (!o.title) {
      const parts = String(v.path).split("/");
      TR.agent = TR.agent || parts[parts.length - 2];
      $("#tr-title").textContent = `Transcript · ${parts[parts.length - 2]} · ${parts[parts.length - 1]}`;
    }
    trAccept(v);
    $("#tr-follow").checked = v.live;
    $("#tr-list").scrollTop = 0;
    trRender();
    trTick();
  } catch (e) {
    $("#tr-rows").replaceChildren(el("div", { class: "bad-text tr-msg" }, String(e)));
  }
}

function trMeta() {
  const mb = (TR.bytes / 1048576).toFixed(TR.bytes < 1048576 ? 2 : 1);
  const parts = [`${TR.total} items`, `${mb} MB`];
  if (!TR.complete) parts.push("indexing…");
  if (TR.rows) parts.push(`${TR.rows.length} errors`);
  parts.push(TR.live ? "live" : "finished");
  $("#tr-meta").textContent = parts.join(" · ");
  const f = $("#tr-follow");
  f.disabled = !TR.live;
  if (!TR.live) f.checked = false;
  f.parentElement.title = TR.live ? "Scroll along while the run writes" : "This run has ended";
}

const KIND = { user: "user", assistant: "assistant", tool_call: "tool", tool_result: "result", error: "error", system: "system", raw: "log" };

function trRow(pos) {
  const index = trIndexAt(pos);
  const it = TR.cache.get(index);
  if (!it) return el("div", { class: "tr-row loading" }, el("span", { class: "tr-line" }, ""), el("span", { class: "muted" }, "…"));
  const cls = ["tr-row", `k-${it.kind}`];
  if (it.is_error) cls.push("err");
  if (TR.hits.length && TR.hits[TR.hit] === index) cls.push("hit-current");
  else if (TR.hitSet && TR.hitSet.has(index)) cls.push("hit");
  const open = TR.expanded.has(index);
  if (open) cls.push("open");
  const label = it.kind === "tool_result" ? (it.is_error ? "↳ failed" : "↳ result") : KIND[it.kind] || it.kind;
  const tool = it.kind === "tool_call" && it.tool ? el("b", { class: "tr-tool" }, it.tool.replace(/^mcp__/, "")) : "";
  const row = el("div", { class: cls.join(" "), "data-testid": `transcript-item-${index}`, "data-kind": it.kind, title: `line ${it.line}`,
    onclick: (ev) => { if (ev.target.closest("pre")) return; trToggle(index); } },
    el("span", { class: "tr-line" }, it.line),
    el("span", { class: "tr-kind" }, label), tool,
    el("span", { class: "tr-preview" }, it.preview || (it.kind === "tool_call" ? "" : "(empty)")));
  if (open) row.append(el("pre", { class: "tr-full" }, it.text || (it.kind === "tool_call" ? "(no input)" : "(empty)")));
  return row;
}

// A tool call opens and closes together with the result that follows it.
function trToggle(index) {
  const it = TR.cache.get(index);
  const next = TR.cache.get(index + 1);
  const pair = it && it.kind === "tool_call" && next && next.kind === "tool_result" ? [index, index + 1] : [index];
  const opening = !TR.expanded.has(index);
  for (const i of pair) opening ? TR.expanded.add(i) : TR.expanded.delete(i);
  trRender();
}

function trRender() {
  trMeta();
  const list = $("#tr-list");
  const n = trCount();
  $("#tr-spacer").style.height = `${n * TR.ROW}px`;
  const first = Math.max(0, Math.floor(list.scrollTop / TR.ROW) - 10);
  const last = Math.min(n, first + Math.ceil((list.clientHeight || 600) / TR.ROW) + 30);
  const rows = $("#tr-rows");
  rows.style.top = `${first * TR.ROW}px`;
  if (n === 0) {
    rows.replaceChildren(el("div", { class: "muted tr-msg", "data-testid": "transcript-empty" }, TR.rows ? "No errors in this run." : TR.complete ? "The log is empty so far." : "Indexing…"));
    return;
  }
  const out = [];
  const missing = [];
  for (let p = first; p < last; p++) {
    out.push(trRow(p));
    if (!TR.cache.has(trIndexAt(p))) missing.push(p);
  }
  rows.replaceChildren(...out);
  if (missing.length) trFetch(missing[0], missing[missing.length - 1] + 1);
}

// Items for positions [from, to), one request at a time.
async function trFetch(from, to) {
  if (TR.inflight || !TR.path) return;
  const gen = TR.gen;
  const args = TR.rows
    ? { logPath: TR.path, indices: TR.rows.slice(from, Math.max(to, from + TR.FETCH)) }
    : { logPath: TR.path, from: Math.max(0, from - 20), n: Math.max(TR.FETCH, to - from + 40) };
  TR.inflight = invoke("run_transcript_window", args);
  try {
    const v = await TR.inflight;
    if (gen === TR.gen) trAccept(v);
  } catch (e) { logToApp(4, `transcript window: ${e}`); }
  TR.inflight = null;
  if (gen === TR.gen) trRender();
}

// While indexing or live: refresh the counts (and follow the end) once a second; stops for a finished,
// fully indexed run (one last read when it ends, so its final lines show).
async function trTick() {
  clearTimeout(TR.timer);
  if (!TR.path || page !== "transcript") return;
  const gen = TR.gen;
  const follow = $("#tr-follow").checked;
  const wasLive = TR.live;
  if (!TR.complete || TR.live || follow) {
    try {
      const v = await invoke("run_transcript_window", { logPath: TR.path, tail: follow || TR.wantEnd, from: 0, n: follow || TR.wantEnd ? TR.FETCH : 0 });
      if (gen !== TR.gen) return;
      trAccept(v);
      if ((follow || TR.wantEnd) && TR.complete) { trEnd(); TR.wantEnd = false; }
      trRender();
    } catch (e) { logToApp(4, `transcript refresh: ${e}`); }
  }
  if (!TR.complete || TR.live || wasLive) TR.timer = setTimeout(trTick, TR.complete ? 1000 : 300);
}

function trEnd() {
  const list = $("#tr-list");
  list.scrollTop = list.scrollHeight;
  trRender();
}

function trJumpToEnd() {
  if (!TR.complete) { TR.wantEnd = true; trTick(); return; }
  trEnd();
}

function trShowHit() {
  $("#tr-hits").textContent = TR.hits.length ? `${TR.hit + 1} / ${TR.hits.length}${TR.hitsTruncated ? "+" : ""}` : $("#tr-search").value.trim() ? "no match" : "";
  if (TR.hit < 0 || !TR.hits.length) { trRender(); return; }
  const pos = trPosOf(TR.hits[TR.hit]);
  const list = $("#tr-list");
  list.scrollTop = Math.max(0, pos * TR.ROW - list.clientHeight / 3);
  trRender();
}

let trSearchTimer = null;
async function trSearch() {
  if (!TR.path) return;
  const gen = TR.gen;
  const q = $("#tr-search").value.trim();
  if (!q) { TR.hits = []; TR.hitSet = null; TR.hit = -1; trShowHit(); return; }
  $("#tr-hits").textContent = "searching…";
  try {
    const m = await invoke("run_transcript_search", { logPath: TR.path, query: q, errorsOnly: $("#tr-errors").checked });
    if (gen !== TR.gen || q !== $("#tr-search").value.trim()) return;
    TR.hits = m.indices; TR.hitSet = new Set(m.indices); TR.hitsTruncated = m.truncated;
    TR.hit = TR.hits.length ? 0 : -1;
    trShowHit();
  } catch (e) { $("#tr-hits").textContent = String(e); }
}

async function trErrorsOnly() {
  if (!TR.path) return;
  const gen = TR.gen;
  if (!$("#tr-errors").checked) { TR.rows = null; trRender(); if (TR.hits.length) trSearch(); return; }
  $("#tr-meta").textContent = "finding errors…";
  try {
    const m = await invoke("run_transcript_search", { logPath: TR.path, query: "", errorsOnly: true });
    if (gen !== TR.gen) return;
    TR.rows = m.indices;
    $("#tr-list").scrollTop = 0;
    trRender();
    if ($("#tr-search").value.trim()) trSearch();
  } catch (e) { alertErr(e); $("#tr-errors").checked = false; }
}

function trStep(d) {
  if (!TR.hits.length) return;
  TR.hit = (TR.hit + d + TR.hits.length) % TR.hits.length;
  trShowHit();
}

(function trInit() {
  let raf = 0;
  $("#tr-list").addEventListener("scroll", () => { if (!raf) raf = requestAnimationFrame(() => { raf = 0; trRender(); }); });
  $("#tr-search").addEventListener("input", () => { clearTimeout(trSearchTimer); trSearchTimer = setTimeout(trSearch, 250); });
  $("#tr-search").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); if (TR.hits.length) trStep(ev.shiftKey ? -1 : 1); else trSearch(); }
    if (ev.key === "Escape") { $("#tr-search").value = ""; trSearch(); }
  });
  $("#tr-prev").addEventListener("click", () => trStep(-1));
  $("#tr-next").addEventListener("click", () => trStep(1));
  $("#tr-errors").addEventListener("change", trErrorsOnly);
  $("#tr-follow").addEventListener("change", () => { if ($("#tr-follow").checked) trTick(); });
  $("#tr-end").addEventListener("click", trJumpToEnd);
  $("#tr-raw").addEventListener("click", () => TR.path && openLogPage(TR.agent, TR.path));
  // ⌘F / Ctrl+F searches the transcript (the webview's own find bar does not see rows that are not drawn).
  document.addEventListener("keydown", (ev) => {
    if (page === "transcript" && (ev.metaKey || ev.ctrlKey) && ev.key.toLowerCase() === "f") {
      ev.preventDefault();
      $("#tr-search").focus();
      $("#tr-search").select();
    }
  });
  new MutationObserver(() => { if (page === "transcript" && TR.path) trTick(); }).observe($("#page-transcript"), { attributes: true, attributeFilter: ["class"] });
})();
