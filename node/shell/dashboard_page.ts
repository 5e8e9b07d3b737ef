/**
 * The dashboard's two pages as plain HTML, CSS and vanilla JS (no build
 * step): `/` (nodes, specs with progress, tasks; live over `/api/events`)
 * and `/tail/{task_id}` (follows the task's log on the node that has it).
 * Every value from the cluster is put into the page with `textContent`,
 * never as HTML.
 */
import { COMMON_JS, CSS, DASHBOARD_JS, TAIL_JS } from "./dashboard_assets.ts";

/** HTML-escapes text for the few values placed in the page templates. */
function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) =>
      ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[
        c
      ]!,
  );
}

/** Embeds a value in a `<script>` as JSON that cannot close the tag. */
function jsonInScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c");
}

function page(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
<script>${COMMON_JS}${script}</script>
</body>
</html>
`;
}

/** `/`: the live dashboard. */
export function dashboardHtml(nodeId: string): string {
  return page(
    `boi · ${nodeId}`,
    `<header>
  <div class="logo">b<span>o</span>i</div>
  <div class="sub" id="served">served by ${esc(nodeId)}</div>
  <div class="spacer"></div>
  <div class="conn" id="conn">connecting…</div>
</header>
<main>
  <div class="tiles" id="tiles"></div>
  <h2>Nodes <span class="count" id="node-count">0</span></h2>
  <div class="nodes" id="nodes"></div>
  <h2>Specs <span class="count" id="spec-count">0</span>
    <span class="legend">
      <span style="--c:var(--DONE)">done</span><span style="--c:var(--FAILED)">failed</span>
      <span style="--c:var(--CANCELLED)">cancelled</span><span style="--c:var(--RUNNING)">running</span>
      <span style="--c:var(--CLAIMED)">claimed</span><span style="--c:var(--PENDING)">pending</span>
      <span style="--c:var(--BLOCKED)">blocked</span>
    </span>
  </h2>
  <div id="specs"></div>
  <h2>Tasks <span class="filter" id="filter"></span></h2>
  <div id="tasks"></div>
</main>`,
    DASHBOARD_JS,
  );
}

/** `/tail/{task_id}`: follows one task's log; `taskId` is already validated. */
export function tailHtml(nodeId: string, taskId: string): string {
  return page(
    `tail ${taskId}`,
    `<header>
  <div class="logo"><a href="/" style="color:inherit">b<span>o</span>i</a></div>
  <div class="sub">tail · served by ${esc(nodeId)}</div>
  <div class="spacer"></div>
</header>
<main>
  <h2 class="mono" style="text-transform:none;letter-spacing:0;color:var(--ink);font-size:16px">${
      esc(taskId)
    }</h2>
  <div class="meta">
    <span id="state" class="pill">…</span>
    <span>node <b id="node" class="mono">—</b></span>
    <span>attempts <b id="attempts">—</b></span>
    <span>offset <b id="offset" class="mono">0</b></span>
    <span id="status" class="muted">connecting…</span>
  </div>
  <pre class="log" id="log"></pre>
</main>`,
    `const TASK_ID = ${jsonInScript(taskId)};\n${TAIL_JS}`,
  );
}
