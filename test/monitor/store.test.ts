/**
 * The MonitorStore contract, run against both implementations: SQLite in a temp file, and PostgreSQL on a server
 * this test starts in a temp folder (initdb + pg_ctl) and stops at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import t, { type Test } from 'tap';
import type { DeploymentProgress, DeviceStatus, TelemetryReport } from '../../daemon/fleet/protocol.ts';
import { openPostgresMonitorStore, redactUrl } from '../../daemon/monitor/postgres-store.ts';
import { openSqliteMonitorStore } from '../../daemon/monitor/sqlite-store.ts';
import type { MonitorStore } from '../../daemon/monitor/store-types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { postgresBinDir, startPostgres } from './helpers/postgres-server.ts';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

const status = (deviceId: string, over: Partial<DeviceStatus> = {}): DeviceStatus => ({
  protocol: 1, deviceId, groups: ['buses'], online: true, target: 'jetson-orin', agentVersion: '0.1.0',
  models: [{ name: 'det', version: '3', state: 'active' }], at: iso(0), ...over,
});

const progress = (deviceId: string, state: DeploymentProgress['state'], atMs: number, over: Partial<DeploymentProgress> = {}): DeploymentProgress => ({
  protocol: 1, deviceId, deploymentId: 'dep-1', rolloutId: 'roll-1', model: { name: 'det', version: '4' }, state,
  receivedChunks: state === 'downloading' ? 3 : 10, chunkCount: 10, receivedBytes: 0, totalBytes: 1000, at: iso(atMs), ...over,
});

const report = (deviceId: string, seq: number, over: Partial<TelemetryReport> = {}): TelemetryReport => ({
  protocol: 1, deviceId, seq, windowStart: iso((seq - 1) * 60_000), windowEnd: iso(seq * 60_000),
  models: [{ name: 'det', version: '3', requests: 100 + seq, errors: 1, throughputPerSec: 1.5, latencyMs: { p50: 10, p95: 20, p99: 30 + seq }, powerWatts: 12.5, energyPerInferenceJ: 0.25, accuracy: 0.98 }],
  ...over,
});

function storeContract(name: string, open: (t: Test) => Promise<MonitorStore>): void {
  t.test(`${name}: a telemetry report is stored once per (device, seq); copies count as duplicates`, async (t) => {
    const store = await open(t);
    t.equal(await store.recordTelemetry(report('bus-1', 1), T0), 'stored');
    t.equal(await store.recordTelemetry(report('bus-1', 1, { models: [] }), T0), 'duplicate');
    t.equal(await store.recordTelemetry(report('bus-2', 1), T0), 'stored', 'the same seq of another device');
    const rows = await store.telemetry({ since: T0, until: T0 + 3_600_000 });
    t.same(rows.map((r) => [r.deviceId, r.seq, r.requests]), [['bus-1', 1, 101], ['bus-2', 1, 101]], 'the first copy kept');
    t.match(rows[0], { at: T0 + 60_000, windowMs: 60_000, model: 'det', version: '3', p50: 10, p95: 20, p99: 31, powerWatts: 12.5, energyPerInferenceJ: 0.25, accuracy: 0.98, throughputPerSec: 1.5, errors: 1 });
    t.match(await store.counts(), { reports: 2, duplicateReports: 1, devices: 2 });
  });

  t.test(`${name}: gaps in a device's seqs are found and counted`, async (t) => {
    const store = await open(t);
    const dropped: Record<number, number> = { 7: 2, 8: 3, 12: 3 };
    for (const seq of [3, 4, 7, 8, 12]) await store.recordTelemetry(report('cam-1', seq, dropped[seq] ? { dropped: dropped[seq] } : {}), T0);
    for (const seq of [1, 2]) await store.recordTelemetry(report('cam-2', seq, seq === 2 ? { dropped: 1 } : {}), T0);
    t.same(await store.gaps(), [{ deviceId: 'cam-1', ranges: [[5, 6], [9, 11]], missing: 5 }], 'no gap before the first seq seen, none on cam-2');
    t.same(await store.seqs('cam-1'), [3, 4, 7, 8, 12]);
    t.match(await store.counts(), { droppedReported: 3 + 1 }, 'each device\'s latest cumulative count, summed');
    const devices = await store.devices();
    t.match(devices.find((d) => d.deviceId === 'cam-1'), { lastSeq: 12, missingReports: 5, online: null, lastSeen: T0 + 12 * 60_000 });
  });

  t.test(`${name}: the fleet table joins status, the latest deployment and telemetry`, async (t) => {
    const store = await open(t);
    await store.recordStatus(status('bus-1'), T0);
    await store.recordStatus(status('bus-2', { groups: ['buses', 'north'], target: undefined, models: [] }), T0);
    await store.recordProgress(progress('bus-1', 'downloading', 1000), T0);
    await store.recordProgress(progress('bus-1', 'active', 5000), T0);
    await store.recordProgress(progress('bus-1', 'downloading', 3000), T0);
    await store.recordStatus(status('bus-2', { online: false, at: iso(9000) }), T0);
    await store.recordTelemetry(report('bus-1', 1), T0);
    const [one, two] = await store.devices();
    t.match(one, {
      deviceId: 'bus-1', online: true, groups: ['buses'], target: 'jetson-orin', agentVersion: '0.1.0',
      models: [{ name: 'det', version: '3', state: 'active' }], lastSeq: 1, missingReports: 0, lastSeen: T0 + 60_000,
      deployment: { deploymentId: 'dep-1', rolloutId: 'roll-1', model: 'det', version: '4', state: 'active', receivedChunks: 10, chunkCount: 10, at: T0 + 5000 },
    }, 'an older progress arriving late does not undo a newer one');
    t.match(two, { deviceId: 'bus-2', online: false, groups: ['buses'], target: 'jetson-orin', deployment: null, lastSeq: null, lastSeen: T0 + 9000 }, 'the will (online: false) wins');
  });

  t.test(`${name}: rollouts count devices by their latest state`, async (t) => {
    const store = await open(t);
    await store.recordProgress(progress('a', 'downloading', 1), T0);
    await store.recordProgress(progress('a', 'active', 2), T0);
    await store.recordProgress(progress('b', 'downloading', 3), T0);
    await store.recordProgress(progress('c', 'rejected', 4, { code: 'EDGERUN_ERR_FLEET_REJECTED', reason: 'expired' }), T0);
    await store.recordProgress(progress('a', 'active', 5, { deploymentId: 'dep-9', rolloutId: undefined, model: { name: 'rec', version: '2' } }), T0);
    t.same(await store.rollouts(), [
      { id: 'dep-9', kind: 'deployment', model: 'rec', version: '2', states: { active: 1 }, devices: 1, updatedAt: T0 + 5 },
      { id: 'roll-1', kind: 'rollout', model: 'det', version: '4', states: { active: 1, downloading: 1, rejected: 1 }, devices: 3, updatedAt: T0 + 4 },
    ]);
    const c = (await store.devices()).find((d) => d.deviceId === 'c');
    t.match(c?.deployment, { state: 'rejected', code: 'EDGERUN_ERR_FLEET_REJECTED', reason: 'expired' });
  });

  t.test(`${name}: telemetry queries filter by device, model and window, newest rows kept under the limit`, async (t) => {
    const store = await open(t);
    for (let seq = 1; seq <= 6; seq++) {
      await store.recordTelemetry(report('x', seq, {
        models: [...report('x', seq).models, { ...report('x', seq).models[0], name: 'rec', version: '1', powerWatts: null, accuracy: null, latencyMs: { p50: null, p95: null, p99: null } }],
      }), T0);
    }
    await store.recordTelemetry(report('y', 1), T0);
    t.equal((await store.telemetry({ since: T0, until: T0 + 1e9 })).length, 13);
    t.same((await store.telemetry({ since: T0, until: T0 + 1e9, deviceId: 'x', model: 'rec' })).map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
    t.same((await store.telemetry({ since: T0 + 2 * 60_000, until: T0 + 4 * 60_000, deviceId: 'x', model: 'det' })).map((r) => r.seq), [3, 4], 'window (since, until]');
    t.same((await store.telemetry({ since: T0, until: T0 + 1e9, deviceId: 'x', model: 'det', limit: 2 })).map((r) => r.seq), [5, 6]);
    const rec = (await store.telemetry({ since: T0, until: T0 + 1e9, model: 'rec', limit: 1 }))[0];
    t.match(rec, { p50: null, p95: null, p99: null, powerWatts: null, accuracy: null });
  });
}

function tempFile(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-monitor-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'monitor.db');
}

storeContract('SQLite', async (t) => {
  const store = await openSqliteMonitorStore(tempFile(t));
  t.teardown(() => store.close());
  return store;
});

const binDir = postgresBinDir();
if (!binDir) {
  t.comment('SKIP PostgreSQL contract: no /usr/lib/postgresql/<major>/bin with initdb and pg_ctl (apt-get install postgresql)');
} else {
  const server = await startPostgres(binDir);
  t.teardown(() => server.stop());
  let databases = 0;
  storeContract('PostgreSQL', async (t) => {
    // A database per test: each starts empty, as the SQLite file does.
    const name = `contract_${++databases}`;
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const store = await openPostgresMonitorStore(server.url.replace(/\/postgres$/, `/${name}`));
    t.teardown(() => store.close());
    return store;
  });

  t.test('PostgreSQL: an unreachable server is EDGERUN_ERR_MONITOR naming the URL without its password', async (t) => {
    await expectEdgerunError(t, openPostgresMonitorStore('postgres://edgerun:s3cret@127.0.0.1:1/db'), 'EDGERUN_ERR_MONITOR', /cannot be reached/, /127\.0\.0\.1:1/);
    t.equal(redactUrl('postgres://u:s3cret@h:5/d'), 'postgres://u:***@h:5/d');
  });
}

t.test('SQLite: a store that cannot be created is EDGERUN_ERR_MONITOR naming the file', async (t) => {
  const notADir = tempFile(t);
  fs.writeFileSync(notADir, 'a file, not a folder');
  await expectEdgerunError(t, openSqliteMonitorStore(path.join(notADir, 'monitor.db')), 'EDGERUN_ERR_MONITOR', /monitor\.db\/monitor\.db cannot be opened/);
});
