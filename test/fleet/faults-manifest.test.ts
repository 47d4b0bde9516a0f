/**
 * Manifests and commands a device must refuse, against a real broker and a daemon process: a wrong key, an
 * expired manifest, another target, a downgrade, a stale version, a replayed manifest (live and retained), a
 * package over the size cap or the free disk, an aborted transfer, a package that fails its accuracy gate, and
 * expired or untrusted commands. Each
 * refusal is reported on the progress topic with its code and reason, the serving version keeps answering, and
 * the store holds only complete, verified packages afterwards.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { MAX_CHUNK_BYTES } from '../../daemon/fleet/messages.ts';
import { type DeploymentManifest, topics } from '../../daemon/fleet/protocol.ts';
import { readPackage } from '../../daemon/package/read-package.ts';
import { scaleModel } from '../helpers/daemon-models.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { commandTimes, inferScale, makeKey, PREFIX, startDevice, tempDir, TestSender, writeScalePackage } from './helpers/agent-harness.ts';

/** Makes the manifest claim `extra` more bytes in its last file (the claim is signed; no chunk is ever sent). */
function claimMore(manifest: DeploymentManifest, extra: number): void {
  manifest.files.at(-1)!.bytes += extra;
  manifest.totalBytes += extra;
  manifest.chunkBytes = MAX_CHUNK_BYTES;
  manifest.chunkCount = Math.ceil(manifest.totalBytes / manifest.chunkBytes);
}

