/** GET /v2/telemetry/summary and GET /dashboard through fastify inject(), with the serving app's error handler. */
import path from 'node:path';
import Fastify from 'fastify';
import t from 'tap';
import { errorHandler } from '../../daemon/serve/http-errors.ts';
import { telemetryRoutes } from '../../daemon/serve/telemetry-routes.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb } from '../../daemon/telemetry/schema.ts';
import { TelemetryStore } from '../../daemon/telemetry/store.ts';
import type { TelemetrySummary } from '../../daemon/telemetry/summary-types.ts';
import { fillRealisticHour, tempDir } from './telemetry-plans.ts';

const dir = tempDir(t);
const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
await fillRealisticHour(recorder, path.join(dir, 'sys'), Date.now());
const store = new TelemetryStore(db);
const app = Fastify();
app.setErrorHandler(errorHandler(1 << 20));
await app.register(telemetryRoutes, { store });
t.teardown(async () => { await app.close(); recorder.close(); db.close(); });

t.test('the summary is the store\'s summary as JSON, per model and version', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/v2/telemetry/summary?since=1h' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  t.equal(res.headers['cache-control'], 'no-store');
  const body = res.json() as TelemetrySummary;
  const expected = store.summary({ since: body.since, until: body.until });
  t.same(body.versions, expected.versions);
  t.same(body.versions.map((v) => `${v.model}@${v.version}`), ['ocr@1', 'resnet@3', 'resnet@2']);
  t.equal(body.power.available, true);
  t.ok(body.events.some((e) => e.kind === 'swap'));
  t.ok(Math.abs(body.until - Date.now()) < 5000 && Math.abs(body.until - body.since - 3_600_000) < 1, 'a one-hour window ending now');
});

t.test('model and points narrow the summary', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/v2/telemetry/summary?since=2h&model=resnet&points=30' });
  t.equal(res.statusCode, 200);
  const body = res.json() as TelemetrySummary;
  t.same(body.versions.map((v) => v.version), ['3', '2']);
  t.equal(body.model, 'resnet');
  t.equal(body.bucketMs, 5 * 60_000, '2 h in at most 30 points');
});

t.test('bad parameters are 400 EDGERUN_ERR_REQUEST naming the parameter', async (t) => {
  for (const [query, pattern] of [
    ['since=yesterday', /'since': 'yesterday' is not a window/],
    ['since=-1h', /'since'/],
    ['since=2999-01-01T00:00Z', /'since'/],
    ['model=../etc', /'model': '\.\.\/etc' is not a model name/],
    ['points=5', /'points': '5' is not an integer from 10 to 1000/],
    ['since=1h&since=2h', /'since' is given 2 times/],
  ] as const) {
    const res = await app.inject({ method: 'GET', url: `/v2/telemetry/summary?${query}` });
    t.equal(res.statusCode, 400, query);
    t.equal(res.json().code, 'EDGERUN_ERR_REQUEST');
    t.match(res.json().error, pattern);
  }
});

t.test('the dashboard is one self-contained HTML page that loads nothing from elsewhere', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/dashboard' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/);
  t.match(res.headers['content-security-policy'], /default-src 'none'.*connect-src 'self'/);
  const html = res.body;
  t.match(html, /<title>edgerun telemetry<\/title>/);
  t.notMatch(html, /<script[^>]+src=|<link[^>]+href="(?!data:)|@import|url\(http/i, 'no external scripts, styles or fonts (the empty icon is a data: URL)');
  const urls = [...html.matchAll(/https?:\/\/[^\s'"<>)]+/g)].map((m) => m[0]);
  t.same([...new Set(urls)], ['http://www.w3.org/2000/svg'], 'the only URL is the SVG namespace');
});
