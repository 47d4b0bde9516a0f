/**
 * A broker outage end to end, test-sized (bench/telemetry-outage.ts runs the real 10 minutes): a device reports
 * every 50 ms through its uplink while traffic is recorded, the broker (own Mosquitto) is down for 3 s, and the
 * monitor (collector + SQLite store on a persistent session) must end with every report exactly once, no seq
 * missing, every request counted (arrival order is checked in uplink.test.ts); with a backlog bound smaller than the outage, the drops are counted and the
 * monitor sees exactly those seqs missing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { SqliteTelemetryBacklog } from '../../daemon/fleet/telemetry-backlog.ts';
import { TelemetryUplink } from '../../daemon/fleet/uplink.ts';
import { FleetCollector } from '../../daemon/monitor/collector.ts';
import { connectMonitor } from '../../daemon/monitor/monitor-client.ts';
import { openSqliteMonitorStore } from '../../daemon/monitor/sqlite-store.ts';
import type { MonitorStore } from '../../daemon/monitor/store-types.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb } from '../../daemon/telemetry/schema.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';

const PREFIX = 'edgerun/v1';
const silent = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface OutageRun {
  built: number;
  droppedTotal: number;
  recorded: number;
  store: MonitorStore;
  collector: FleetCollector;
}

async function outage(t: Test, deviceId: string, maxRows: number): Promise<OutageRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-outage-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const broker = await startBroker({ log: (line) => t.comment(line) });
  t.teardown(() => broker.close());
  const store = await openSqliteMonitorStore(path.join(dir, 'monitor.db'));
  t.teardown(() => store.close());
  const monitorClient = await connectMonitor(broker.url, { clientId: `monitor-${deviceId}`, protocolVersion: broker.protocolVersion });
  t.teardown(() => monitorClient.endAsync(true));
  const collector = new FleetCollector(monitorClient, store, PREFIX, silent);
  await collector.start();

  const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 20 });
  const backlog = new SqliteTelemetryBacklog(path.join(dir, 'telemetry-backlog.db'), { maxRows });
  const client = mqtt.connect(broker.url, { clientId: `edgerun-${deviceId}`, protocolVersion: broker.protocolVersion, reconnectPeriod: 100, connectTimeout: 500 });
  client.on('error', () => undefined);
  // The test drives the 50 ms ticks itself, so that it can stop building reports and still let the backlog drain.
  const uplink = new TelemetryUplink({ client, prefix: PREFIX, deviceId, backlog, telemetry: db, intervalMs: 3_600_000, log: silent });
  t.teardown(async () => { await uplink.stop(100); await client.endAsync(true); backlog.close(); recorder.close(); db.close(); });
  await until('the device to connect', () => client.connected);
  uplink.start();

  const ticks = setInterval(() => uplink.tick(), 50);
  let recorded = 0;
  const traffic = setInterval(() => {
    recorder.recordRequest({ at: Date.now(), model: 'det', version: '3', engine: 'webgpu', queueMs: 0, computeMs: 3, totalMs: 4, batchSize: 1, ok: true });
    recorded++;
  }, 10);
  await sleep(500);
  await broker.stop();
  await sleep(3000);
  t.ok(uplink.stats().backlogRows >= Math.min(maxRows, 40), `reports waited in the backlog: ${uplink.stats().backlogRows}`);
  await broker.restart();
  await sleep(500);
  clearInterval(traffic);
  clearInterval(ticks);
  recorder.flush();
  uplink.tick();
  await until('the backlog to drain', () => uplink.stats().backlogRows === 0 && uplink.stats().inFlight === 0);
  const { built, droppedTotal } = uplink.stats();
  await until('the monitor to hold every report that got through', async () => (await store.seqs(deviceId)).at(-1) === built);
  await collector.idle();
  return { built, droppedTotal, recorded, store, collector };
}

t.test('within the bound: after a 3 s outage the monitor has every report once, in order, and every request', async (t) => {
  const run = await outage(t, 'bus-outage', 10_000);
  const seqs = await run.store.seqs('bus-outage');
  t.ok(run.built >= 40, `${run.built} reports built at 50 ms over about 4 s`);
  t.equal(run.droppedTotal, 0);
  t.same(seqs, Array.from({ length: run.built }, (_, i) => i + 1), 'seq 1..N, nothing lost, none twice');
  t.same(await run.store.gaps(), []);
  const rows = await run.store.telemetry({ since: 0, until: Date.now() + 1, deviceId: 'bus-outage', limit: 100_000 });
  t.equal(rows.reduce((n, r) => n + r.requests, 0), run.recorded, 'every recorded request is in exactly one stored report');
  t.ok(run.collector.stats().duplicates <= 16, `redelivered copies were dropped by (device, seq): ${run.collector.stats().duplicates}`);
});

t.test('beyond the bound: the oldest reports are dropped and counted, and the monitor sees exactly those missing', async (t) => {
  const run = await outage(t, 'cam-outage', 15);
  const seqs = await run.store.seqs('cam-outage');
  t.ok(run.droppedTotal > 20, `${run.droppedTotal} reports dropped by a 15-report bound`);
  const missing = (await run.store.gaps()).reduce((n, g) => n + g.missing, 0);
  t.equal(seqs.at(-1), run.built, 'the newest report arrived');
  t.equal(seqs.length + missing, run.built, 'every seq is either stored or a counted gap');
  // A report in flight when the broker went away may be dropped from the backlog yet delivered by mqtt.js's own
  // store after the reconnect: the device's count can exceed the monitor's gaps by the reports in flight.
  t.ok(run.droppedTotal >= missing && run.droppedTotal - missing <= 16, `dropped ${run.droppedTotal}, missing ${missing}`);
  t.equal((await run.store.counts()).droppedReported, run.droppedTotal, 'the latest report carries the device\'s count');
});
