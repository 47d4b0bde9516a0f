/**
 * Chunk faults and interruptions against a real broker and a daemon process: duplicate, reordered, truncated,
 * shortened and bit-flipped chunks; a broker killed mid-transfer; the daemon killed with SIGKILL mid-transfer and
 * started again. Each ends with the new version serving the right answers, and the resumed transfers are
 * measured: how many data bytes the sender had to send twice.
 */
import path from 'node:path';
import t from 'tap';
import { topics } from '../../daemon/fleet/protocol.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { type ChunkFault, inferScale, makeKey, PREFIX, startDevice, tempDir, TestSender, writeScalePackage } from './helpers/agent-harness.ts';

const PAD = 384 * 1024;
const CHUNK = 16 * 1024;

t.test('duplicate, reordered, truncated, shortened and bit-flipped chunks: refused ones are asked for again and the package installs intact', async (t) => {
  const dir = await tempDir(t, 'fleet-chunk-faults');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const device = await startDevice({ broker, dir, deviceId: 'box-1', trust: [pubFile] });
  t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());

  const manifest = await sender.prepare(await writeScalePackage(dir, '5', 5, PAD), { chunkBytes: CHUNK });
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'box-1'), manifest);
  await sender.waitProgress(manifest.deploymentId, ['accepted']);
  const n = manifest.chunkCount;
  // Odd indices first (descending), then even ones: every chunk arrives out of order.
  const order = [...Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 1).reverse(), ...Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0)];
  const faults = new Map<number, ChunkFault>([[1, 'duplicate'], [3, 'truncate'], [5, 'bitflip'], [7, 'short'], [2, 'duplicate'], [n - 2, 'bitflip']]);
  await sender.sendChunks(manifest.transferId, { order, faults });

  const outcome = await sender.waitProgress(manifest.deploymentId, ['active', 'failed', 'rejected']);
  t.equal(outcome.state, 'active', outcome.reason ?? '');
  t.same((await inferScale(device.url)).y, [5, 10, 15, 20], 'the installed version computes x × 5');
  const refused = device.logged(/refused a chunk/);
  t.equal(refused.length, 4, 'the truncated, shortened and both bit-flipped chunks were refused');
  t.match(refused.map((l) => String(l.reason)).join('\n'), /does not match its sha256/);
  t.match(refused.map((l) => String(l.reason)).join('\n'), /chunk 7 holds 16377 bytes, expected 16384/);
  const stats = sender.sent.get(manifest.transferId)!;
  t.ok(stats.requests >= 1, `${stats.requests} chunk request(s)`);
  t.equal(stats.resentBytes, 4 * CHUNK, 'exactly the four refused chunks were sent again');
  const done = device.logged(/deployment active/)[0] as { counts: { duplicates: number; refused: number } };
  t.equal(done.counts.duplicates, 2, 'both duplicates were ignored');
  t.equal(done.counts.refused, 4);
});

for (const hard of [false, true]) {
  const how = hard ? 'killed (SIGKILL)' : 'restarted (SIGTERM)';
  t.test(`a broker ${how} mid-transfer: the transfer resumes after it is back`, async (t) => {
    const dir = await tempDir(t, 'fleet-broker-restart');
    const broker = await startBroker();
    t.teardown(() => broker.close());
    const { key, pubFile } = await makeKey(dir, 'operator');
    const device = await startDevice({ broker, dir, deviceId: 'box-2', trust: [pubFile] });
    t.teardown(async () => { device.signal('SIGKILL'); await device.exited; });
    const sender = await TestSender.connect(broker, key);
    t.teardown(() => sender.close());

    const manifest = await sender.prepare(await writeScalePackage(dir, '6', 6, PAD), { chunkBytes: CHUNK });
    await sender.publishManifest(topics.deviceDeploy(PREFIX, 'box-2'), manifest);
    await sender.waitProgress(manifest.deploymentId, ['accepted']);
    const half = Math.floor(manifest.chunkCount / 2);
    await sender.sendChunks(manifest.transferId, { limit: half });
    await sender.waitFor(() => sender.progress.some((p) => p.deploymentId === manifest.deploymentId && p.receivedChunks >= half - 2), 'half of the chunks stored');
    await broker.restart({ hard, downMs: 1500 });
    // The rest is published as soon as the broker is back, possibly before the device has reconnected.
    await sender.sendChunks(manifest.transferId, { order: Array.from({ length: manifest.chunkCount - half }, (_, i) => half + i) });

    const outcome = await sender.waitProgress(manifest.deploymentId, ['active', 'failed', 'rejected']);
    t.equal(outcome.state, 'active', outcome.reason ?? '');
    t.same((await inferScale(device.url)).y, [6, 12, 18, 24]);
    const stats = sender.sent.get(manifest.transferId)!;
    const percent = (100 * stats.resentBytes) / manifest.totalBytes;
    t.comment(`broker ${how} mid-transfer (${broker.kind}): re-sent ${stats.resentBytes} of ${manifest.totalBytes} bytes (${percent.toFixed(1)} %), ${stats.requests} request(s)`);
    // A broker that dies without saving loses what it held for the device (chunks queued since its last autosave).
    if (!hard) t.ok(percent <= 5, `re-sent ${percent.toFixed(1)} % ≤ 5 %`);
  });
}

