/** `edgerun publish` against a real broker: a signed chunked deployment to one device and to a group, resends on request, failures. */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { connectOperator } from '../../daemon/fleet/publisher-broker.ts';
import { openPackageSource } from '../../daemon/fleet/publisher-package.ts';
import { publishPackage } from '../../daemon/fleet/publisher.ts';
import { readSigningKey } from '../../daemon/fleet/signing.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { AgentDevice } from './helpers/in-process-agents.ts';
import { operatorFixture } from './helpers/operator-fixture.ts';
import { SimulatedDevice } from './helpers/simulated-device.ts';

const payload = crypto.randomBytes(200_000);
const { dir, broker, keyPrefix, trusted, model, pkg, common } = await operatorFixture(t, 'edgerun-publish-', payload);

t.test('one device receives every file intact and goes active; progress lines and a JSON outcome', async (t) => {
  const device = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'cam-1', trusted });
  t.teardown(() => device.stop());
  const r = await edgerun('publish', pkg.dir, '--to', 'cam-1', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.succeeded, 1);
  t.equal(outcome.devices[0].deviceId, 'cam-1');
  t.equal(outcome.devices[0].state, 'active');
  t.equal(outcome.resentBytes, 0, 'nothing resent when nothing was lost');
  t.match(r.err, /cam-1 {2}active {2}100% {2}[\d.]+ MB\/s/);
  t.same(device.files.get('weights.bin'), payload);
  t.same(device.files.get('manifest.json'), await fs.readFile(path.join(pkg.dir, 'manifest.json')));
  t.equal(device.manifests[0]!.files[0]!.path, 'manifest.json', 'manifest.json travels first');
  t.equal(device.manifests[0]!.chunkCount, Math.ceil(outcome.totalBytes / 16384));
  t.equal(device.rejected.length, 0, 'the manifest signature verified');
});

t.test('the daemon\'s fleet agent takes the deployment: signature, chunks, file hashes, then the version goes active', async (t) => {
  const device = await AgentDevice.start({ brokerUrl: broker.url, mqttProtocolVersion: broker.protocolVersion, deviceId: 'agent-1', stateDir: path.join(dir, 'agent-1'), trustFiles: [`${keyPrefix}.pub`] });
  t.teardown(() => device.stop());
  await device.connected();
  const r = await edgerun('publish', pkg.dir, '--to', 'agent-1', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.devices[0].state, 'active');
  t.same(device.recorder.deployed, [{ name: 'relu', version: '2.0' }]);
  t.equal(device.deliveredBytes, outcome.totalBytes, 'every chunk delivered once');
});

t.test('a broker restart in the middle of a transfer is ridden out: the device resumes and goes active', async (t) => {
  let restarted: Promise<void> | null = null;
  const device = await AgentDevice.start({
    brokerUrl: broker.url, mqttProtocolVersion: broker.protocolVersion, deviceId: 'agent-2', stateDir: path.join(dir, 'agent-2'), trustFiles: [`${keyPrefix}.pub`], chunkRequestTimeoutMs: 500,
    onChunk: (d) => { if (d.deliveredChunks === 3) restarted ??= broker.restart({ downMs: 300 }); },
  });
  t.teardown(() => device.stop());
  await device.connected();
  const r = await edgerun('publish', pkg.dir, '--to', 'agent-2', ...common);
  await restarted;
  t.ok(restarted, 'the broker was restarted mid-transfer');
  t.equal(r.code, 0, r.err);
  t.equal(JSON.parse(r.out).devices[0].state, 'active');
  t.same(device.recorder.deployed, [{ name: 'relu', version: '2.0' }]);
});

t.test('chunks a device lost are resent when it asks for them, and only those', async (t) => {
  const lost = new Set([1, 4, 5, 9]);
  const device = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'cam-2', trusted, dropFirst: (i) => lost.has(i), requestAfterMs: 200 });
  t.teardown(() => device.stop());
  const r = await edgerun('publish', pkg.dir, '--to', 'cam-2', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.requestedChunks, lost.size);
  t.equal(outcome.resentBytes, lost.size * 16384);
  t.ok(device.requestsSent >= 1);
  t.same(device.files.get('weights.bin'), payload);
});

