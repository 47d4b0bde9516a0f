/**
 * The monitor's dashboard in headless Chromium with live data: a real broker (own Mosquitto), a monitor (SQLite
 * store, collector, fastify on 127.0.0.1) and a test fleet of four simulated devices publishing status, progress
 * and telemetry through their real uplinks. The fleet table, rollout progress and charts must show the fleet,
 * nothing may be fetched from elsewhere, and the page must refresh itself as new reports arrive. A screenshot goes
 * to a temp folder, or to docs/img/monitor.png with EDGERUN_UPDATE_SCREENSHOTS=1.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { startMonitor } from '../../daemon/monitor/monitor.ts';
import { openSqliteMonitorStore } from '../../daemon/monitor/sqlite-store.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { PREFIX, startSimDevice, type SimDeviceSpec } from './helpers/sim-fleet.ts';
import { CHROMIUM, headlessBrowser } from '../helpers/headless-chromium.ts';

// Tests never rewrite tracked files: the docs screenshot is refreshed only on request.
const screenshotPath = process.env.EDGERUN_UPDATE_SCREENSHOTS === '1'
  ? new URL('../../docs/img/monitor.png', import.meta.url).pathname
  : path.join(os.tmpdir(), `edgerun-monitor-${process.pid}.png`);

const det3 = { name: 'det', version: '3', latencyMs: 18, accuracy: 0.991 };
const det4 = { name: 'det', version: '4', latencyMs: 12, accuracy: 0.987 };
const rec1 = { name: 'rec', version: '1', latencyMs: 42, accuracy: 0.975 };
const rollout = { deploymentId: 'dep-det-4', rolloutId: 'roll-det-4', model: { name: 'det', version: '4' }, chunkCount: 80, totalBytes: 10_000_000 };
const FLEET: SimDeviceSpec[] = [
  { deviceId: 'bus-101', groups: ['buses', 'north'], target: 'jetson-orin-nano', models: [det4, rec1], watts: 9.5, historyMinutes: 12,
    progress: { ...rollout, state: 'active', receivedChunks: 80, receivedBytes: 10_000_000 } },
  { deviceId: 'bus-102', groups: ['buses'], target: 'jetson-orin-nano', models: [det3, rec1], watts: 11, historyMinutes: 12,
    progress: { ...rollout, state: 'downloading', receivedChunks: 37, receivedBytes: 4_625_000 } },
  { deviceId: 'cam-201', groups: ['cameras'], target: 'intel-n100', models: [det4], watts: 6.2, historyMinutes: 12,
    progress: { ...rollout, state: 'active', receivedChunks: 80, receivedBytes: 10_000_000 } },
  { deviceId: 'cam-202', groups: ['cameras'], target: 'intel-n100', models: [det3], watts: 5.4, historyMinutes: 12,
    progress: { ...rollout, state: 'rejected', receivedChunks: 0, receivedBytes: 0, code: 'EDGERUN_ERR_FLEET_REJECTED', reason: 'target intel-n100 is not in the manifest\'s targets' } },
];

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

if (!fs.existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
} else {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-monitor-dash-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const broker = await startBroker({ log: (line) => t.comment(line) });
  t.teardown(() => broker.close());
  const store = await openSqliteMonitorStore(path.join(dir, 'monitor.db'));
  const monitor = await startMonitor({ broker: broker.url, prefix: PREFIX, store, host: '127.0.0.1', port: 0, protocolVersion: broker.protocolVersion, clientId: 'test-monitor', log: pino({ level: 'silent' }) });
  t.teardown(() => monitor.stop());
  const devices = await Promise.all(FLEET.map((spec) => startSimDevice(broker.url, broker.protocolVersion, spec)));
  t.teardown(() => Promise.all(devices.map((d) => d.stop())));
  await until('the history and live reports of every device', async () => {
    const fleet = await store.devices();
    return fleet.length === 4 && fleet.every((d) => (d.lastSeq ?? 0) > 72);
  });
  // cam-202 drops off the network: the broker publishes its will.
  devices[3].dropOffline();
  await until('cam-202\'s will', async () => (await store.devices()).find((d) => d.deviceId === 'cam-202')?.online === false);

  const open = await headlessBrowser(t, dir, { width: 1400, height: 1000 });

  t.test('the fleet table shows every device: online state, groups, target, models, deployment, reports', async (t) => {
    const { page, requests, problems } = await open(`${monitor.url}/?since=15m&refresh=1`);
    t.equal(await page.getAttribute('body', 'data-ready'), 'true');
    t.same(problems, [], 'no script errors or CSP violations');
    t.ok(requests.every((u) => u.startsWith(monitor.url)), `only the monitor was asked: ${[...new Set(requests)].join(', ')}`);
    const cell = (device: string, field: string) => page.locator(`#fleet tr[data-device="${device}"] td[data-field="${field}"]`).textContent();
    t.equal(await page.locator('#fleet tbody tr').count(), 4);
    t.equal(await cell('bus-101', 'online'), 'online');
    t.equal(await cell('cam-202', 'online'), 'offline', 'the will marked it offline');
    t.equal(await cell('bus-101', 'groups'), 'buses, north');
    t.equal(await cell('cam-201', 'target'), 'intel-n100');
    t.equal(await cell('bus-101', 'models'), 'det@4, rec@1');
    t.equal(await cell('bus-102', 'deployment'), 'det@4 downloading 37/80');
    t.equal(await cell('cam-202', 'deployment'), 'det@4 rejected (EDGERUN_ERR_FLEET_REJECTED)');
    t.equal(await cell('bus-101', 'missing'), '0', 'no seq gaps');
    t.ok(Number(await cell('bus-101', 'last-seq')) > 72, 'history plus live reports');
  });

  t.test('rollout progress counts devices by state', async (t) => {
    const { page } = await open(`${monitor.url}/?since=15m`);
    const row = page.locator('#rollouts tr[data-rollout="roll-det-4"]');
    t.equal(await row.locator('td[data-field="devices"]').textContent(), '4');
    t.equal(await row.locator('td[data-field="states"]').textContent(), 'active 2, downloading 1, rejected 1');
    t.equal(await row.locator('rect[data-state]').count(), 3, 'one bar segment per state');
  });

  t.test('charts per device and per model draw latency, power, energy and accuracy', async (t) => {
    const { page } = await open(`${monitor.url}/?since=15m`);
    const names = (selector: string) => page.$$eval(selector, (paths) => paths.map((p) => p.getAttribute('data-series')).sort());
    t.same(await names('#by-device-latency path.series[data-series$=" p99"]'), ['bus-101 p99', 'bus-102 p99', 'cam-201 p99', 'cam-202 p99']);
    t.same(await names('#by-device-power path.series'), ['bus-101', 'bus-102', 'cam-201', 'cam-202']);
    t.same(await names('#by-model-latency path.series[data-series$=" p50"]'), ['det@3 p50', 'det@4 p50', 'rec@1 p50']);
    t.same(await names('#by-model-energy path.series'), ['det@3', 'det@4', 'rec@1']);
    t.same(await names('#by-model-accuracy path.series'), ['det@3', 'det@4', 'rec@1']);
    const d = await page.getAttribute('#by-device-latency path.series[data-series="bus-101 p99"]', 'd');
    t.ok((d?.match(/L/g) ?? []).length >= 20, 'a line through many points of history');
  });

  t.test('filtering by model narrows the charts, and the page refreshes itself with new reports', async (t) => {
    const { page } = await open(`${monitor.url}/?since=15m&refresh=1`);
    await page.selectOption('#model', 'rec');
    await until('the rec charts', async () => (await page.locator('#by-model-latency path.series').count()) === 3);
    t.same(await page.$$eval('#by-model-latency path.series', (p) => p.map((x) => x.getAttribute('data-series')).sort()), ['rec@1 p50', 'rec@1 p95', 'rec@1 p99']);
    t.match(page.url(), /model=rec/);
    const seqCell = page.locator('#fleet tr[data-device="bus-101"] td[data-field="last-seq"]');
    const before = Number(await seqCell.textContent());
    await until('a refresh with newer reports', async () => Number(await seqCell.textContent()) > before, 15_000);
    t.ok(Number(await seqCell.textContent()) > before, 'the last seq moved on without a reload');
    await page.selectOption('#model', '');
    await until('every model\'s charts', async () => (await page.locator('#by-model-latency path.series').count()) === 9);
    fs.mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    t.ok(fs.statSync(screenshotPath).size > 30_000, `a screenshot with content: ${screenshotPath}`);
  });

  t.test('a bad window shows the server\'s error', async (t) => {
    const { page } = await open(`${monitor.url}/?since=soon`);
    t.equal(await page.getAttribute('body', 'data-ready'), 'error');
    t.match(await page.locator('#error').textContent(), /Cannot load fleet data: query parameter 'since': 'soon' is not a window/);
  });
}
