/**
 * The dashboard in headless Chromium: a real fastify server on 127.0.0.1 over a database filled with an hour of
 * realistic records. Charts must be drawn, the table must show the database's numbers, nothing may be fetched from
 * elsewhere; a screenshot goes to a temp folder, or to docs/img/dashboard.png with EDGERUN_UPDATE_SCREENSHOTS=1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import t from 'tap';
import { errorHandler } from '../../daemon/serve/http-errors.ts';
import { telemetryRoutes } from '../../daemon/serve/telemetry-routes.ts';
import { PowerSampler } from '../../daemon/telemetry/power/sampler.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb, type TelemetryDb } from '../../daemon/telemetry/schema.ts';
import { TelemetryStore } from '../../daemon/telemetry/store.ts';
import { fillRealisticHour, tempDir } from './telemetry-plans.ts';
import { CHROMIUM, headlessBrowser } from '../helpers/headless-chromium.ts';

// Tests never rewrite tracked files: the docs screenshot is refreshed only on request.
const screenshotPath = process.env.EDGERUN_UPDATE_SCREENSHOTS === '1'
  ? new URL('../../docs/img/dashboard.png', import.meta.url).pathname
  : path.join(os.tmpdir(), `edgerun-dashboard-${process.pid}.png`);

if (!fs.existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
} else {
  const dir = tempDir(t);

  async function serve(db: TelemetryDb): Promise<{ app: FastifyInstance; url: string }> {
    const app = Fastify();
    app.setErrorHandler(errorHandler(1 << 20));
    await app.register(telemetryRoutes, { store: new TelemetryStore(db) });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    t.teardown(() => app.close());
    return { app, url: address };
  }

  const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
  await fillRealisticHour(recorder, path.join(dir, 'sys'), Date.now());
  t.teardown(() => { recorder.close(); db.close(); });
  const server = await serve(db);

  const open = await headlessBrowser(t, dir, { width: 1400, height: 900 });

  t.test('the dashboard draws latency, throughput, power and shadow charts from the database', async (t) => {
    const { page, requests, problems } = await open(`${server.url}/dashboard?since=1h`);
    t.equal(await page.getAttribute('body', 'data-ready'), 'true');
    t.same(problems, [], 'no script errors or CSP violations');
    t.ok(requests.every((u) => u.startsWith(server.url)), `only this server was asked: ${[...new Set(requests)].join(', ')}`);

    const series = await page.$$eval('#latency path.series', (paths) => paths.map((p) => ({ name: p.getAttribute('data-series'), d: p.getAttribute('d') ?? '' })));
    t.same(series.map((s) => s.name).sort(), ['ocr@1 p50', 'ocr@1 p95', 'ocr@1 p99', 'resnet@2 p50', 'resnet@2 p95', 'resnet@2 p99', 'resnet@3 p50', 'resnet@3 p95', 'resnet@3 p99']);
    for (const s of series) t.ok((s.d.match(/L/g) ?? []).length >= 10, `${s.name} is a line of many points`);
    t.equal(await page.locator('#throughput path.series').count(), 3);
    t.equal(await page.locator('#power path.series[data-series="rapl:package-0"]').count(), 1);
    t.equal(await page.locator('#accuracy path.series').count(), 1, 'shadow agreement of resnet@3');
    t.ok(await page.locator('#latency line.event[data-event="swap"]').count() >= 1, 'the swap is marked on the latency chart');
  });

  t.test('the numbers in the tables are the database\'s', async (t) => {
    const { page } = await open(`${server.url}/dashboard?since=1h`);
    const store = new TelemetryStore(db);
    const summary = store.summary({ since: Date.now() - 3_600_000 });
    for (const v of summary.versions) {
      const row = page.locator(`#versions tr[data-model="${v.model}"][data-version="${v.version}"]`);
      const cell = (field: string) => row.locator(`td[data-field="${field}"]`).textContent();
      const counts = db.prepare('SELECT count(*) AS n, sum(1 - ok) AS errors FROM requests WHERE model = ? AND version = ?').get(v.model, v.version) as { n: number; errors: number };
      t.equal(await cell('requests'), String(counts.n), `${v.model}@${v.version} requests`);
      t.match(await cell('errors'), new RegExp(`^${counts.errors} \\(`), `${v.model}@${v.version} errors`);
      t.equal(await cell('p50'), v.latencyMs.p50!.toFixed(2));
      t.equal(await cell('p95'), v.latencyMs.p95!.toFixed(2));
      t.equal(await cell('p99'), v.latencyMs.p99!.toFixed(2));
      const energy = db.prepare('SELECT sum(energy_j) AS j, sum(inferences) AS n FROM energy WHERE model = ? AND version = ?').get(v.model, v.version) as { j: number; n: number };
      t.equal(await cell('energy'), (energy.j / energy.n).toFixed(4), `${v.model}@${v.version} J per inference`);
    }
    t.equal(await page.locator('#versions tr[data-model="resnet"][data-version="3"] td[data-field="gate"]').textContent(), '99.6%');
    const shadow = db.prepare(`SELECT sum(agreement * samples) / sum(samples) AS a FROM accuracy WHERE kind = 'shadow' AND model = 'resnet' AND version = '3'`).get() as { a: number };
    t.equal(await page.locator('#accuracy tr[data-model="resnet"][data-version="3"] td[data-field="shadow"]').textContent(), `${(shadow.a * 100).toFixed(1)}% vs 2`);
    t.equal(await page.locator('#accuracy tr[data-model="resnet"][data-version="2"] td[data-field="gate"]').textContent(), '99.1% of 500');
    const power = db.prepare(`SELECT sum(energy_j) AS j, sum(interval_ms) AS ms FROM power_samples WHERE watts IS NOT NULL AND energy_j IS NOT NULL`).get() as { j: number; ms: number };
    t.equal(await page.locator('#power tr[data-source="rapl:package-0"] td[data-field="mean"]').textContent(), (power.j / (power.ms / 1000)).toFixed(2));
    const events = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    t.equal(await page.locator('#events tbody tr').count(), events);

    await page.setViewportSize({ width: 1400, height: 900 });
    fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    t.ok(fs.statSync(screenshotPath).size > 20_000, 'a screenshot with content');
  });

  t.test('choosing a model narrows every chart and table to it', async (t) => {
    const { page } = await open(`${server.url}/dashboard?since=1h`);
    await page.selectOption('#model', 'ocr');
    await page.locator('#versions tbody tr').nth(1).waitFor({ state: 'detached' });
    t.equal(await page.locator('#versions tbody tr').count(), 1);
    t.match(page.url(), /model=ocr/);
    t.equal(await page.locator('#latency path.series').count(), 3);
  });

  t.test('without sensors the power panel says why instead of drawing', async (t) => {
    const bare = openTelemetryDb(path.join(dir, 'bare.db'));
    const bareRecorder = new TelemetryRecorder(bare);
    t.teardown(() => { bareRecorder.close(); bare.close(); });
    await new PowerSampler({ sources: [], sink: bareRecorder, noSourceReason: 'no power sensor found (RAPL: no /sys/class/powercap/intel-rapl:N zones)' }).start();
    bareRecorder.recordRequest({ at: Date.now() - 5000, model: 'm', version: '1', engine: 'onnxruntime-cpu', queueMs: 0, computeMs: 2, totalMs: 3, batchSize: 1, ok: true });
    bareRecorder.flush();
    const other = await serve(bare);
    const { page } = await open(`${other.url}/dashboard`);
    t.equal(await page.locator('#power .unavailable').textContent(), 'Power unavailable: none: no power sensor found (RAPL: no /sys/class/powercap/intel-rapl:N zones)');
    t.equal(await page.locator('#power path.series').count(), 0);
    t.equal(await page.locator('#versions td[data-field="energy"]').textContent(), 'unavailable');
  });

  t.test('a bad window shows the server\'s error instead of stale charts', async (t) => {
    const { page } = await open(`${server.url}/dashboard?since=soon`);
    t.equal(await page.getAttribute('body', 'data-ready'), 'error');
    t.match(await page.locator('#error').textContent(), /Cannot load telemetry: query parameter 'since': 'soon' is not a window/);
  });
}
