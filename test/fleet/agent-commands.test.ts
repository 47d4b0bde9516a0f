/**
 * Key rotation by signed trust-keys commands (persisted across restarts), and the operator's real publisher
 * (`edgerun publish`'s publishPackage) driving the device agent end to end.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import t from 'tap';
import { publishPackage } from '../../daemon/fleet/publisher.ts';
import { openPackageSource } from '../../daemon/fleet/publisher-package.ts';
import { topics } from '../../daemon/fleet/protocol.ts';
import type { SigningKey } from '../../daemon/fleet/signing.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { commandTimes, inferScale, makeKey, PREFIX, startDevice, tempDir, TestSender, writeScalePackage } from './helpers/agent-harness.ts';

t.test('a signed trust-keys command rotates the device to a new key, and the rotation survives a restart', async (t) => {
  const dir = await tempDir(t, 'fleet-rotation');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key: oldKey, pubFile: oldPub } = await makeKey(dir, 'old');
  const { key: newKey, pubFile: newPub } = await makeKey(dir, 'new');
  const options = { broker, dir, deviceId: 'gw-1', trust: [oldPub] };
  let device = await startDevice(options);
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  const sender = await TestSender.connect(broker, oldKey);
  t.teardown(() => sender.close());

  const publish = async (version: string, factor: number, key: SigningKey) => {
    const source = await openPackageSource(await writeScalePackage(dir, version, factor));
    try {
      return await publishPackage({
        client: sender.client, prefix: PREFIX, key, source, target: { kind: 'device', deviceId: 'gw-1' },
        timeoutMs: 30_000, expiresInMs: 600_000, chunkBytes: 4096, startGraceMs: 5_000,
      });
    } finally {
      await source.close();
    }
  };

  const first = await publish('1', 2, oldKey);
  t.equal(first.succeeded, 1, 'the publisher saw the device succeed');
  t.same((await inferScale(device.url)).y, [2, 4, 6, 8]);

  const newPem = await fs.readFile(newPub, 'utf8');
  await sender.command('gw-1', { protocol: 1, kind: 'trust-keys', commandId: crypto.randomUUID(), add: [newPem], remove: [oldKey.keyId], ...commandTimes() });
  await sender.waitFor(() => device.logged(/trust keys changed by command/).length === 1, 'the rotation');

  const manifest = await sender.prepare(await writeScalePackage(dir, '2', 3));
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'gw-1'), manifest, oldKey);
  const refused = await sender.waitProgress(manifest.deploymentId, ['rejected']);
  t.equal(refused.code, 'EDGERUN_ERR_FLEET_SIGNATURE', 'the rotated-out key is no longer trusted');

  device.signal('SIGTERM');
  await device.exited;
  device = await startDevice(options);
  const second = await publish('3', 4, newKey);
  t.equal(second.succeeded, 1, 'after a restart with only the old key configured, the new key is still trusted');
  t.same((await inferScale(device.url)).y, [4, 8, 12, 16]);
  t.equal(second.sender.resentBytes, 0, 'the publisher sent nothing twice');

  await sender.command('gw-1', { protocol: 1, kind: 'trust-keys', commandId: crypto.randomUUID(), add: [], remove: [newKey.keyId], ...commandTimes() }, newKey);
  await sender.waitFor(() => device.logged(/refused a trust-keys command/).length === 1, 'the refusal');
  t.match(String(device.logged(/refused a trust-keys command/)[0]!.reason), /would leave this device trusting no key/);
});