t.test('a group deployment reaches its online members through the group topic', async (t) => {
  const a = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'g-a', groups: ['yard'], trusted });
  const b = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'g-b', groups: ['yard', 'north'], trusted });
  const other = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'g-other', groups: ['south'], trusted });
  t.teardown(async () => { await a.stop(); await b.stop(); await other.stop(); });
  const r = await edgerun('publish', pkg.dir, '--to', 'group:yard', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.same(outcome.devices.map((d: { deviceId: string }) => d.deviceId).sort(), ['g-a', 'g-b']);
  t.equal(outcome.sentBytes, outcome.totalBytes, 'one chunk stream serves both devices');
  t.same(a.files.get('weights.bin'), payload);
  t.same(b.files.get('weights.bin'), payload);
  t.equal(other.manifests.length, 0, 'a device outside the group gets nothing');
});

t.test('a group member that comes online during a group deployment takes the retained manifest and is served too', async (t) => {
  const early = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'late-a', groups: ['late'], trusted, outcomeDelayMs: 1500 });
  t.teardown(() => early.stop());
  const publishing = edgerun('publish', pkg.dir, '--to', 'group:late', ...common);
  while (early.manifests.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  const late = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'late-b', groups: ['late'], trusted, requestAfterMs: 100 });
  t.teardown(() => late.stop());
  const r = await publishing;
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.same(outcome.devices.map((d: { deviceId: string; state: string }) => [d.deviceId, d.state]), [['late-a', 'active'], ['late-b', 'active']]);
  t.same(late.files.get('weights.bin'), payload, 'the late member fetched every chunk by request');
});

t.test('a device that reports a failure makes publish exit 1 and name the reason', async (t) => {
  const device = await SimulatedDevice.start({
    brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'cam-3', trusted, failWith: { code: 'EDGERUN_ERR_GATE_FAILED', reason: 'agreement 0.42 below 0.99' },
  });
  t.teardown(() => device.stop());
  const r = await edgerun('publish', pkg.dir, '--to', 'cam-3', ...common);
  t.equal(r.code, 1);
  t.equal(JSON.parse(r.out).failed, 1);
  t.match(r.err, /cam-3: failed — EDGERUN_ERR_GATE_FAILED: agreement 0.42 below 0.99/);
});

t.test('a device that never answers leaves publish without an outcome at --timeout', async (t) => {
  const r = await edgerun('publish', pkg.dir, '--to', 'nobody-home', ...common.slice(0, -3), '--timeout', '1500ms', '--json');
  t.equal(r.code, 1);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.pending, 1);
  t.equal(outcome.timedOut, true);
  t.match(r.err, /nobody-home: no outcome \(last state waiting\)/);
  const later = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  const retained: string[] = [];
  later.on('message', (topic, message) => { if (message.length > 0) retained.push(topic); });
  await later.subscribeAsync('edgerun/v1/devices/nobody-home/deploy', { qos: 1 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await later.endAsync();
  t.same(retained, [], 'the manifest is not left retained for a device nobody serves any more');
});

t.test('a group with no online member is refused before anything is published', async (t) => {
  const r = await edgerun('publish', pkg.dir, '--to', 'group:empty', ...common);
  t.equal(r.code, 1);
  t.match(r.err, /EDGERUN_ERR_FLEET_REJECTED: group 'empty' has no online device/);
});

t.test('a package file that shrinks after verification stops the deployment with a coded error', async (t) => {
  const copy = await writePackage(path.join(dir, 'shrinking'), { name: 'relu', version: '3.0', model, extraFiles: { 'weights.bin': payload } });
  const device = await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: 'cam-4', trusted });
  const source = await openPackageSource(copy.dir);
  const client = await connectOperator(broker.url);
  t.teardown(async () => { await device.stop(); await source.close(); await client.endAsync(); });
  await fs.truncate(path.join(copy.dir, 'weights.bin'), 1000);
  await expectEdgerunError(t, publishPackage({
    client, prefix: 'edgerun/v1', key: await readSigningKey(`${keyPrefix}.key`), source, target: { kind: 'device', deviceId: 'cam-4' },
    timeoutMs: 10_000, expiresInMs: 60_000, chunkBytes: 16384,
  }), 'EDGERUN_ERR_PACKAGE_INVALID', /shrank while it was being sent/);
});
