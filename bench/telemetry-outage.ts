/**
 * The telemetry uplink through a real broker outage: a device (telemetry database + uplink) reports every
 * --interval-ms while traffic is recorded; the broker (its own Mosquitto) is stopped for --outage-s and started
 * again; a monitor (FleetCollector + SQLite MonitorStore, persistent session) collects throughout. Reports the
 * reports buffered at the peak, the time to drain the backlog after the broker came back, and whether the monitor
 * holds every seq once, in order, with every recorded request counted.
 *
 *   node --import tsx bench/telemetry-outage.ts [--outage-s 600] [--interval-ms 1000] [--max-rows 10000] [--json]
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { SqliteTelemetryBacklog } from '../daemon/fleet/telemetry-backlog.ts';
import { TelemetryUplink } from '../daemon/fleet/uplink.ts';
import { FleetCollector } from '../daemon/monitor/collector.ts';
import { connectMonitor } from '../daemon/monitor/monitor-client.ts';
import { openSqliteMonitorStore } from '../daemon/monitor/sqlite-store.ts';
import { TelemetryRecorder } from '../daemon/telemetry/recorder.ts';
import { openTelemetryDb } from '../daemon/telemetry/schema.ts';
import { startBroker } from '../test/helpers/mqtt-broker.ts';

const { values } = parseArgs({
  options: {
    'outage-s': { type: 'string', default: '600' },
    'interval-ms': { type: 'string', default: '1000' },
    'max-rows': { type: 'string', default: '10000' },
    'online-s': { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
  },
});
const outageMs = Number(values['outage-s']) * 1000;
const intervalMs = Number(values['interval-ms']);
const maxRows = Number(values['max-rows']);
const onlineMs = Number(values['online-s']) * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => { if (!values.json) process.stderr.write(`${new Date().toISOString()} ${line}\n`); };
const PREFIX = 'edgerun/v1';
const DEVICE = 'bench-device';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-bench-outage-'));
const broker = await startBroker({ log: say });
const log = pino({ level: 'silent' });
const telemetryDb = openTelemetryDb(path.join(dir, 'telemetry.db'));
const recorder = new TelemetryRecorder(telemetryDb, { flushIntervalMs: 200 });
const backlog = new SqliteTelemetryBacklog(path.join(dir, 'telemetry-backlog.db'), { maxRows });
const store = await openSqliteMonitorStore(path.join(dir, 'monitor.db'));
const monitorClient = await connectMonitor(broker.url, { clientId: 'bench-monitor', protocolVersion: broker.protocolVersion });
const collector = new FleetCollector(monitorClient, store, PREFIX, log);
await collector.start();
const deviceClient = mqtt.connect(broker.url, { clientId: `edgerun-${DEVICE}`, protocolVersion: broker.protocolVersion, reconnectPeriod: 1000, clean: false, ...(broker.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 3600 } } : {}) });
deviceClient.on('error', () => undefined);
const uplink = new TelemetryUplink({ client: deviceClient, prefix: PREFIX, deviceId: DEVICE, backlog, telemetry: telemetryDb, intervalMs, log });
uplink.start();

// Traffic: 20 requests a second, recorded as the daemon's request path would.
let recorded = 0;
const traffic = setInterval(() => {
  for (let i = 0; i < 2; i++) {
    recorder.recordRequest({ at: Date.now(), model: 'det', version: '3', engine: 'onnxruntime-cpu', queueMs: 0.1, computeMs: 4, totalMs: 4 + Math.random() * 4, batchSize: 1, ok: true });
    recorded++;
  }
}, 100);

say(`online for ${onlineMs / 1000} s, reports every ${intervalMs} ms`);
await sleep(onlineMs);
const beforeOutage = uplink.stats();
say(`broker down for ${outageMs / 1000} s (${beforeOutage.acknowledged} reports acknowledged so far)`);
await broker.stop();
const downAt = Date.now();
let peakBacklog = 0;
while (Date.now() - downAt < outageMs) {
  await sleep(Math.min(5000, outageMs));
  peakBacklog = Math.max(peakBacklog, uplink.stats().backlogRows);
  say(`  backlog ${uplink.stats().backlogRows} reports`);
}
peakBacklog = Math.max(peakBacklog, uplink.stats().backlogRows);
await broker.restart();
const upAt = Date.now();
say(`broker back; backlog ${uplink.stats().backlogRows}`);
while (uplink.stats().backlogRows > 1) await sleep(20);
const drainedMs = Date.now() - upAt;
await sleep(onlineMs);
clearInterval(traffic);
recorder.flush();
uplink.tick();
while (uplink.stats().backlogRows > 0 || uplink.stats().inFlight > 0) await sleep(20);
const built = uplink.stats().built;
const deadline = Date.now() + 30_000;
while ((await store.counts()).reports < built - uplink.stats().droppedTotal && Date.now() < deadline) await sleep(50);
await collector.idle();

const seqs = await store.seqs(DEVICE);
const rows = await store.telemetry({ since: 0, until: Date.now() + 1, deviceId: DEVICE, limit: 1_000_000 });
const reportedRequests = rows.reduce((n, r) => n + r.requests, 0);
const stats = collector.stats();
const counts = await store.counts();
const result = {
  bench: 'telemetry-outage',
  broker: broker.kind,
  outageS: outageMs / 1000,
  intervalMs,
  maxRows,
  reportsBuilt: built,
  peakBacklog,
  drainMs: drainedMs,
  monitorReports: seqs.length,
  missingAtMonitor: built - seqs.length,
  inOrderNoGaps: seqs.every((s, i) => s === i + 1) && seqs.length === built,
  duplicatesReceived: stats.duplicates,
  droppedByBound: uplink.stats().droppedTotal,
  droppedReported: counts.droppedReported,
  requestsRecorded: recorded,
  requestsReported: reportedRequests,
};
process.stdout.write(`${JSON.stringify(result)}\n`);

await uplink.stop();
await collector.stop();
await deviceClient.endAsync(true);
await monitorClient.endAsync(true);
await store.close();
backlog.close();
recorder.close();
telemetryDb.close();
await broker.close();
await fs.rm(dir, { recursive: true, force: true });
