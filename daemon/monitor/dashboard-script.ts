/**
 * Browser script of the monitor dashboard (plain ES2020, kept as text): fetches /api/fleet, /api/rollouts,
 * /api/stats and /api/telemetry (by device and by model) from the same server every few seconds (?refresh=S,
 * default 5) and renders them. Marks `document.body.dataset.ready` after each render ('true', or 'error' with the
 * server's message shown) so tests and scripts can wait for it. No template literals inside, so the text embeds
 * safely.
 */
export const MONITOR_SCRIPT = String.raw`
(function () {
  'use strict';
  var charts = window.EdgerunCharts;
  var COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#4b5563', '#9333ea'];
  var STATE_COLORS = { accepted: '#93c5fd', downloading: '#3b82f6', verifying: '#6366f1', installing: '#8b5cf6', active: '#10b981',
    duplicate: '#a7f3d0', rejected: '#ef4444', failed: '#b91c1c', 'rolled-back': '#f59e0b', aborted: '#6b7280' };
  var STATE_ORDER = ['active', 'duplicate', 'installing', 'verifying', 'downloading', 'accepted', 'rolled-back', 'aborted', 'rejected', 'failed'];
  var params = new URLSearchParams(location.search);
  var state = { since: params.get('since') || '15m', model: params.get('model') || '', device: params.get('device') || '' };
  var refreshS = Math.max(1, Number(params.get('refresh')) || 5);
  var base = location.pathname.replace(/(dashboard)?\/?$/, '/');
  var selects = { since: document.getElementById('since'), model: document.getElementById('model'), device: document.getElementById('device') };
  var timer = null;

  var color = charts.palette(COLORS);
  var el = charts.el;
  var body = charts.body;
  var fixed = charts.fixed;
  function ago(t) {
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : s < 86400 ? Math.round(s / 3600) + ' h ago' : new Date(t).toLocaleString();
  }

  function table(headers, rows) {
    var t = el('table');
    var head = t.createTHead().insertRow();
    headers.forEach(function (h) { head.appendChild(el('th', h.text, h.num ? 'num' : '')); });
    var tb = t.createTBody();
    rows.forEach(function (row) {
      var tr = tb.insertRow();
      if (row.attrs) for (var k in row.attrs) tr.setAttribute(k, row.attrs[k]);
      row.cells.forEach(function (c) {
        var td = c.node ? el('td', null, c.className) : el('td', c.text, c.className);
        if (c.node) td.appendChild(c.node);
        if (c.field) td.setAttribute('data-field', c.field);
        tr.appendChild(td);
      });
    });
    var wrap = el('div', null, 'scroll');
    wrap.appendChild(t);
    return wrap;
  }

  function renderFleet(fleet) {
    var node = body('fleet');
    if (fleet.devices.length === 0) { node.appendChild(el('div', 'No device has reported yet.', 'empty')); return; }
    node.appendChild(table(
      [{ text: 'device' }, { text: 'online' }, { text: 'groups' }, { text: 'target' }, { text: 'models' }, { text: 'deployment' },
        { text: 'last seen' }, { text: 'reports', num: true }, { text: 'missing', num: true }],
      fleet.devices.map(function (d) {
        var online = el('span');
        online.appendChild(el('span', null, 'dot ' + (d.online === true ? 'on' : d.online === false ? 'off' : '')));
        online.appendChild(document.createTextNode(d.online === true ? 'online' : d.online === false ? 'offline' : 'unknown'));
        var dep = d.deployment;
        var depText = dep ? dep.model + '@' + dep.version + ' ' + dep.state + (dep.state === 'downloading' ? ' ' + dep.receivedChunks + '/' + dep.chunkCount : '') + (dep.code ? ' (' + dep.code + ')' : '') : '–';
        var bad = dep && /rejected|failed|rolled-back|aborted/.test(dep.state);
        return {
          attrs: { 'data-device': d.deviceId },
          cells: [
            { text: d.deviceId, field: 'device' }, { node: online, field: 'online' },
            { text: d.groups.join(', ') || '–', field: 'groups' }, { text: d.target || '–', field: 'target' },
            { text: d.models.map(function (m) { return m.name + '@' + (m.version === null ? '–' : m.version) + (m.state && m.state !== 'active' ? ' (' + m.state + ')' : ''); }).join(', ') || '–', field: 'models', className: 'models' },
            { text: depText, field: 'deployment', className: bad ? 'bad' : dep && dep.state === 'active' ? 'good' : '' },
            { text: ago(d.lastSeen), field: 'last-seen' },
            { text: d.lastSeq === null ? '–' : d.lastSeq, field: 'last-seq', className: 'num' },
            { text: d.missingReports, field: 'missing', className: 'num' + (d.missingReports ? ' warn' : '') },
          ],
        };
      })));
  }

  function stateBar(states, devices) {
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 360 14');
    svg.setAttribute('class', 'bar');
    var x = 0;
    STATE_ORDER.forEach(function (s) {
      var n = states[s] || 0;
      if (!n) return;
      var w = n / devices * 360;
      var rect = document.createElementNS(NS, 'rect');
      rect.setAttribute('x', x.toFixed(1)); rect.setAttribute('y', '0'); rect.setAttribute('height', '14');
      rect.setAttribute('width', w.toFixed(1)); rect.setAttribute('fill', STATE_COLORS[s] || '#9ca3af');
      rect.setAttribute('data-state', s);
      var title = document.createElementNS(NS, 'title');
      title.textContent = s + ': ' + n;
      rect.appendChild(title);
      svg.appendChild(rect);
      x += w;
    });
    return svg;
  }

  function renderRollouts(data) {
    var node = body('rollouts');
    if (data.rollouts.length === 0) { node.appendChild(el('div', 'No deployment progress reported yet.', 'empty')); return; }
    node.appendChild(table(
      [{ text: 'rollout' }, { text: 'model' }, { text: 'devices', num: true }, { text: 'progress' }, { text: 'by state' }, { text: 'updated' }],
      data.rollouts.map(function (r) {
        return {
          attrs: { 'data-rollout': r.id },
          cells: [
            { text: r.id + (r.kind === 'deployment' ? ' (deployment)' : ''), field: 'id' }, { text: r.model + '@' + r.version, field: 'model' },
            { text: r.devices, field: 'devices', className: 'num' }, { node: stateBar(r.states, r.devices), field: 'bar' },
            { text: STATE_ORDER.filter(function (s) { return r.states[s]; }).map(function (s) { return s + ' ' + r.states[s]; }).join(', '), field: 'states' },
            { text: ago(r.updatedAt) },
          ],
        };
      })));
  }

  var METRICS = [
    { id: 'latency', title: 'Latency (ms)' },
    { id: 'power', title: 'Power (W)', field: 'powerWatts' },
    { id: 'energy', title: 'Energy per inference (J)', field: 'energyPerInferenceJ' },
    { id: 'accuracy', title: 'Accuracy (agreement)', field: 'accuracy', yMax: 1, yFormat: function (v) { return (v * 100).toFixed(0) + '%'; } },
  ];

  var MAX_LINES = 12;

  function total(line) { return line.points.reduce(function (n, p) { return n + p.requests; }, 0); }

  function renderCharts(id, data) {
    var node = body(id);
    if (data.series.length === 0) { node.appendChild(el('div', 'No telemetry in this window.', 'empty')); return; }
    // Past a dozen lines a chart is unreadable: the busiest are drawn, and the filters above reach the rest.
    var lines = data.series.slice().sort(function (a, b) { return total(b) - total(a); }).slice(0, MAX_LINES)
      .sort(function (a, b) { return a.key < b.key ? -1 : a.key > b.key ? 1 : 0; });
    if (lines.length < data.series.length) {
      var note = el('div', 'Showing the ' + lines.length + ' busiest of ' + data.series.length + '; choose a model or device above for the others.', 'empty');
      note.style.gridColumn = '1 / -1';
      node.appendChild(note);
    }
    data = { since: data.since, until: data.until, bucketMs: data.bucketMs, series: lines };
    METRICS.forEach(function (metric) {
      var box = el('div');
      box.id = id + '-' + metric.id;
      box.appendChild(el('h3', metric.title));
      var series = [];
      data.series.forEach(function (line) {
        var c = color(line.key);
        if (metric.id === 'latency') {
          [['p99', ''], ['p95', 'dotted'], ['p50', 'dashed']].forEach(function (q) {
            series.push({ name: line.key + ' ' + q[0], legend: q[0] === 'p99' ? line.key : null, color: c, dash: q[1],
              points: line.points.filter(function (p) { return p[q[0]] !== null; }).map(function (p) { return [p.at, p[q[0]]]; }) });
          });
        } else {
          var points = line.points.filter(function (p) { return p[metric.field] !== null; }).map(function (p) { return [p.at, p[metric.field]]; });
          if (points.length > 0) series.push({ name: line.key, color: c, points: points });
        }
      });
      if (series.every(function (s) { return s.points.length === 0; })) {
        box.appendChild(el('div', metric.id === 'power' ? 'No power readings reported.' : 'Nothing reported.', 'empty'));
      } else {
        var opts = { x0: data.since, x1: data.until, gapMs: Math.max(data.bucketMs, 5000) * 4, events: [] };
        if (metric.yMax) opts.yMax = metric.yMax;
        if (metric.yFormat) opts.yFormat = metric.yFormat;
        box.appendChild(charts.lineChart(series, opts));
      }
      node.appendChild(box);
    });
  }

  function renderMessages(stats) {
    var node = body('messages');
    var m = stats.messages;
    var parts = ['store ' + stats.store, stats.counts.reports + ' reports', stats.counts.duplicateReports + ' duplicates dropped',
      stats.gaps.reduce(function (n, g) { return n + g.missing; }, 0) + ' missing (seq gaps)', stats.counts.droppedReported + ' dropped by device backlogs'];
    if (m) parts.push('received status ' + m.received.status + ', progress ' + m.received.progress + ', telemetry ' + m.received.telemetry, m.badPayloads + ' bad payloads');
    node.appendChild(el('div', parts.join(' · ')));
    if (m && m.recentBad.length > 0) node.appendChild(el('div', 'latest bad payload: ' + m.recentBad[m.recentBad.length - 1].reason, 'bad'));
  }

  function fillSelect(select, values, current) {
    var known = {};
    Array.prototype.forEach.call(select.options, function (o) { known[o.value] = true; });
    values.forEach(function (v) { if (!known[v]) { select.appendChild(new Option(v, v)); known[v] = true; } });
    select.value = current;
  }

  function query(extra) {
    var q = new URLSearchParams({ since: state.since });
    if (state.model) q.set('model', state.model);
    if (state.device) q.set('device', state.device);
    for (var k in extra) q.set(k, extra[k]);
    return q.toString();
  }

  function getJson(path) {
    return fetch(base + path, { headers: { accept: 'application/json' } }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
        return body;
      });
    });
  }

  function load() {
    clearTimeout(timer);
    Promise.all([
      getJson('api/fleet'), getJson('api/rollouts'), getJson('api/stats'),
      getJson('api/telemetry?' + query({ by: 'device' })), getJson('api/telemetry?' + query({ by: 'model' })),
    ]).then(function (all) {
      var fleet = all[0];
      document.getElementById('error').hidden = true;
      fillSelect(selects.device, fleet.devices.map(function (d) { return d.deviceId; }), state.device);
      var models = {};
      fleet.devices.forEach(function (d) { d.models.forEach(function (m) { models[m.name] = true; }); });
      all[4].series.forEach(function (s) { models[s.key.split('@')[0]] = true; });
      fillSelect(selects.model, Object.keys(models).sort(), state.model);
      renderFleet(fleet);
      renderRollouts(all[1]);
      renderMessages(all[2]);
      renderCharts('by-device', all[3]);
      renderCharts('by-model', all[4]);
      var online = fleet.devices.filter(function (d) { return d.online === true; }).length;
      document.getElementById('status').textContent = fleet.devices.length + ' devices, ' + online + ' online · updated ' + new Date().toLocaleTimeString();
      document.body.dataset.ready = 'true';
    }).catch(function (error) {
      var box = document.getElementById('error');
      box.textContent = 'Cannot load fleet data: ' + error.message;
      box.hidden = false;
      document.body.dataset.ready = 'error';
    }).finally(function () {
      timer = setTimeout(load, refreshS * 1000);
    });
  }

  ['since', 'model', 'device'].forEach(function (key) {
    selects[key].value = state[key];
    selects[key].addEventListener('change', function () {
      state[key] = selects[key].value;
      var q = new URLSearchParams(location.search);
      if (state[key]) q.set(key, state[key]); else q.delete(key);
      history.replaceState(null, '', '?' + q.toString());
      load();
    });
  });
  load();
})();
`;
