/**
 * The dashboard's static parts: its CSS and the vanilla JS of the overview
 * and tail pages (no build step). Cluster values reach the page only through
 * `textContent`; see dashboard_page.ts for the HTML around them.
 */
export const CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #18181b; --muted: #71717a; --line: #e4e4e7;
  --accent: #2563eb; --ok: #16a34a; --warn: #d97706; --bad: #dc2626;
  --BLOCKED: #cbd5e1; --PENDING: #94a3b8; --CLAIMED: #7dd3fc; --RUNNING: #3b82f6;
  --DONE: #22c55e; --FAILED: #ef4444; --CANCELLED: #52525b;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 14px 28px;
  background: #111827; color: #f9fafb; }
header .logo { font-weight: 700; font-size: 18px; letter-spacing: .5px; }
header .logo span { color: #60a5fa; }
header .sub { color: #9ca3af; font-size: 13px; }
header .spacer { flex: 1; }
.conn { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: #d1d5db; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--warn); }
.conn.live::before { background: #22c55e; box-shadow: 0 0 0 3px rgba(34,197,94,.25); }
main { max-width: 1280px; margin: 0 auto; padding: 20px 28px 40px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .08em; color: var(--muted);
  margin: 26px 0 10px; font-weight: 600; display: flex; align-items: center; gap: 10px; }
h2 .count { background: var(--line); color: var(--ink); border-radius: 10px; padding: 0 8px;
  font-size: 12px; letter-spacing: 0; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 12px; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.tile .n { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .l { color: var(--muted); font-size: 12px; }
.nodes { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card.self { border-color: #93c5fd; box-shadow: 0 0 0 1px #bfdbfe inset; }
.card .top { display: flex; align-items: center; gap: 8px; }
.card .id { font-weight: 650; font-size: 15px; }
.card .addr { font-family: var(--mono); font-size: 12px; color: var(--muted); margin: 2px 0 10px; }
.badge { font-size: 11px; border-radius: 9px; padding: 1px 8px; background: #eff6ff; color: #1d4ed8; }
.health { margin-left: auto; font-size: 12px; font-weight: 600; border-radius: 9px; padding: 1px 8px; }
.health.ok { background: #dcfce7; color: #166534; }
.health.degraded, .health.unknown { background: #fef3c7; color: #92400e; }
.load { display: flex; align-items: center; gap: 10px; font-size: 12px; color: var(--muted); }
.load .bar { flex: 1; height: 6px; background: #f1f5f9; border-radius: 3px; overflow: hidden; }
.load .bar i { display: block; height: 100%; background: var(--accent); }
.chips { display: flex; flex-wrap: wrap; gap: 4px; margin-top: 10px; }
.chip { font-family: var(--mono); font-size: 11px; background: #f4f4f5; border: 1px solid var(--line);
  border-radius: 5px; padding: 0 6px; color: #3f3f46; }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line);
  border-radius: 10px; overflow: hidden; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafafa; }
tr:last-child td { border-bottom: none; }
td.mono, .mono { font-family: var(--mono); font-size: 12.5px; }
td.num { font-variant-numeric: tabular-nums; text-align: right; }
th.num { text-align: right; }
tr.spec { cursor: pointer; }
tr.spec:hover, tr.spec.sel { background: #f8fafc; }
tr.spec.sel td:first-child { box-shadow: 3px 0 0 var(--accent) inset; }
.progress { display: flex; height: 10px; border-radius: 5px; overflow: hidden; background: #f1f5f9;
  min-width: 180px; }
.progress i { display: block; height: 100%; transition: width .4s ease; }
.ptext { font-size: 12px; color: var(--muted); margin-top: 3px; font-variant-numeric: tabular-nums; }
.pill { display: inline-block; font-size: 11px; font-weight: 650; letter-spacing: .03em; border-radius: 9px;
  padding: 1px 8px; color: #fff; background: var(--PENDING); }
.pill.BLOCKED { background: var(--BLOCKED); color: #334155; } .pill.PENDING { background: var(--PENDING); }
.pill.CLAIMED { background: var(--CLAIMED); color: #0c4a6e; } .pill.RUNNING { background: var(--RUNNING); }
.pill.DONE { background: var(--DONE); } .pill.FAILED { background: var(--FAILED); }
.pill.CANCELLED { background: var(--CANCELLED); }
.legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12px; color: var(--muted); margin-left: auto;
  text-transform: none; letter-spacing: 0; font-weight: 400; }
.legend span::before { content: ""; display: inline-block; width: 9px; height: 9px; border-radius: 2px;
  margin-right: 4px; background: var(--c); vertical-align: -1px; }
.err { color: var(--bad); font-size: 12px; max-width: 320px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; }
.muted { color: var(--muted); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
.filter { font-size: 12px; color: var(--muted); margin-left: auto; text-transform: none; letter-spacing: 0; font-weight: 400; }
.filter button { font: inherit; border: 1px solid var(--line); background: var(--panel); border-radius: 6px;
  padding: 1px 8px; cursor: pointer; }
.empty { padding: 18px; text-align: center; color: var(--muted); background: var(--panel);
  border: 1px dashed var(--line); border-radius: 10px; }
pre.log { background: #0b1020; color: #e5e7eb; font: 12.5px/1.5 var(--mono); padding: 14px 16px;
  border-radius: 10px; min-height: 60vh; max-height: 75vh; overflow: auto; white-space: pre-wrap;
  word-break: break-all; margin: 0; }
pre.log .note { color: #93c5fd; }
.meta { display: flex; gap: 18px; flex-wrap: wrap; align-items: center; margin: 6px 0 14px; font-size: 13px; }
.meta b { font-weight: 600; }
`;

export const COMMON_JS = `
const STATES = ["BLOCKED","PENDING","CLAIMED","RUNNING","DONE","FAILED","CANCELLED"];
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "style") el.setAttribute("style", v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of kids.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
function ago(ms) {
  if (ms === null || ms === undefined) return "";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}
function dur(ms) {
  if (ms === null || ms === undefined || ms < 0) return "";
  const s = ms / 1000;
  if (s < 10) return s.toFixed(1) + "s";
  if (s < 90) return Math.round(s) + "s";
  if (s < 5400) return Math.round(s / 60) + "m";
  return (s / 3600).toFixed(1) + "h";
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
`;

export const DASHBOARD_JS = `
let state = null;
let selected = null;
let lastUpdate = 0;
const conn = document.getElementById("conn");
function setConn(live, text) { conn.className = "conn" + (live ? " live" : ""); conn.textContent = text; }

/** A header cell; "#name" is a numeric (right-aligned) column. */
function th(c) {
  return c.startsWith("#") ? h("th", { class: "num" }, c.slice(1)) : h("th", {}, c);
}

function tiles(s) {
  const live = s.nodes.length;
  let busy = 0, max = 0;
  for (const n of s.nodes) { busy += n.workers_busy || 0; max += n.workers_max || 0; }
  const t = s.totals;
  const tile = (n, l, key) => h("div", { class: "tile", "data-tile": key }, h("div", { class: "n" }, n), h("div", { class: "l" }, l));
  return [
    tile(live, live === 1 ? "live node" : "live nodes", "nodes"),
    tile(busy + " / " + max, "workers busy", "workers"),
    tile(t.RUNNING + t.CLAIMED, "running", "running"),
    tile(t.PENDING + t.BLOCKED, "waiting", "waiting"),
    tile(t.DONE, "done", "done"),
    tile(t.FAILED + t.CANCELLED, "failed or cancelled", "failed"),
  ];
}

function nodeCard(n) {
  const pct = n.workers_max ? Math.round(100 * (n.workers_busy || 0) / n.workers_max) : 0;
  const caps = Object.entries(n.caps).sort(([a], [b]) => a < b ? -1 : 1);
  return h("div", { class: "card node" + (n.self ? " self" : ""), "data-node-id": n.node_id },
    h("div", { class: "top" },
      h("span", { class: "id" }, n.node_id),
      n.self ? h("span", { class: "badge" }, "this node") : null,
      h("span", { class: "health " + n.health }, n.health)),
    h("div", { class: "addr" }, n.addr + " · up " + dur(Date.now() - n.started_at)),
    h("div", { class: "load" },
      h("span", { class: "busy" }, (n.workers_busy ?? "-") + " / " + (n.workers_max ?? "-") + " busy"),
      h("span", { class: "bar" }, h("i", { style: "width:" + pct + "%" }))),
    h("div", { class: "chips" }, caps.map(([k, v]) => h("span", { class: "chip" }, k + "=" + v))));
}

function progress(sp) {
  const order = ["DONE", "FAILED", "CANCELLED", "RUNNING", "CLAIMED", "PENDING", "BLOCKED"];
  const bar = h("div", { class: "progress", title: order.filter((k) => sp.counts[k]).map((k) => k + " " + sp.counts[k]).join(", ") },
    order.filter((k) => sp.counts[k] > 0).map((k) =>
      h("i", { style: "width:" + (100 * sp.counts[k] / Math.max(1, sp.total)) + "%;background:var(--" + k + ")" })));
  const pct = sp.total ? Math.round(100 * sp.finished / sp.total) : 0;
  return [bar, h("div", { class: "ptext" }, sp.finished + "/" + sp.total + " finished · " + pct + "%")];
}

function specTable(s) {
  if (s.specs.length === 0) return h("div", { class: "empty" }, "No specs yet. Dispatch one with: deno task cli dispatch <spec.yaml>");
  return h("table", {},
    h("thead", {}, h("tr", {}, ["spec", "progress", "#running", "#waiting", "#done", "#failed", "dispatched"].map(th))),
    h("tbody", {}, s.specs.map((sp) =>
      h("tr", {
        class: "spec" + (selected === sp.spec_id ? " sel" : ""),
        "data-spec-id": sp.spec_id, "data-finished": sp.finished, "data-total": sp.total, "data-done": sp.counts.DONE,
        onclick: () => { selected = selected === sp.spec_id ? null : sp.spec_id; render(); },
      },
        h("td", { class: "mono" }, sp.spec_id),
        h("td", {}, progress(sp)),
        h("td", { class: "num" }, sp.counts.RUNNING + sp.counts.CLAIMED),
        h("td", { class: "num" }, sp.counts.PENDING + sp.counts.BLOCKED),
        h("td", { class: "num" }, sp.counts.DONE),
        h("td", { class: "num" }, sp.counts.FAILED + sp.counts.CANCELLED),
        h("td", { class: "muted", title: sp.dispatched_by }, ago(sp.dispatched_at))))));
}

function taskTable(s) {
  const rows = s.tasks.filter((t) => selected === null || t.spec_id === selected);
  if (rows.length === 0) return h("div", { class: "empty" }, "No tasks.");
  return h("table", {},
    h("thead", {}, h("tr", {}, ["task", "state", "#attempts", "node", "#runtime", "#exit", "last error", "log"].map(th))),
    h("tbody", {}, rows.map((t) => {
      const node = t.claimant_node_id ? t.claimant_node_id : t.ran_on ? t.ran_on : "";
      const runtime = t.started_at ? dur((t.finished_at || Date.now()) - t.started_at) : "";
      return h("tr", { class: "task", "data-task-id": t.task_id, "data-state": t.state },
        h("td", { class: "mono" }, t.task_id),
        h("td", {}, h("span", { class: "pill " + t.state }, t.state)),
        h("td", { class: "num" }, t.attempts + "/" + t.max_attempts),
        h("td", { class: "mono", title: t.claimant_node_id ? "claimant" : t.ran_on ? "ran on" : "" }, node),
        h("td", { class: "num" }, runtime),
        h("td", { class: "num" }, t.exit_code ?? ""),
        h("td", {}, t.last_error ? h("div", { class: "err", title: t.last_error }, t.last_error) : ""),
        h("td", {}, t.log_node
          ? h("a", { href: "/tail/" + encodeURIComponent(t.task_id), target: "_blank", rel: "noopener", class: "tail-link" },
              ["RUNNING", "CLAIMED"].includes(t.state) ? "live tail" : "log")
          : h("span", { class: "muted" }, "—")));
    })));
}

function render() {
  const s = state;
  if (!s) return;
  document.getElementById("served").textContent = "served by " + s.node_id + (s.health.ok ? "" : " · " + s.health.reason);
  document.getElementById("tiles").replaceChildren(...tiles(s));
  document.getElementById("node-count").textContent = s.nodes.length;
  document.getElementById("nodes").replaceChildren(...s.nodes.map(nodeCard));
  document.getElementById("spec-count").textContent = s.specs.length + (s.omitted.specs ? "+" + s.omitted.specs : "");
  document.getElementById("specs").replaceChildren(specTable(s));
  const f = document.getElementById("filter");
  f.replaceChildren(...(selected ? ["spec " + selected + " ", h("button", { onclick: () => { selected = null; render(); } }, "show all")] : ["all specs"]));
  document.getElementById("tasks").replaceChildren(taskTable(s));
}

function connect() {
  if (!window.EventSource) return poll();
  const es = new EventSource("/api/events");
  es.addEventListener("state", (ev) => {
    state = JSON.parse(ev.data);
    lastUpdate = Date.now();
    setConn(true, "live");
    render();
  });
  es.onopen = () => setConn(true, "live");
  es.onerror = () => setConn(false, "reconnecting…");
}
async function poll() {
  for (;;) {
    try {
      const r = await fetch("/api/state", { cache: "no-store" });
      state = await r.json();
      setConn(true, "polling");
      render();
    } catch { setConn(false, "unreachable"); }
    await sleep(2000);
  }
}
setInterval(() => { if (state && Date.now() - lastUpdate > 1000) render(); }, 5000);
connect();
`;

export const TAIL_JS = `
const pre = document.getElementById("log");
const statusEl = document.getElementById("status");
const stateEl = document.getElementById("state");
const nodeEl = document.getElementById("node");
const offEl = document.getElementById("offset");
let offset = 0, node = null, viaProxy = false, decoder = new TextDecoder();
const MAX_CHARS = 2000000;
function status(t) { statusEl.textContent = t; }
function append(text, cls) {
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  pre.append(cls ? h("span", { class: cls }, text) : document.createTextNode(text));
  if (pre.textContent.length > MAX_CHARS) {
    const t = pre.textContent;
    pre.replaceChildren(document.createTextNode(t.slice(t.length - MAX_CHARS / 2)));
  }
  if (stick) pre.scrollTop = pre.scrollHeight;
}
async function info() {
  const r = await fetch("/api/tasks/" + encodeURIComponent(TASK_ID), { cache: "no-store" });
  if (r.status === 404) return null;
  if (!r.ok) throw new Error("HTTP " + r.status);
  return await r.json();
}
function show(d) {
  stateEl.className = "pill " + d.task.state;
  stateEl.textContent = d.task.state;
  nodeEl.textContent = d.log_node ? d.log_node + (d.log_addr ? " (" + d.log_addr + ")" : "") : "—";
  document.getElementById("attempts").textContent = d.task.attempts + "/" + d.task.max_attempts;
}
async function follow() {
  let backoff = 250;
  for (;;) {
    let d = null;
    try { d = await info(); } catch (e) { status("this node does not answer: " + e.message); await sleep(2000); continue; }
    if (d === null) { status("task unknown to this node"); return; }
    show(d);
    if (!d.log_node) {
      if (d.terminal) { status("ended without running"); return; }
      status("waiting for a node to claim it…"); await sleep(1000); continue;
    }
    if (node !== null && d.log_node !== node) {
      append("\\n── now running on " + d.log_node + " ──\\n", "note");
      offset = 0; decoder = new TextDecoder();
    }
    node = d.log_node;
    const here = d.log_node === d.node_id;
    if (!here && !d.log_addr) {
      if (d.terminal) { status("log unavailable: node " + node + " is not live (task state " + d.task.state + ")"); return; }
      status("node " + node + " is not live; waiting…"); await sleep(1000); continue;
    }
    const base = here || viaProxy ? "" : "http://" + d.log_addr;
    const url = base + "/internal/tail/" + encodeURIComponent(TASK_ID) + "?follow=1&since_bytes=" + offset;
    try {
      const r = await fetch(url, { cache: "no-store" });
      if (!r.ok) {
        const msg = (await r.text()).trim();
        if (d.terminal) { status(msg); return; }
        status(msg + " — retrying");
      } else {
        status("following " + node + (base ? " at " + d.log_addr : "") + (viaProxy ? " through this node" : ""));
        const reader = r.body.getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          offset += value.length;
          offEl.textContent = offset;
          append(decoder.decode(value, { stream: true }));
          backoff = 250;
        }
        const d2 = await info().catch(() => null);
        if (d2) show(d2);
        if (d2 && d2.terminal && d2.log_node === node) {
          append(decoder.decode());
          status("ended: " + d2.task.state + (d2.task.exit_code !== null ? " (exit " + d2.task.exit_code + ")" : "") + " · " + offset + " bytes");
          return;
        }
      }
    } catch (e) {
      // Another node's address may not be reachable from this browser, or
      // not allowed: read it through this node instead.
      if (base !== "") { viaProxy = true; continue; }
      status("connection lost: " + e.message + " — resuming at byte " + offset);
    }
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 4000);
  }
}
follow();
`;