t.test('refused manifests and commands are reported with code and reason while the old version keeps serving', async (t) => {
  const dir = await tempDir(t, 'fleet-manifest-faults');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const { key: stranger } = await makeKey(dir, 'stranger');
  const modelsDir = path.join(dir, 'models');
  await writeScalePackage(modelsDir, '1', 2);
  const options = {
    broker, dir, deviceId: 'cam-1', trust: [pubFile], modelsDir,
    env: { EDGERUN_FLEET_MAX_PACKAGE_BYTES: String(1024 ** 4) },
  };
  let device = await startDevice(options);
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());
  const deployTopic = topics.deviceDeploy(PREFIX, 'cam-1');
  const serves = async (factor: number, what: string) => t.same((await inferScale(device.url)).y, [1, 2, 3, 4].map((x) => x * factor), what);

  const refuse = async (label: string, packageDir: string, edit: (m: DeploymentManifest) => void, code: string, reason: RegExp, signer = key) => {
    const manifest = await sender.prepare(packageDir, { edit });
    await sender.publishManifest(deployTopic, manifest, signer);
    const progress = await sender.waitProgress(manifest.deploymentId, ['rejected', 'accepted', 'active', 'failed']);
    t.equal(progress.state, 'rejected', `${label}: rejected`);
    t.equal(progress.code, code, `${label}: ${code}`);
    t.match(progress.reason, reason, `${label}: ${progress.reason}`);
    return manifest;
  };
  const deploy = async (packageDir: string) => {
    const manifest = await sender.prepare(packageDir);
    await sender.publishManifest(deployTopic, manifest);
    await sender.waitProgress(manifest.deploymentId, ['accepted']);
    await sender.sendChunks(manifest.transferId);
    const outcome = await sender.waitProgress(manifest.deploymentId, ['active', 'failed', 'rejected']);
    t.equal(outcome.state, 'active', `${manifest.model.version}: ${outcome.reason ?? 'active'}`);
    return manifest;
  };

  await serves(2, 'version 1 serves from the models folder');
  const v2 = await writeScalePackage(dir, '2', 3);
  await refuse('wrong key', v2, () => undefined, 'EDGERUN_ERR_FLEET_SIGNATURE', /which this device does not trust/, stranger);
  await refuse('expired', v2, (m) => { m.issuedAt = new Date(Date.now() - 7_200_000).toISOString(); m.expiresAt = new Date(Date.now() - 3_600_000).toISOString(); },
    'EDGERUN_ERR_FLEET_REJECTED', /expired at/);
  await refuse('other target', v2, (m) => { m.targets = ['jetson-orin-nano']; }, 'EDGERUN_ERR_FLEET_REJECTED', /for targets jetson-orin-nano; this device declares no target/);
  await refuse('over the size cap', v2, (m) => claimMore(m, 2 * 1024 ** 4), 'EDGERUN_ERR_FLEET_REJECTED', /above fleet\.maxPackageBytes/);
  const free = (await fs.statfs(dir)).bavail * (await fs.statfs(dir)).bsize;
  await refuse('disk full', v2, (m) => claimMore(m, free), 'EDGERUN_ERR_FLEET_REJECTED', /disk full: \d+ bytes free/);
  await refuse('downgrade below the serving version', await writeScalePackage(dir, '0.9', 9), () => undefined, 'EDGERUN_ERR_FLEET_REJECTED',
    /downgrade: version 0\.9 is not above 1, the version serving now/);
  await serves(2, 'version 1 still serves after six refusals');

  const deployed2 = await deploy(v2);
  await serves(3, 'version 2 serves');
  await deploy(await writeScalePackage(dir, '3', 4));
  await serves(4, 'version 3 serves');
  await refuse('downgrade below the floor', v2, () => undefined, 'EDGERUN_ERR_FLEET_REJECTED', /downgrade: version 2 is not above 3, the highest version of scale that was active here/);
  await refuse('stale (same version, new deployment)', path.join(dir, 'scale-3'), () => undefined,
    'EDGERUN_ERR_FLEET_REJECTED', /stale: version 3 is not above 3/);

  // The exact signed manifest of version 2, published again (retained) by someone replaying it.
  const replayCount = () => sender.progress.filter((p) => p.deploymentId === deployed2.deploymentId && p.state === 'duplicate').length;
  await sender.publishManifest(deployTopic, deployed2);
  const replayed = await sender.waitProgress(deployed2.deploymentId, ['duplicate']);
  t.equal(replayed.code, 'EDGERUN_ERR_FLEET_REJECTED');
  t.match(replayed.reason, /replayed: deployment .* was processed before \(outcome: active\)/);
  await serves(4, 'the replayed manifest did not bring version 2 back');

  // Aborted mid-transfer: nothing installed, the staging files go.
  const v4 = await sender.prepare(await writeScalePackage(dir, '4', 5, 128 * 1024));
  await sender.publishManifest(deployTopic, v4);
  await sender.waitProgress(v4.deploymentId, ['accepted']);
  await sender.sendChunks(v4.transferId, { limit: 3 });
  await sender.waitProgress(v4.deploymentId, ['downloading']);
  await sender.command('cam-1', { protocol: 1, kind: 'abort', commandId: crypto.randomUUID(), deploymentId: v4.deploymentId, ...commandTimes() });
  const aborted = await sender.waitProgress(v4.deploymentId, ['aborted']);
  t.match(aborted.reason, /aborted by command/);
  t.same(await fs.readdir(path.join(dir, 'state', 'fleet', 'transfers')), [], 'the aborted transfer left no staging files');

  // An abort that arrives before its deployment: the manifest is refused when it comes.
  const early = await sender.prepare(path.join(dir, 'scale-4'));
  await sender.command('cam-1', { protocol: 1, kind: 'abort', commandId: crypto.randomUUID(), deploymentId: early.deploymentId, ...commandTimes() });
  await sender.waitFor(() => device.logged(/recorded an abort for a deployment not seen yet/).length === 1, 'the early abort');
  await sender.publishManifest(deployTopic, early);
  t.match((await sender.waitProgress(early.deploymentId, ['duplicate', 'accepted'])).reason, /outcome: aborted/);

  // A package that fails its accuracy gate: installed, never swapped in.
  const badGate = path.join(dir, 'scale-5');
  await writePackage(badGate, {
    name: 'scale', version: '5', model: scaleModel(6),
    evalInputs: [{ x: { dtype: 'float32', dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) } }],
    referenceOutputs: [{ y: { dtype: 'float32', dims: [1, 4], data: Float32Array.from([0, 0, 0, 0]) } }],
  });
  const gated = await sender.prepare(badGate);
  await sender.publishManifest(deployTopic, gated);
  await sender.waitProgress(gated.deploymentId, ['accepted']);
  await sender.sendChunks(gated.transferId);
  const gateFailure = await sender.waitProgress(gated.deploymentId, ['active', 'failed']);
  t.equal(gateFailure.state, 'failed');
  t.equal(gateFailure.code, 'EDGERUN_ERR_GATE_FAILED');
  t.match(gateFailure.reason, /accuracy gate failed/);
  await serves(4, 'version 3 still serves after version 5 failed its gate');

  // Commands: an expired rollback and one signed by a stranger change nothing.
  const expiredRollback = crypto.randomUUID();
  await sender.command('cam-1', { protocol: 1, kind: 'rollback', commandId: expiredRollback, model: 'scale', issuedAt: new Date(Date.now() - 7_200_000).toISOString(), expiresAt: new Date(Date.now() - 3_600_000).toISOString() });
  t.match((await sender.waitProgress(expiredRollback, ['rejected'])).reason, /expired at/);
  await sender.command('cam-1', { protocol: 1, kind: 'rollback', commandId: crypto.randomUUID(), model: 'scale', ...commandTimes() }, stranger);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await serves(4, 'version 3 still serves after an expired and an untrusted rollback');

  // After a restart the retained manifest of version 2 (still on the deploy topic) is ignored without a word.
  device.signal('SIGTERM');
  await device.exited;
  const before = replayCount();
  device = await startDevice(options);
  await sender.waitFor(() => sender.statuses.filter((s) => s.deviceId === 'cam-1' && s.online).length >= 2, 'the device back online');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await serves(4, 'version 3 serves after the restart with the old manifest retained');
  t.equal(replayCount(), before, 'the retained replay was not reported again');

  // 0 corrupt installs: every package in the store verifies, and only versions that passed are there.
  const storeRoot = path.join(dir, 'state', 'store', 'packages', 'scale');
  const versions = (await fs.readdir(storeRoot)).sort();
  t.same(versions, ['1', '2', '3', '5'], 'the store holds versions 1, 2, 3 and the gated-out 5, nothing of the refused or aborted ones');
  const pointer = JSON.parse(await fs.readFile(path.join(dir, 'state', 'store', 'active', 'scale'), 'utf8')) as { version: string };
  t.equal(pointer.version, '3', 'the store points at version 3');
  for (const version of versions) await t.resolves(readPackage(path.join(storeRoot, version)), `store version ${version} verifies`);
});
