/**
 * The fleet monitor's dashboard: one self-contained HTML page (markup, style and script inline; no CDN, no build
 * step). The script reads the JSON API of routes.ts and draws the fleet table, rollout progress and SVG charts with
 * the telemetry dashboard's chart code. Data from the server is only ever set as text or attribute values.
 */
import { DASHBOARD_CHARTS_SCRIPT } from '../telemetry/dashboard-charts.ts';
import { MONITOR_SCRIPT } from './dashboard-script.ts';

const STYLE = `
  :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #fff; --bad: #b91c1c; --good: #047857; --warn: #b45309; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; padding: 12px 20px; background: #0f172a; color: #f8fafc; }
  header h1 { font-size: 17px; margin: 0; font-weight: 600; }
  header label { font-size: 13px; color: #cbd5e1; }
  header select { margin-left: 6px; font: inherit; padding: 2px 4px; }
  #status { margin-left: auto; font-size: 12px; color: #94a3b8; }
  main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); }
  section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 14px; margin: 0 0 8px; font-weight: 600; }
  h2 small { font-weight: 400; color: var(--muted); margin-left: 6px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.num, th.num { text-align: right; }
  td.bad { color: var(--bad); } td.good { color: var(--good); } td.warn { color: var(--warn); }
  td.models { white-space: normal; }
  .dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-right: 6px; background: #9ca3af; }
  .dot.on { background: #10b981; } .dot.off { background: #ef4444; }
  .empty { color: var(--muted); font-style: italic; padding: 8px 0; }
  .error { color: var(--bad); font-weight: 600; padding: 8px 20px; }
  .scroll { overflow-x: auto; }
  svg.chart { width: 100%; height: auto; display: block; }
  svg.chart text { font-size: 11px; fill: var(--muted); }
  svg.chart .grid { stroke: var(--line); }
  svg.chart .axis { stroke: #9ca3af; }
  svg.bar { width: 360px; height: 14px; display: block; }
  .legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
  .legend span::before { content: ""; display: inline-block; width: 14px; height: 0; border-top: 2px solid var(--swatch); margin-right: 5px; vertical-align: middle; }
  .legend span.dashed::before { border-top-style: dashed; }
  .legend span.dotted::before { border-top-style: dotted; }
  .legend span.box::before { height: 10px; border-top: 0; background: var(--swatch); }
  .charts { display: grid; gap: 10px 16px; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); }
  .charts h3 { font-size: 13px; margin: 4px 0; font-weight: 600; color: var(--muted); }
  #messages { font-size: 12px; color: var(--muted); }
`;

export const MONITOR_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgerun fleet monitor</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>edgerun fleet monitor</h1>
  <label>window<select id="since">
    <option value="5m">5 minutes</option><option value="15m">15 minutes</option><option value="1h">1 hour</option>
    <option value="6h">6 hours</option><option value="24h">24 hours</option><option value="7d">7 days</option>
  </select></label>
  <label>model<select id="model"><option value="">all models</option></select></label>
  <label>device<select id="device"><option value="">all devices</option></select></label>
  <span id="status">loading…</span>
</header>
<div id="error" class="error" hidden></div>
<main>
  <section class="wide" id="fleet"><h2>Fleet</h2><div class="body"></div></section>
  <section class="wide" id="rollouts"><h2>Rollouts</h2><div class="body"></div></section>
  <section class="wide" id="by-device"><h2>Per device<small>latency: p99 solid, p95 dotted, p50 dashed</small></h2><div class="body charts"></div></section>
  <section class="wide" id="by-model"><h2>Per model version<small>request-weighted over devices</small></h2><div class="body charts"></div></section>
  <section class="wide" id="messages"><div class="body"></div></section>
</main>
<script>${DASHBOARD_CHARTS_SCRIPT}</script>
<script>${MONITOR_SCRIPT}</script>
</body>
</html>
`;
