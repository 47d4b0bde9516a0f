/**
 * The telemetry dashboard: one self-contained HTML page (markup, style, script inline; no CDN, no build step).
 * The script fetches the summary JSON from the same server and draws SVG line charts. Data from the server is
 * only ever set as text or attribute values, never parsed as HTML.
 */
import { DASHBOARD_CHARTS_SCRIPT } from './dashboard-charts.ts';
import { DASHBOARD_SCRIPT } from './dashboard-script.ts';

const STYLE = `
  :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #fff; --bad: #b91c1c; --good: #047857; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; padding: 12px 20px; background: #0f172a; color: #f8fafc; }
  header h1 { font-size: 17px; margin: 0; font-weight: 600; }
  header label { font-size: 13px; color: #cbd5e1; }
  header select { margin-left: 6px; font: inherit; padding: 2px 4px; }
  #status { margin-left: auto; font-size: 12px; color: #94a3b8; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; font-weight: 600; }
  h3 { font-size: 13px; margin: 10px 0 4px; font-weight: 600; color: var(--muted); }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  th:nth-child(-n+3), td:nth-child(-n+3) { text-align: left; }
  td.bad { color: var(--bad); } td.good { color: var(--good); }
  .empty, .unavailable { color: var(--muted); font-style: italic; padding: 8px 0; }
  .unavailable { color: #92400e; font-style: normal; background: #fffbeb; border: 1px solid #fde68a; border-radius: 4px; padding: 8px 10px; }
  .error { color: var(--bad); font-weight: 600; padding: 8px 20px; }
  svg.chart { width: 100%; height: auto; display: block; }
  svg.chart text { font-size: 11px; fill: var(--muted); }
  svg.chart .grid { stroke: var(--line); }
  svg.chart .axis { stroke: #9ca3af; }
  svg.chart .event { stroke: #a855f7; stroke-dasharray: 3 3; }
  svg.chart text.event-label { fill: #7e22ce; }
  .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
  .legend span::before { content: ""; display: inline-block; width: 14px; height: 0; border-top: 2px solid var(--swatch); margin-right: 5px; vertical-align: middle; }
  .legend span.dashed::before { border-top-style: dashed; }
  .legend span.dotted::before { border-top-style: dotted; }
  .scroll { overflow-x: auto; }
  #events th:last-child { text-align: left; }
  td.details { text-align: left; white-space: normal; color: var(--muted); font-size: 12px; max-width: 420px; overflow-wrap: anywhere; }
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgerun telemetry</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>edgerun telemetry</h1>
  <label>window<select id="since">
    <option value="15m">15 minutes</option><option value="1h">1 hour</option><option value="6h">6 hours</option>
    <option value="24h">24 hours</option><option value="7d">7 days</option><option value="30d">30 days</option>
  </select></label>
  <label>model<select id="model"><option value="">all models</option></select></label>
  <span id="status">loading…</span>
</header>
<div id="error" class="error" hidden></div>
<main>
  <section class="wide" id="versions"><h2>Model versions</h2><div class="body"></div></section>
  <section id="latency"><h2>Latency (ms): p99 solid, p95 dotted, p50 dashed</h2><div class="body"></div></section>
  <section id="throughput"><h2>Throughput (requests/s)</h2><div class="body"></div></section>
  <section id="power"><h2>Power (W)</h2><div class="body"></div></section>
  <section id="accuracy"><h2>Accuracy: gate and shadow agreement</h2><div class="body"></div></section>
  <section class="wide" id="events"><h2>Lifecycle events</h2><div class="body"></div></section>
</main>
<script>${DASHBOARD_CHARTS_SCRIPT}</script>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
