/**
 * The monitor's collector against a real broker (own Mosquitto): status, progress and telemetry are stored,
 * duplicates dropped by (device, seq), and bad payloads counted and logged without stopping the monitor. The JSON
 * API is read through fastify's inject.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import mqtt from 'mqtt';
import { pino } from 'pino';
import t from 'tap';
import { topics, type DeploymentProgress, type DeviceStatus, type TelemetryReport } from '../../daemon/fleet/protocol.ts';
import { FleetCollector } from '../../daemon/monitor/collector.ts';
import { connectMonitor } from '../../daemon/monitor/monitor-client.ts';
import { monitorRoutes } from '../../daemon/monitor/routes.ts';
import { openSqliteMonitorStore } from '../../daemon/monitor/sqlite-store.ts';
import { errorHandler } from '../../daemon/serve/http-errors.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';

const PREFIX = 'fleet-a/v1';
const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

const status: DeviceStatus = { protocol: 1, deviceId: 'van-1', groups: ['vans'], online: true, agentVersion: 'edgerun/0.1.0', models: [{ name: 'det', version: '2', state: 'active' }], at: iso(now) };
const progress: DeploymentProgress = { protocol: 1, deviceId: 'van-1', deploymentId: 'd-1', model: { name: 'det', version: '3' }, state: 'downloading', receivedChunks: 2, chunkCount: 8, receivedBytes: 2048, totalBytes: 8192, at: iso(now) };
const report = (seq: number): TelemetryReport => ({
  protocol: 1, deviceId: 'van-1', seq, windowStart: iso(now - (10 - seq) * 1000 - 1000), windowEnd: iso(now - (10 - seq) * 1000),
  models: [{ name: 'det', version: '2', requests: 10, errors: 0, throughputPerSec: 10, latencyMs: { p50: 5, p95: 8, p99: 9 }, powerWatts: 7, energyPerInferenceJ: 0.7, accuracy: 0.99 }],
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-collector-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const broker = await startBroker({ log: (line) => t.comment(line) });
t.teardown(() => broker.close());
const store = await openSqliteMonitorStore(path.join(dir, 'monitor.db'));
t.teardown(() => store.close());
const warnings: string[] = [];
const log = pino({ level: 'warn' }, { write: (line: string) => { warnings.push(line); } });
const client = await connectMonitor(broker.url, { clientId: 'collector-test', protocolVersion: broker.protocolVersion });
t.teardown(() => client.endAsync(true));
const collector = new FleetCollector(client, store, PREFIX, log);
await collector.start();
const device = await mqtt.connectAsync(broker.url, { clientId: 'van-1', protocolVersion: broker.protocolVersion });
t.teardown(() => device.endAsync(true));

async function settle(expectedMessages: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  const total = () => { const r = collector.stats().received; return r.status + r.progress + r.telemetry; };
  while (total() < expectedMessages) {
    if (Date.now() > deadline) throw new Error(`only ${total()} of ${expectedMessages} messages arrived`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await collector.idle();
}

t.test('status, progress and telemetry from the broker are stored; a second copy of a report is a duplicate', async (t) => {
  await device.publishAsync(topics.status(PREFIX, 'van-1'), JSON.stringify(status), { qos: 1, retain: true });
  await device.publishAsync(topics.progress(PREFIX, 'van-1'), JSON.stringify(progress), { qos: 1, retain: true });
  for (const seq of [1, 2, 2, 3, 5]) await device.publishAsync(topics.telemetry(PREFIX, 'van-1'), JSON.stringify(report(seq)), { qos: 1 });
  // Another prefix is another fleet: not ours.
  await device.publishAsync(topics.telemetry('fleet-b/v1', 'van-1'), JSON.stringify(report(4)), { qos: 1 });
  await settle(7);
  t.match(collector.stats(), { received: { status: 1, progress: 1, telemetry: 5 }, stored: 6, duplicates: 1, badPayloads: 0 });
  t.same(await store.seqs('van-1'), [1, 2, 3, 5]);
  t.same(await store.gaps(), [{ deviceId: 'van-1', ranges: [[4, 4]], missing: 1 }]);
  t.match((await store.devices())[0], { deviceId: 'van-1', online: true, groups: ['vans'], deployment: { state: 'downloading', receivedChunks: 2 }, lastSeq: 5, missingReports: 1 });
});

t.test('bad payloads are counted and logged with their reason, and the monitor keeps storing', async (t) => {
  const before = collector.stats();
  const bad: [string, string | Buffer, RegExp][] = [
    [topics.telemetry(PREFIX, 'van-1'), 'not json {', /payload is not JSON/],
    [topics.telemetry(PREFIX, 'van-1'), JSON.stringify({ ...report(6), seq: -1 }), /seq/],
    [topics.status(PREFIX, 'van-1'), JSON.stringify({ ...status, online: 'yes' }), /online/],
    [topics.progress(PREFIX, 'van-1'), JSON.stringify({ ...progress, state: 'exploded' }), /state/],
    [topics.telemetry(PREFIX, 'van-1'), JSON.stringify({ ...report(6), deviceId: 'van-2' }), /deviceId 'van-2' is not the topic's device 'van-1'/],
    [topics.telemetry(PREFIX, 'van-1'), JSON.stringify({ ...report(6), protocol: 2 }), /protocol/],
  ];
  for (const [topic, payload] of bad) await device.publishAsync(topic, payload, { qos: 1 });
  await device.publishAsync(topics.telemetry(PREFIX, 'van-1'), JSON.stringify(report(6)), { qos: 1 });
  await settle(before.received.status + before.received.progress + before.received.telemetry + bad.length + 1);
  const after = collector.stats();
  t.equal(after.badPayloads, bad.length);
  t.equal(after.stored, before.stored + 1, 'the good report after them is stored');
  bad.forEach(([topic, , reason], i) => {
    t.equal(after.recentBad[i].topic, topic);
    t.match(after.recentBad[i].reason, reason);
  });
  t.equal(warnings.filter((w) => w.includes('bad payload ignored')).length, bad.length, 'each is logged');
  t.equal(after.storeErrors, 0);
});

t.test('the JSON API serves the fleet, telemetry series, rollouts and message stats; bad query parameters are 400s naming them', async (t) => {
  const app = Fastify();
  app.setErrorHandler(errorHandler(1 << 20));
  await app.register(monitorRoutes, { store, collector });
  t.teardown(() => app.close());
  const get = async (url: string) => {
    const response = await app.inject({ url });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };
  const fleet = await get('/api/fleet');
  t.match(fleet, { status: 200, body: { devices: [{ deviceId: 'van-1', lastSeq: 6 }] } });
  const series = await get('/api/telemetry?since=1h&by=model&points=10');
  t.match(series, { status: 200, body: { by: 'model', bucketMs: 600_000, series: [{ key: 'det@2' }] } });
  const points = (series.body.series as { points: { requests: number; p50: number; powerWatts: number }[] }[])[0].points;
  t.equal(points.reduce((n, p) => n + p.requests, 0), 50, 'five distinct reports of 10 requests');
  t.match(points[0], { p50: 5, powerWatts: 7 });
  t.match(await get('/api/telemetry?since=1h&device=van-1'), { status: 200, body: { by: 'device', series: [{ key: 'van-1' }] } });
  t.match(await get('/api/rollouts'), { status: 200, body: { rollouts: [{ id: 'd-1', kind: 'deployment', states: { downloading: 1 } }] } });
  t.match(await get('/api/stats'), { status: 200, body: { messages: { badPayloads: 6, duplicates: 1 }, counts: { reports: 5, duplicateReports: 1 }, gaps: [{ deviceId: 'van-1', missing: 1 }] } });
  t.match(await get('/api/telemetry?by=group'), { status: 400, body: { code: 'EDGERUN_ERR_REQUEST', error: /'by'/ } });
  t.match(await get('/api/telemetry?device=a/b'), { status: 400, body: { error: /'device'/ } });
  t.match(await get('/api/telemetry?points=5'), { status: 400, body: { error: /'points'/ } });
  t.match(await get('/api/telemetry?since=1h&since=2h'), { status: 400, body: { error: /given 2 times/ } });
  const page = await app.inject({ url: '/' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-security-policy'], /default-src 'none'/);
  t.notMatch(page.body, /<script src=|<link rel="stylesheet"|https?:\/\/(?!www\.w3\.org)/, 'nothing loaded from elsewhere');
});
