/**
 * The uplink inside the real daemon (a child process joined to a real broker): served requests come back as
 * telemetry reports at the monitor, and a daemon stopped while the broker is down keeps its unsent reports in
 * <state dir>/telemetry-backlog.db; the restarted daemon sends them, in seq order and without a gap, once the
 * broker is back.
 */
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { FleetCollector } from '../../daemon/monitor/collector.ts';
import { connectMonitor } from '../../daemon/monitor/monitor-client.ts';
import { openSqliteMonitorStore } from '../../daemon/monitor/sqlite-store.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { inferScale, makeKey, PREFIX, startDevice, tempDir, writeScalePackage } from './helpers/agent-harness.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

t.test('served requests reach the monitor; a restart while the broker is down loses no report', async (t) => {
  const dir = await tempDir(t, 'uplink-daemon');
  const broker = await startBroker({ log: (line) => t.comment(line) });
  t.teardown(() => broker.close());
  const { pubFile } = await makeKey(dir, 'operator');
  const modelsDir = path.join(dir, 'models');
  await writeScalePackage(modelsDir, '1', 2);
  const store = await openSqliteMonitorStore(path.join(dir, 'monitor.db'));
  t.teardown(() => store.close());
  const monitorClient = await connectMonitor(broker.url, { clientId: 'uplink-daemon-monitor', protocolVersion: broker.protocolVersion });
  t.teardown(() => monitorClient.endAsync(true));
  const collector = new FleetCollector(monitorClient, store, PREFIX, pino({ level: 'silent' }));
  await collector.start();

  const env = { EDGERUN_TELEMETRY_ENABLED: 'true', EDGERUN_TELEMETRY_FLUSH_INTERVAL_MS: '50', EDGERUN_FLEET_TELEMETRY_INTERVAL_MS: '200' };
  const start = () => startDevice({ broker, dir, deviceId: 'kiosk-9', trust: [pubFile], modelsDir, env });
  const requests = async (n: number) => {
    for (let i = 0; i < n; i++) t.equal((await inferScale(device.url)).status, 200);
  };
  const reported = async () => (await store.telemetry({ since: 0, until: Date.now() + 1, deviceId: 'kiosk-9' })).reduce((n, r) => n + r.requests, 0);

  let device = await start();
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  await requests(5);
  await until('5 requests reported', async () => (await reported()) === 5);
  const first = (await store.telemetry({ since: 0, until: Date.now() + 1, deviceId: 'kiosk-9' })).find((r) => r.requests > 0)!;
  t.match(first, { model: 'scale', version: '1' });
  t.ok(first.p50! > 0 && first.p99! >= first.p50!, `latency percentiles: p50 ${first.p50} ms, p99 ${first.p99} ms`);

  await broker.stop();
  await requests(7);
  await sleep(600);
  device.signal('SIGTERM');
  t.equal((await device.exited).code, 0, 'the daemon stopped cleanly with the broker away');
  const seenBefore = await store.seqs('kiosk-9');

  device = await start();
  await requests(3);
  await sleep(400);
  await broker.restart();
  await until('all 15 requests reported', async () => (await reported()) === 15);
  await collector.idle();
  const seqs = await store.seqs('kiosk-9');
  t.ok(seqs.length > seenBefore.length + 3, `${seqs.length - seenBefore.length} reports arrived after the outage`);
  t.same(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'seqs continue across the restart: 1..N without a gap');
  t.same(await store.gaps(), []);
});
