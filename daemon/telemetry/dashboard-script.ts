/**
 * Browser script of the dashboard page (plain ES2020, kept as text): fetches the summary JSON from the same
 * server every 15 s and renders the tables and charts. Marks `document.body.dataset.ready` after each render so
 * tests and scripts can wait for it. No template literals inside, so the text embeds safely.
 */
export const DASHBOARD_SCRIPT = String.raw`
(function () {
  'use strict';
  var charts = window.EdgerunCharts;
  var COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];
  var params = new URLSearchParams(location.search);
  var state = { since: params.get('since') || '1h', model: params.get('model') || '' };
  var base = location.pathname.replace(/dashboard\/?$/, '');
  var sinceSelect = document.getElementById('since');
  var modelSelect = document.getElementById('model');

  var color = charts.palette(COLORS);
  var el = charts.el;
  var body = charts.body;
  var fixed = charts.fixed;
  function pct(v) { return v === null || v === undefined ? '–' : (v * 100).toFixed(1) + '%'; }
  function when(t) { return new Date(t).toLocaleString(); }
  function shortTime(t) {
    var d = new Date(t);
    return (d.getMonth() + 1) + '-' + String(d.getDate()).padStart(2, '0') + ' ' + d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function table(headers, rows) {
    var t = el('table');
    var head = t.createTHead().insertRow();
    headers.forEach(function (h) { head.appendChild(el('th', h)); });
    var tb = t.createTBody();
    rows.forEach(function (row) {
      var tr = tb.insertRow();
      if (row.attrs) for (var k in row.attrs) tr.setAttribute(k, row.attrs[k]);
      row.cells.forEach(function (c) {
        var td = el('td', c.text, c.className);
        if (c.field) td.setAttribute('data-field', c.field);
        tr.appendChild(td);
      });
    });
    var wrap = el('div', null, 'scroll');
    wrap.appendChild(t);
    return wrap;
  }

  function renderVersions(s) {
    var node = body('versions');
    if (s.versions.length === 0) { node.appendChild(el('div', 'No requests or accuracy records in this window.', 'empty')); return; }
    node.appendChild(table(
      ['model', 'version', 'engine', 'requests', 'req/s', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms', 'J / inference', 'gate', 'shadow'],
      s.versions.map(function (v) {
        var energy = v.energy && v.energy.perInferenceJ !== null ? v.energy.perInferenceJ.toFixed(4) : 'unavailable';
        return {
          attrs: { 'data-model': v.model, 'data-version': v.version },
          cells: [
            { text: v.model, field: 'model' }, { text: v.version, field: 'version' }, { text: v.engine || '–', field: 'engine' },
            { text: v.requests, field: 'requests' }, { text: fixed(v.throughputPerS, 2), field: 'throughput' },
            { text: v.errors + (v.requests ? ' (' + pct(v.errorRate) + ')' : ''), field: 'errors', className: v.errors ? 'bad' : '' },
            { text: fixed(v.latencyMs.p50, 2), field: 'p50' }, { text: fixed(v.latencyMs.p95, 2), field: 'p95' },
            { text: fixed(v.latencyMs.p99, 2), field: 'p99' }, { text: fixed(v.latencyMs.mean, 2), field: 'mean' },
            { text: energy, field: 'energy' },
            { text: v.accuracy.gate ? pct(v.accuracy.gate.agreement) : '–', field: 'gate' },
            { text: v.accuracy.shadow ? pct(v.accuracy.shadow.agreement) : '–', field: 'shadow' },
          ],
        };
      })));
  }

  function timeOpts(s) { return { x0: s.since, x1: s.until, gapMs: s.bucketMs, events: s.events }; }

  function renderLatency(s) {
    var node = body('latency');
    var byModel = {};
    s.series.latency.forEach(function (line) { (byModel[line.model] = byModel[line.model] || []).push(line); });
    var models = Object.keys(byModel).sort();
    if (models.length === 0) { node.appendChild(el('div', 'No requests in this window.', 'empty')); return; }
    models.forEach(function (model) {
      if (models.length > 1) node.appendChild(el('h3', model));
      var series = [];
      byModel[model].forEach(function (line) {
        var name = line.model + '@' + line.version;
        var c = color(name);
        [['p99', ''], ['p95', 'dotted'], ['p50', 'dashed']].forEach(function (q) {
          series.push({
            name: name + ' ' + q[0], legend: q[0] === 'p99' ? name : null, color: c, dash: q[1],
            points: line.points.filter(function (p) { return p[q[0]] !== null; }).map(function (p) { return [p.at, p[q[0]]]; }),
          });
        });
      });
      node.appendChild(charts.lineChart(series, timeOpts(s)));
    });
  }

  function renderThroughput(s) {
    var node = body('throughput');
    if (s.series.latency.length === 0) { node.appendChild(el('div', 'No requests in this window.', 'empty')); return; }
    node.appendChild(charts.lineChart(s.series.latency.map(function (line) {
      var name = line.model + '@' + line.version;
      return { name: name, color: color(name), points: line.points.map(function (p) { return [p.at, p.count / (s.bucketMs / 1000)]; }) };
    }), timeOpts(s)));
  }

  function renderPower(s) {
    var node = body('power');
    if (!s.power.available) {
      node.appendChild(el('div', 'Power unavailable: ' + (s.power.reason || 'no readings'), 'unavailable'));
    } else {
      node.appendChild(charts.lineChart(s.series.power.map(function (line) {
        return { name: line.source, color: color('power ' + line.source), points: line.points.map(function (p) { return [p.at, p.watts]; }) };
      }), timeOpts(s)));
    }
    if (s.power.sources.length > 0) {
      node.appendChild(table(['source', 'state', 'latest W', 'mean W', 'energy J', 'readings'], s.power.sources.map(function (p) {
        return {
          attrs: { 'data-source': p.source },
          cells: [
            { text: p.source }, { text: p.available ? 'ok' : 'unavailable: ' + (p.reason || ''), className: p.available ? 'good' : 'bad' },
            { text: fixed(p.latestWatts, 2), field: 'latest' }, { text: fixed(p.meanWatts, 2), field: 'mean' },
            { text: fixed(p.energyJ, 1), field: 'energy' }, { text: p.samples - p.unavailableSamples },
          ],
        };
      })));
    }
  }

  function renderAccuracy(s) {
    var node = body('accuracy');
    var rows = s.versions.filter(function (v) { return v.accuracy.gate || v.accuracy.shadow; });
    if (rows.length === 0) { node.appendChild(el('div', 'No accuracy gate or shadow comparison recorded for these versions.', 'empty')); return; }
    node.appendChild(table(['model', 'version', 'gate', 'gate run', 'shadow', 'shadow samples'], rows.map(function (v) {
      var g = v.accuracy.gate, sh = v.accuracy.shadow;
      return {
        attrs: { 'data-model': v.model, 'data-version': v.version },
        cells: [
          { text: v.model }, { text: v.version },
          { text: g ? pct(g.agreement) + ' of ' + g.samples : '–', field: 'gate' }, { text: g ? shortTime(g.at) : '–' },
          { text: sh ? pct(sh.agreement) + ' vs ' + (sh.baselineVersion || '?') : '–', field: 'shadow' }, { text: sh ? sh.samples : '–' },
        ],
      };
    })));
    if (s.series.shadow.length > 0) {
      node.appendChild(el('h3', 'Shadow agreement over time'));
      var opts = timeOpts(s);
      opts.yMax = 1;
      opts.yFormat = function (v) { return (v * 100).toFixed(0) + '%'; };
      node.appendChild(charts.lineChart(s.series.shadow.map(function (line) {
        var name = line.model + '@' + line.version;
        return { name: name + ' vs previous', color: color(name), points: line.points.map(function (p) { return [p.at, p.agreement]; }) };
      }), opts));
    }
  }

  function renderEvents(s) {
    var node = body('events');
    if (s.events.length === 0) { node.appendChild(el('div', 'No lifecycle events in this window.', 'empty')); return; }
    node.appendChild(table(['time', 'event', 'model', 'details'], s.events.map(function (e) {
      return {
        attrs: { 'data-kind': e.kind },
        cells: [
          { text: when(e.at) }, { text: e.kind, className: /fail|rollback|error/.test(e.kind) ? 'bad' : '' },
          { text: e.model ? e.model + (e.version ? '@' + e.version : '') : '–' },
          { text: e.details ? JSON.stringify(e.details) : '', className: 'details' },
        ],
      };
    })));
  }

  function fillModels(s) {
    var known = {};
    Array.prototype.forEach.call(modelSelect.options, function (o) { known[o.value] = true; });
    s.versions.forEach(function (v) {
      if (!known[v.model]) { modelSelect.appendChild(new Option(v.model, v.model)); known[v.model] = true; }
    });
    modelSelect.value = state.model;
  }

  function render(s) {
    fillModels(s);
    renderVersions(s);
    renderLatency(s);
    renderThroughput(s);
    renderPower(s);
    renderAccuracy(s);
    renderEvents(s);
  }

  var errorBox = document.getElementById('error');
  var status = document.getElementById('status');
  var loading = false;

  async function load() {
    if (loading) return;
    loading = true;
    try {
      var url = base + 'v2/telemetry/summary?since=' + encodeURIComponent(state.since) + (state.model ? '&model=' + encodeURIComponent(state.model) : '');
      var res = await fetch(url, { cache: 'no-store' });
      var data = await res.json();
      if (!res.ok) throw new Error(data.error || ('HTTP ' + res.status));
      render(data);
      errorBox.hidden = true;
      status.textContent = 'updated ' + new Date(data.generatedAt).toLocaleTimeString() + ' · points of ' + Math.round(data.bucketMs / 60000) + ' min';
      document.body.dataset.ready = 'true';
      document.body.dataset.generatedAt = String(data.generatedAt);
    } catch (error) {
      errorBox.textContent = 'Cannot load telemetry: ' + error.message;
      errorBox.hidden = false;
      document.body.dataset.ready = 'error';
    } finally {
      loading = false;
    }
  }

  function navigate() {
    var q = new URLSearchParams();
    q.set('since', state.since);
    if (state.model) q.set('model', state.model);
    history.replaceState(null, '', location.pathname + '?' + q.toString());
    load();
  }

  if (!Array.prototype.some.call(sinceSelect.options, function (o) { return o.value === state.since; })) {
    sinceSelect.appendChild(new Option(state.since, state.since));
  }
  sinceSelect.value = state.since;
  sinceSelect.addEventListener('change', function () { state.since = sinceSelect.value; navigate(); });
  modelSelect.addEventListener('change', function () { state.model = modelSelect.value; navigate(); });
  load();
  setInterval(load, 15000);
})();
`;
