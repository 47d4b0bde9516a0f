/**
 * The telemetry uplink against a real broker (its own Mosquitto, test/helpers/mqtt-broker.ts): what a report
 * says, that reports arrive in seq order and leave the backlog only once acknowledged, and that a daemon restart
 * while the broker is away keeps the backlog. The outage itself is tested end to end in uplink-outage.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import { topics, type TelemetryReport } from '../../daemon/fleet/protocol.ts';
import { SqliteTelemetryBacklog } from '../../daemon/fleet/telemetry-backlog.ts';
import { TelemetryUplink } from '../../daemon/fleet/uplink.ts';
import { LatencyHistogram } from '../../daemon/telemetry/histogram.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb, type TelemetryDb } from '../../daemon/telemetry/schema.ts';
import { startBroker, type TestBroker } from '../helpers/mqtt-broker.ts';

const PREFIX = 'edgerun/v1';
const silent = pino({ level: 'silent' });

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-uplink-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function telemetryDb(t: Test, dir: string): { db: TelemetryDb; recorder: TelemetryRecorder } {
  const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
  t.teardown(() => { recorder.close(); db.close(); });
  return { db, recorder };
}

const request = (at: number, model: string, version: string, totalMs: number, ok = true) => ({
  at, model, version, engine: 'onnxruntime-cpu', queueMs: 0, computeMs: totalMs, totalMs, batchSize: 1, ok, ...(ok ? {} : { error: 'EDGERUN_ERR_TIMEOUT' }),
});

async function connect(t: Test, broker: TestBroker, clientId: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(broker.url, { clientId, protocolVersion: broker.protocolVersion, reconnectPeriod: 100, connectTimeout: 2000, ...extra });
  t.teardown(() => client.endAsync(true));
  await new Promise<void>((resolve, reject) => { client.once('connect', () => resolve()); client.once('error', reject); });
  return client;
}

/** A subscriber with a persistent session: the broker keeps its QoS 1 messages while it is away. */
async function subscriber(t: Test, broker: TestBroker, deviceId: string): Promise<{ reports: TelemetryReport[] }> {
  const client = await connect(t, broker, `watch-${deviceId}`, { clean: false, ...(broker.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 600 } } : {}) });
  const reports: TelemetryReport[] = [];
  client.on('message', (_topic, payload) => reports.push(JSON.parse(payload.toString()) as TelemetryReport));
  await client.subscribeAsync(topics.telemetry(PREFIX, deviceId), { qos: 1 });
  return { reports };
}

