/**
 * A disk that fills up during a transfer, on a real file system: the daemon's state folder on a 3 MiB tmpfs
 * (mounting needs root; elsewhere the test is skipped — the up-front free-space check is covered by
 * faults-manifest.test.ts). The deployment passes the free-space check, then another writer fills the disk:
 * the transfer fails with ENOSPC named, nothing is installed, and the running version keeps serving.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { topics } from '../../daemon/fleet/protocol.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { inferScale, makeKey, PREFIX, startDevice, tempDir, TestSender, writeScalePackage } from './helpers/agent-harness.ts';

function tryMountTmpfs(dir: string, bytes: number): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

t.test('a disk filled during a transfer fails it with ENOSPC while the old version keeps serving', async (t) => {
  const dir = await tempDir(t, 'fleet-disk-full');
  const stateDir = path.join(dir, 'state');
  await fs.mkdir(stateDir);
  if (!tryMountTmpfs(stateDir, 3 * 1024 * 1024)) {
    t.plan(0, 'skipped: cannot mount a tmpfs here (needs root)');
    return;
  }
  t.teardown(() => { execFileSync('umount', ['-l', stateDir], { stdio: 'ignore' }); });
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const modelsDir = path.join(dir, 'models');
  await writeScalePackage(modelsDir, '1', 2);
  const device = await startDevice({ broker, dir, deviceId: 'edge-9', trust: [pubFile], modelsDir, env: { EDGERUN_FLEET_MIN_FREE_DISK_BYTES: '0' } });
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());

  const manifest = await sender.prepare(await writeScalePackage(dir, '2', 3, 600 * 1024), { chunkBytes: 16 * 1024 });
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'edge-9'), manifest);
  await sender.waitProgress(manifest.deploymentId, ['accepted']);
  await sender.sendChunks(manifest.transferId, { limit: 4 });
  await sender.waitProgress(manifest.deploymentId, ['downloading']);
  // Another writer takes all but a few KiB.
  const { bavail, bsize } = await fs.statfs(stateDir);
  await fs.writeFile(path.join(stateDir, 'filler'), Buffer.alloc(Math.max(0, bavail * bsize - 8 * 1024)));
  await sender.sendChunks(manifest.transferId);

  const outcome = await sender.waitProgress(manifest.deploymentId, ['failed', 'active']);
  t.equal(outcome.state, 'failed');
  t.equal(outcome.code, 'EDGERUN_ERR_FLEET_TRANSFER');
  t.match(outcome.reason, /the disk is full \(ENOSPC\)/);
  t.same((await inferScale(device.url)).y, [2, 4, 6, 8], 'version 1 keeps serving');
  t.same(await fs.readdir(path.join(stateDir, 'fleet', 'transfers')), [], 'the staging files are gone');
  t.same(await fs.readdir(path.join(stateDir, 'store', 'packages', 'scale')), ['1'], 'nothing was installed');
});