t.test('the daemon killed with SIGKILL mid-transfer resumes from its persisted bitmap after a restart', async (t) => {
  const dir = await tempDir(t, 'fleet-daemon-kill');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const options = { broker, dir, deviceId: 'box-3', trust: [pubFile] };
  const first = await startDevice(options);
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());

  const manifest = await sender.prepare(await writeScalePackage(dir, '7', 7, PAD), { chunkBytes: CHUNK });
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'box-3'), manifest);
  await sender.waitProgress(manifest.deploymentId, ['accepted']);
  const sending = sender.sendChunks(manifest.transferId, { delayMs: 10 });
  await sender.waitFor(() => sender.progress.some((p) => p.deploymentId === manifest.deploymentId && p.receivedBytes >= manifest.totalBytes * 0.4), '40 % stored');
  first.signal('SIGKILL');
  await first.exited;
  const storedAtKill = Math.max(...sender.progress.filter((p) => p.deploymentId === manifest.deploymentId).map((p) => p.receivedChunks));
  await sending;

  const second = await startDevice(options);
  t.teardown(async () => { second.signal('SIGKILL'); await second.exited; });
  const outcome = await sender.waitProgress(manifest.deploymentId, ['active', 'failed', 'rejected']);
  t.equal(outcome.state, 'active', outcome.reason ?? '');
  t.same((await inferScale(second.url)).y, [7, 14, 21, 28]);
  const resumed = second.logged(/resuming a deployment/)[0] as { alreadyStored: number };
  t.ok(resumed.alreadyStored >= storedAtKill, `the restarted daemon kept ${resumed.alreadyStored} stored chunks (≥ ${storedAtKill} reported before the kill)`);
  const stats = sender.sent.get(manifest.transferId)!;
  const percent = (100 * stats.resentBytes) / manifest.totalBytes;
  t.comment(`daemon SIGKILL mid-transfer: re-sent ${stats.resentBytes} of ${manifest.totalBytes} bytes (${percent.toFixed(1)} %), ${stats.requests} request(s)`);
  t.ok(percent <= 5, `re-sent ${percent.toFixed(1)} % ≤ 5 %`);
});

t.test('the daemon killed with SIGKILL once every chunk is stored finishes the install after a restart', async (t) => {
  const dir = await tempDir(t, 'fleet-daemon-kill-install');
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const { key, pubFile } = await makeKey(dir, 'operator');
  const options = { broker, dir, deviceId: 'box-4', trust: [pubFile] };
  const first = await startDevice(options);
  const sender = await TestSender.connect(broker, key);
  t.teardown(() => sender.close());

  const manifest = await sender.prepare(await writeScalePackage(dir, '8', 8, PAD), { chunkBytes: CHUNK });
  await sender.publishManifest(topics.deviceDeploy(PREFIX, 'box-4'), manifest);
  await sender.waitProgress(manifest.deploymentId, ['accepted']);
  await sender.sendChunks(manifest.transferId);
  const reached = await sender.waitProgress(manifest.deploymentId, ['verifying', 'installing', 'active']);
  first.signal('SIGKILL');
  await first.exited;
  t.comment(`killed at or after '${reached.state}'`);

  const second = await startDevice(options);
  t.teardown(async () => { second.signal('SIGKILL'); await second.exited; });
  await sender.waitFor(() => sender.progress.filter((p) => p.deploymentId === manifest.deploymentId).at(-1)?.state === 'active', 'active after the restart');
  t.same((await inferScale(second.url)).y, [8, 16, 24, 32], 'the new version serves after the restart');
  t.equal(sender.sent.get(manifest.transferId)!.resentBytes, 0, 'nothing was sent twice');
});
