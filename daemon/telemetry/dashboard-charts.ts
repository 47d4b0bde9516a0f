/**
 * Browser script (plain ES2020, kept as text: it runs in the dashboard page, not in Node) defining
 * `EdgerunCharts.lineChart`, an SVG line chart with time and value axes, gaps where data is missing, lifecycle
 * event markers and a legend, plus the small DOM helpers both dashboards (daemon telemetry, fleet monitor) use. No template literals inside, so the text embeds safely.
 */
export const DASHBOARD_CHARTS_SCRIPT = String.raw`
window.EdgerunCharts = (function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var W = 640, H = 230, L = 58, R = 14, T = 14, B = 30;

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(SVGNS, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(node);
    return node;
  }

  function niceStep(range, ticks) {
    var raw = range / ticks;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var norm = raw / mag;
    return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  }

  function timeLabel(t, spanMs) {
    var d = new Date(t);
    var hm = String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
    if (spanMs <= 2 * 86400000) return hm;
    return (d.getMonth() + 1) + '-' + String(d.getDate()).padStart(2, '0') + (spanMs <= 8 * 86400000 ? ' ' + hm : '');
  }

  function formatValue(v) {
    if (v === 0) return '0';
    var a = Math.abs(v);
    return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
  }

  /**
   * series: [{ name, legend (text; null: not in the legend; default name), color, dash: '' | 'dashed' | 'dotted',
   *            points: [[t, v], ...] }]
   * opts: { x0, x1, gapMs, yMax (optional fixed top), yFormat (optional), events: [{ at, kind }] }
   */
  function lineChart(series, opts) {
    var figure = document.createElement('figure');
    figure.style.margin = '0';
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'chart', role: 'img' });
    figure.appendChild(root);
    var x0 = opts.x0, x1 = Math.max(opts.x1, opts.x0 + 1);
    var top = 0;
    series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] > top) top = p[1]; }); });
    var yMax = opts.yMax !== undefined ? opts.yMax : top > 0 ? top * 1.1 : 1;
    var step = niceStep(yMax, 4);
    yMax = Math.ceil(yMax / step - 1e-9) * step;
    var fmt = opts.yFormat || formatValue;
    var sx = function (t) { return L + (t - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (v) { return H - B - v / yMax * (H - T - B); };

    for (var v = 0; v <= yMax + step / 2; v += step) {
      svg('line', { x1: L, x2: W - R, y1: sy(v), y2: sy(v), class: 'grid' }, root);
      svg('text', { x: L - 6, y: sy(v) + 4, 'text-anchor': 'end' }, root).textContent = fmt(v);
    }
    var span = x1 - x0;
    var tstep = [60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3, 172800e3, 604800e3]
      .find(function (s) { return span / s <= 7; }) || 604800e3;
    var offset = new Date(x0).getTimezoneOffset() * 60000;
    for (var t = Math.ceil((x0 - offset) / tstep) * tstep + offset; t <= x1; t += tstep) {
      svg('line', { x1: sx(t), x2: sx(t), y1: T, y2: H - B, class: 'grid' }, root);
      svg('text', { x: sx(t), y: H - B + 16, 'text-anchor': 'middle' }, root).textContent = timeLabel(t, span);
    }
    svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }, root);
    svg('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }, root);

    // Labels of events close together are stacked in up to three rows; the rest keep their line and tooltip.
    var rowEnds = [-Infinity, -Infinity, -Infinity];
    (opts.events || []).slice().sort(function (a, b) { return a.at - b.at; }).forEach(function (e) {
      if (e.at < x0 || e.at > x1) return;
      var x = sx(e.at);
      var line = svg('line', { x1: x, x2: x, y1: T, y2: H - B, class: 'event', 'data-event': e.kind }, root);
      svg('title', {}, line).textContent = e.kind + (e.model ? ' ' + e.model + (e.version ? '@' + e.version : '') : '');
      var width = e.kind.length * 6.6 + 4;
      var anchorEnd = x + 3 + width > W - R;
      var left = anchorEnd ? x - 3 - width : x;
      var row = rowEnds.findIndex(function (end) { return left > end + 4; });
      if (row < 0) return;
      svg('text', { x: anchorEnd ? x - 3 : x + 3, y: T + 10 + row * 12, class: 'event-label', 'text-anchor': anchorEnd ? 'end' : 'start' }, root).textContent = e.kind;
      rowEnds[row] = anchorEnd ? x : x + 3 + width;
    });

    var legend = document.createElement('div');
    legend.className = 'legend';
    series.forEach(function (s) {
      var d = '';
      var last = null;
      s.points.forEach(function (p) {
        var gap = last === null || p[0] - last > opts.gapMs * 1.5;
        d += (gap ? 'M' : 'L') + sx(p[0]).toFixed(1) + ' ' + sy(p[1]).toFixed(1) + ' ';
        last = p[0];
      });
      if (s.points.length === 1) {
        svg('circle', { cx: sx(s.points[0][0]), cy: sy(s.points[0][1]), r: 2.5, fill: s.color, class: 'series-dot', 'data-series': s.name }, root);
      }
      if (d) {
        svg('path', {
          d: d.trim(), fill: 'none', stroke: s.color, 'stroke-width': s.dash ? 1.4 : 2, class: 'series', 'data-series': s.name,
          'stroke-dasharray': s.dash === 'dashed' ? '6 4' : s.dash === 'dotted' ? '2 3' : 'none', 'stroke-linejoin': 'round',
        }, root);
      }
      if (s.legend !== null) {
        var item = document.createElement('span');
        item.textContent = s.legend || s.name;
        item.style.setProperty('--swatch', s.color);
        if (s.dash) item.className = s.dash;
        legend.appendChild(item);
      }
    });
    figure.appendChild(legend);
    return figure;
  }

  /** A stable color per series key, assigned from the palette in order of first use. */
  function palette(colors) {
    var colorOf = {};
    return function (key) {
      if (!(key in colorOf)) colorOf[key] = colors[Object.keys(colorOf).length % colors.length];
      return colorOf[key];
    };
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  /** The emptied '.body' element of the section with this id. */
  function body(id) {
    var node = document.querySelector('#' + id + ' .body');
    node.replaceChildren();
    return node;
  }

  function fixed(v, digits) { return v === null || v === undefined ? '–' : v.toFixed(digits); }

  return { lineChart: lineChart, formatValue: formatValue, palette: palette, el: el, body: body, fixed: fixed };
})();
`;
