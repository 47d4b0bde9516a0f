/**
 * The fleet agent end to end against a real broker: a daemon process joins the fleet, takes a signed deployment
 * while it keeps serving, swaps the new version in, rolls back on a signed command, and says goodbye.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import t from 'tap';
import { topics, type DeviceStatus } from '../../daemon/fleet/protocol.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { commandTimes, inferScale, makeKey, PREFIX, startDevice, tempDir, TestSender, writeScalePackage } from './helpers/agent-harness.ts';

t.test('a device installs a signed deployment while serving, reports each state, and rolls back on command', async (t) => {
  const dir = await tempDir(t, 'fleet-agent');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const modelsDir = path.join(dir, 'models');
  await writeScalePackage(modelsDir, '1', 2);
  const device = await startDevice({ broker, dir, deviceId: 'van-1', trust: [pubFile], groups: ['vans'], modelsDir });
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());

  await sender.waitFor(() => sender.statuses.some((s) => s.deviceId === 'van-1' && s.online), 'the device announcing itself');
  const announced = sender.statuses.find((s) => s.deviceId === 'van-1' && s.online)!;
  t.same(announced.groups, ['vans']);
  t.same(announced.models.map((m) => [m.name, m.version]), [['scale', '1']], 'the status lists the serving models');
  t.same((await inferScale(device.url)).y, [2, 4, 6, 8], 'version 1 serves');

  const v2 = await writeScalePackage(dir, '2', 3, 256 * 1024);
  const manifest = await sender.prepare(v2, { chunkBytes: 16 * 1024 });
  t.ok(manifest.chunkCount >= 16, `${manifest.chunkCount} chunks`);
  await sender.publishManifest(topics.groupDeploy(PREFIX, 'vans'), manifest);
  await sender.waitProgress(manifest.deploymentId, ['accepted']);

  // Requests keep being answered by version 1 while the chunks trickle in.
  let serving = true;
  const answers: { status: number; y: number[] }[] = [];
  const load = (async () => {
    while (serving) {
      answers.push(await inferScale(device.url));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  await sender.sendChunks(manifest.transferId, { delayMs: 15 });
  const outcome = await sender.waitProgress(manifest.deploymentId, ['active', 'failed', 'rejected']);
  serving = false;
  await load;
  t.equal(outcome.state, 'active', `outcome: ${outcome.state} ${outcome.reason ?? ''}`);
  t.ok(answers.length >= 10, `${answers.length} requests during the transfer`);
  t.ok(answers.every((a) => a.status === 200), 'every request during the transfer succeeded');
  t.ok(answers.every((a) => [2, 3].includes(a.y[0]!)), 'each answer came from version 1 or 2');
  t.same((await inferScale(device.url)).y, [3, 6, 9, 12], 'version 2 serves');

  const states = sender.progress.filter((p) => p.deploymentId === manifest.deploymentId).map((p) => p.state);
  const firstOf = (s: string) => states.indexOf(s as never);
  t.ok(firstOf('accepted') < firstOf('downloading') && firstOf('downloading') < firstOf('verifying')
    && firstOf('verifying') < firstOf('installing') && firstOf('installing') < firstOf('active'), `states in order: ${[...new Set(states)].join(' → ')}`);
  const downloading = sender.progress.filter((p) => p.deploymentId === manifest.deploymentId && p.state === 'downloading');
  t.ok(downloading.length >= 5, `${downloading.length} downloading reports (every 5 %)`);
  t.equal(outcome.receivedBytes, manifest.totalBytes);
  await sender.waitFor(() => sender.statuses.some((s) => s.models.some((m) => m.name === 'scale' && m.version === '2')), 'a status naming version 2');

  const rollbackId = crypto.randomUUID();
  await sender.command('van-1', { protocol: 1, kind: 'rollback', commandId: rollbackId, model: 'scale', ...commandTimes() });
  const rolledBack = await sender.waitProgress(rollbackId, ['rolled-back', 'failed']);
  t.equal(rolledBack.state, 'rolled-back', rolledBack.reason ?? '');
  t.equal(rolledBack.model.version, '1');
  t.same((await inferScale(device.url)).y, [2, 4, 6, 8], 'version 1 serves again');

  const replay = await sender.prepare(v2, { edit: (m) => { m.deploymentId = manifest.deploymentId; } });
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'van-1'), replay);
  const refused = await sender.waitProgress(manifest.deploymentId, ['duplicate']);
  t.equal(refused.code, 'EDGERUN_ERR_FLEET_REJECTED');
  t.match(refused.reason, /replayed/);
  t.same((await inferScale(device.url)).y, [2, 4, 6, 8], 'a replayed manifest did not bring version 2 back');

  device.signal('SIGTERM');
  t.equal((await device.exited).code, 0);
  await sender.waitFor(() => sender.statuses.at(-1)?.online === false, 'the offline status');
  t.equal((sender.statuses.at(-1) as DeviceStatus).deviceId, 'van-1');
});