async function until(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const broker = await startBroker({ log: (line) => t.comment(line) });
t.teardown(() => broker.close());

t.test('a report covers exactly the rows written since the previous one, late arrivals included', async (t) => {
  const dir = tempDir(t);
  const { db, recorder } = telemetryDb(t, dir);
  const backlog = new SqliteTelemetryBacklog(path.join(dir, 'backlog.db'));
  t.teardown(() => backlog.close());
  let clock = 1_700_000_000_000;
  const client = mqtt.connect(broker.url, { manualConnect: true });
  const uplink = new TelemetryUplink({ client, prefix: PREFIX, deviceId: 'bus-7', backlog, telemetry: db, intervalMs: 60_000, log: silent, now: () => clock });

  const latencies = Array.from({ length: 200 }, (_, i) => 5 + (i % 50) * 0.5);
  latencies.forEach((ms, i) => recorder.recordRequest(request(clock + i, 'det', '3', ms, i % 40 !== 0)));
  recorder.recordRequest(request(clock + 10, 'rec', '1', 12));
  recorder.recordEnergy({ at: clock + 1000, intervalMs: 1000, model: 'det', version: '3', inferences: 100, energyJ: 25 });
  recorder.recordEnergy({ at: clock + 2000, intervalMs: 1000, model: 'det', version: '3', inferences: 100, energyJ: 35 });
  recorder.recordPower({ at: clock + 1000, source: 'rapl:package-0', watts: 20, energyJ: 20, intervalMs: 1000 });
  recorder.recordPower({ at: clock + 2000, source: 'rapl:package-0', watts: 40, energyJ: 40, intervalMs: 1000 });
  recorder.recordPower({ at: clock + 2000, source: 'nvidia:gpu', watts: 50, energyJ: 50, intervalMs: 1000 });
  recorder.recordAccuracy({ at: clock - 5_000_000, model: 'rec', version: '1', kind: 'gate', agreement: 0.991, samples: 500 });
  recorder.recordAccuracy({ at: clock + 500, model: 'det', version: '3', kind: 'shadow', agreement: 0.9, samples: 10 });
  recorder.recordAccuracy({ at: clock + 900, model: 'det', version: '3', kind: 'shadow', agreement: 1, samples: 30 });
  recorder.flush();
  clock += 10_000;
  uplink.appendReport();

  const [first] = backlog.peek(10).map((e) => JSON.parse(e.payload) as TelemetryReport);
  t.match(first, { protocol: 1, deviceId: 'bus-7', seq: 1, windowEnd: new Date(clock).toISOString() });
  t.notOk('dropped' in first, 'nothing dropped: no dropped field');
  t.same(first.models.map((m) => `${m.name}@${m.version}`), ['det@3', 'rec@1']);
  const det = first.models[0];
  const hist = new LatencyHistogram();
  for (const ms of latencies) hist.add(ms);
  t.equal(det.requests, 200);
  t.equal(det.errors, 5);
  t.same(det.latencyMs, { p50: hist.quantile(0.5), p95: hist.quantile(0.95), p99: hist.quantile(0.99) });
  t.equal(det.energyPerInferenceJ, 0.3, '60 J over 200 inferences');
  t.equal(det.powerWatts, 30 + 50, 'rapl mean 30 W plus the GPU 50 W');
  t.equal(det.accuracy, (0.9 * 10 + 30) / 40, 'shadow agreement weighted by samples');
  t.equal(first.models[1].accuracy, 0.991, 'without shadow runs: the version\'s latest gate');
  t.equal(first.models[1].energyPerInferenceJ, null);

  // A request that arrived before the first report but was written after it goes into the second one.
  recorder.recordRequest(request(clock - 9_000, 'det', '3', 7));
  recorder.flush();
  clock += 10_000;
  uplink.appendReport();
  const second = JSON.parse(backlog.peek(1, 1)[0].payload) as TelemetryReport;
  t.equal(second.seq, 2);
  t.equal(second.windowStart, first.windowEnd, 'windows are contiguous');
  t.same(second.models.map((m) => [m.name, m.requests]), [['det', 1]], 'only the new row, counted once');
  t.equal(second.models[0].throughputPerSec, 0.1);
  t.equal(second.models[0].powerWatts, null, 'no power samples in this window');
});

t.test('reports are published with QoS 1 in seq order and leave the backlog once acknowledged', async (t) => {
  const dir = tempDir(t);
  const { db, recorder } = telemetryDb(t, dir);
  const watch = await subscriber(t, broker, 'cam-1');
  const backlog = new SqliteTelemetryBacklog(path.join(dir, 'backlog.db'));
  t.teardown(() => backlog.close());
  const client = await connect(t, broker, 'cam-1');
  const uplink = new TelemetryUplink({ client, prefix: PREFIX, deviceId: 'cam-1', backlog, telemetry: db, intervalMs: 40, log: silent });
  uplink.start();
  for (let i = 0; i < 10; i++) {
    recorder.recordRequest(request(Date.now(), 'det', '3', 5 + i));
    recorder.flush();
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  uplink.tick();
  await uplink.stop();
  await until('every report', () => watch.reports.length >= uplink.stats().built);
  const seqs = watch.reports.map((r) => r.seq);
  t.ok(seqs.length >= 5, `${seqs.length} reports in 300 ms at a 40 ms interval`);
  t.same(seqs, seqs.map((_, i) => i + 1), 'seq 1, 2, 3, … in order, none twice');
  t.equal(watch.reports.reduce((n, r) => n + r.models.reduce((m, x) => m + x.requests, 0), 0), 10, 'every request reported once');
  t.match(uplink.stats(), { acknowledged: seqs.length, inFlight: 0, backlogRows: 0, droppedTotal: 0 });
});

t.test('a daemon restart while the broker is down keeps the backlog and continues the seqs', async (t) => {
  const dir = tempDir(t);
  const { db, recorder } = telemetryDb(t, dir);
  const own = await startBroker({ log: (line) => t.comment(line) });
  t.teardown(() => own.close());
  const watch = await subscriber(t, own, 'truck-3');
  await own.stop();

  const backlogFile = path.join(dir, 'state', 'telemetry-backlog.db');
  const run = async (requests: number) => {
    const backlog = new SqliteTelemetryBacklog(backlogFile);
    const client = mqtt.connect(own.url, { clientId: 'truck-3', protocolVersion: own.protocolVersion, reconnectPeriod: 100, connectTimeout: 500 });
    client.on('error', () => { /* the broker is down: mqtt.js keeps retrying */ });
    const uplink = new TelemetryUplink({ client, prefix: PREFIX, deviceId: 'truck-3', backlog, telemetry: db, intervalMs: 60_000, log: silent });
    uplink.start();
    for (let i = 0; i < requests; i++) {
      recorder.recordRequest(request(Date.now(), 'det', '3', 4));
      recorder.flush();
      uplink.tick();
    }
    return { backlog, client, uplink };
  };
  const first = await run(4);
  t.equal(first.uplink.stats().backlogRows, 4, 'offline: four reports wait');
  await first.uplink.stop();
  first.backlog.close();
  await first.client.endAsync(true);

  const second = await run(2);
  t.teardown(async () => { await second.uplink.stop(); second.backlog.close(); await second.client.endAsync(true); });
  t.equal(second.uplink.stats().backlogRows, 6, 'the restarted daemon found the four and added two');
  await own.restart();
  await until('six reports', () => watch.reports.length >= 6);
  await until('the backlog to empty', () => second.uplink.stats().backlogRows === 0);
  t.same(watch.reports.map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
  t.same(watch.reports.map((r) => r.models[0]?.requests), [1, 1, 1, 1, 1, 1]);
});
