/**
 * The chunk stream paced on device acknowledgements (docs/PROTOCOL.md, "Pacing"): the pacer's rules, the
 * TransferAck validator, and a broker killed with SIGKILL mid-transfer re-sending only about the lead.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { parseTransferAck } from '../../daemon/fleet/messages.ts';
import { connectOperator } from '../../daemon/fleet/publisher-broker.ts';
import { openPackageSource } from '../../daemon/fleet/publisher-package.ts';
import { TransferPacer } from '../../daemon/fleet/publisher-pacing.ts';
import { publishPackage } from '../../daemon/fleet/publisher.ts';
import { ackIntervalChunks, DEFAULT_TOPIC_PREFIX, senderLeadChunks, topics } from '../../daemon/fleet/protocol.ts';
import { generateKeyPair, readSigningKey } from '../../daemon/fleet/signing.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { startBroker } from '../helpers/mqtt-broker.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { AgentDevice } from './helpers/in-process-agents.ts';

const MiB = 1024 * 1024;

t.test('the lead is 2 % of the transfer, at least 192 KiB and two acknowledgement intervals, at most 16 MiB', async (t) => {
  const shape = (totalBytes: number, chunkBytes: number) => ({ totalBytes, chunkBytes, chunkCount: Math.ceil(totalBytes / chunkBytes) });
  t.equal(senderLeadChunks(shape(10e6, 128 * 1024)), 2, '10 MB in 128 KiB chunks: 200 kB → 2 chunks');
  t.equal(senderLeadChunks(shape(50e6, 128 * 1024)), 8, '50 MB: 1 MB → 8 chunks');
  t.equal(senderLeadChunks(shape(1e6, 16 * 1024)), 12, 'a small package still gets 192 KiB');
  t.equal(senderLeadChunks(shape(10e9, 128 * 1024)), 128, '10 GB: capped at 16 MiB');
  t.equal(ackIntervalChunks(shape(10e6, 128 * 1024)), 1);
  t.equal(ackIntervalChunks(shape(10e9, 128 * 1024)), 8, 'at least every 1 MiB');
  for (const [total, chunk] of [[3e6, 1024], [5e8, 4096], [7e9, 64 * 1024], [2e6, 16 * MiB]] as const) {
    t.ok(senderLeadChunks(shape(total, chunk)) >= 2 * ackIntervalChunks(shape(total, chunk)), `${total} B in ${chunk} B chunks: lead ≥ 2 ack intervals`);
  }
});

t.test('the pacer limits the stream to the slowest acknowledging device plus the lead', async (t) => {
  const limits: number[] = [];
  const pacer = new TransferPacer({ totalBytes: 100 * 16384, chunkBytes: 16384, chunkCount: 100 }, (limit) => limits.push(limit), 1000);
  const lead = pacer.leadChunks;
  t.equal(pacer.limit(), Number.POSITIVE_INFINITY, 'nobody acknowledged: no limit');
  pacer.acknowledged('a', 0, 0);
  pacer.acknowledged('b', 5, 0);
  t.equal(pacer.limit(), lead, 'the slowest device (a, at 0) sets the limit');
  pacer.acknowledged('a', 7, 10);
  t.equal(pacer.limit(), 5 + lead, 'now b is the slowest');
  pacer.acknowledged('a', 3, 20);
  t.equal(pacer.limit(), 5 + lead, 'an older acknowledgement arriving late changes nothing');
  t.same(pacer.dropStalled(500), [], 'b has not moved for 500 ms only');
  t.same(pacer.dropStalled(1000), ['b'], 'b has not moved for the stall time while it holds the stream back');
  t.equal(pacer.limit(), 7 + lead);
  pacer.acknowledged('b', 5, 1100);
  t.equal(pacer.limit(), 7 + lead, 'a stalled device does not come back without progress');
  pacer.acknowledged('b', 6, 1200);
  t.equal(pacer.limit(), 6 + lead, 'it comes back once it moves');
  t.ok(pacer.drop('b', 'offline'));
  t.equal(pacer.limit(), 7 + lead, 'an offline device is not waited on');
  pacer.acknowledged('b', 6, 1300);
  t.equal(pacer.limit(), 6 + lead, 'its first acknowledgement after the reconnect brings it back');
  pacer.drop('a', 'finished');
  pacer.drop('b', 'finished');
  pacer.acknowledged('a', 8, 1400);
  t.equal(pacer.limit(), Number.POSITIVE_INFINITY, 'finished devices are never waited on again');
  t.equal(limits.at(-1), Number.POSITIVE_INFINITY, 'every change was passed on');
});

t.test('a TransferAck is validated field by field', async (t) => {
  const topic = 'edgerun/v1/transfers/x/ack';
  t.same(parseTransferAck({ protocol: 1, deviceId: 'd1', transferId: 'x', contiguousChunks: 3, receivedChunks: 5 }, topic),
    { protocol: 1, deviceId: 'd1', transferId: 'x', contiguousChunks: 3, receivedChunks: 5 });
  await expectEdgerunError(t, () => parseTransferAck({ protocol: 1, deviceId: 'd1', transferId: 'x', contiguousChunks: 6, receivedChunks: 5 }, topic),
    'EDGERUN_ERR_FLEET_PAYLOAD', /contiguousChunks is 6, outside \[0, 5\]/);
  await expectEdgerunError(t, () => parseTransferAck({ protocol: 1, deviceId: 'a/b', transferId: 'x', contiguousChunks: 0, receivedChunks: 0 }, topic),
    'EDGERUN_ERR_FLEET_PAYLOAD', /deviceId/);
  await expectEdgerunError(t, () => parseTransferAck({ protocol: 2, deviceId: 'd1', transferId: 'x', contiguousChunks: 0, receivedChunks: 0 }, topic),
    'EDGERUN_ERR_FLEET_PAYLOAD', /protocol/);
});

t.test('a broker killed with SIGKILL mid-transfer: the paced sender re-sends about its lead, not the rest of the package', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-pacing-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const keyPrefix = path.join(dir, 'operator');
  await generateKeyPair(keyPrefix);
  const model = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 4]).node('Relu', ['x'], ['y']).output('y', 'float32', [1, 4]).toBytes();
  // 10 MB: the smallest package whose 2 % lead is above the 192 KiB floor, so the lead is what bounds the loss.
  const pkgDir = path.join(dir, 'pkg');
  await writePackage(pkgDir, { name: 'paced', version: '1', model, extraFiles: { 'pad.bin': crypto.randomBytes(10_000_000) } });

  let killed: Promise<void> | null = null;
  let totalBytes = Number.POSITIVE_INFINITY;
  const device = await AgentDevice.start({
    brokerUrl: broker.url, mqttProtocolVersion: broker.protocolVersion, deviceId: 'paced-1', stateDir: path.join(dir, 'paced-1'),
    trustFiles: [`${keyPrefix}.pub`], chunkRequestTimeoutMs: 1000,
    onChunk: (d) => { if (d.deliveredBytes >= totalBytes / 2) killed ??= broker.restart({ hard: true, downMs: 500 }); },
  });
  t.teardown(() => device.stop());
  await device.connected();
  const client = await connectOperator(broker.url);
  t.teardown(() => client.endAsync());
  const source = await openPackageSource(pkgDir);
  t.teardown(() => source.close());
  totalBytes = source.totalBytes;
  const result = await publishPackage({
    client, prefix: DEFAULT_TOPIC_PREFIX, key: await readSigningKey(`${keyPrefix}.key`), source,
    target: { kind: 'device', deviceId: 'paced-1' }, timeoutMs: 120_000, expiresInMs: 3_600_000,
  });
  await killed;
  t.ok(killed, 'the broker was killed half-way');
  t.equal(result.devices[0]!.state, 'active', result.devices[0]!.reason ?? '');
  const resent = Math.max(0, result.sender.wireBytes - result.manifest.totalBytes);
  const percent = (100 * resent) / result.manifest.totalBytes;
  const lead = senderLeadChunks(result.manifest);
  t.comment(`broker SIGKILL at 50 % (${broker.kind}): re-sent ${resent} of ${result.manifest.totalBytes} bytes (${percent.toFixed(2)} %), lead ${lead} chunks`);
  // Lost: at most the lead; each lost chunk may cross the wire twice (mqtt.js's retransmission to a broker that
  // had not restored the device's subscription yet, then the device's request). The benchmark's target is ≤ 5 %.
  t.ok(resent <= 2 * lead * result.manifest.chunkBytes, `re-sent ${percent.toFixed(2)} % ≤ twice the lead (${((200 * lead * result.manifest.chunkBytes) / result.manifest.totalBytes).toFixed(1)} %)`);
});

t.test('a device that acknowledges once and then never moves holds the stream back only for the stall time', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-pacing-stall-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const broker = await startBroker();
  t.teardown(() => broker.close());
  const keyPrefix = path.join(dir, 'operator');
  await generateKeyPair(keyPrefix);
  const model = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 4]).node('Relu', ['x'], ['y']).output('y', 'float32', [1, 4]).toBytes();
  const pkgDir = path.join(dir, 'pkg');
  await writePackage(pkgDir, { name: 'stalled', version: '1', model, extraFiles: { 'pad.bin': crypto.randomBytes(1_000_000) } });
  const device = await AgentDevice.start({
    brokerUrl: broker.url, mqttProtocolVersion: broker.protocolVersion, deviceId: 'live-1', stateDir: path.join(dir, 'live-1'), trustFiles: [`${keyPrefix}.pub`],
  });
  t.teardown(() => device.stop());
  await device.connected();
  // A device that says it stands at chunk 0 and then hangs: it reads the transfer id from the live device's manifest.
  const ghost = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  t.teardown(() => ghost.endAsync());
  ghost.on('message', (_topic, payload) => {
    if (payload.length === 0) return;
    const { transferId } = JSON.parse(JSON.parse(payload.toString()).payload) as { transferId: string };
    const ack = { protocol: 1, deviceId: 'ghost-1', transferId, contiguousChunks: 0, receivedChunks: 0 };
    void ghost.publishAsync(topics.transferAck(DEFAULT_TOPIC_PREFIX, transferId), JSON.stringify(ack), { qos: 1 });
  });
  await ghost.subscribeAsync(topics.deviceDeploy(DEFAULT_TOPIC_PREFIX, 'live-1'), { qos: 1 });

  const client = await connectOperator(broker.url);
  t.teardown(() => client.endAsync());
  const source = await openPackageSource(pkgDir);
  t.teardown(() => source.close());
  const stallMs = 1500;
  const result = await publishPackage({
    client, prefix: DEFAULT_TOPIC_PREFIX, key: await readSigningKey(`${keyPrefix}.key`), source, pacingStallMs: stallMs,
    target: { kind: 'device', deviceId: 'live-1' }, timeoutMs: 60_000, expiresInMs: 3_600_000,
  });
  t.equal(result.devices.find((d) => d.deviceId === 'live-1')?.state, 'active', 'the live device finished');
  t.notOk(result.timedOut);
  t.ok(result.elapsedMs >= stallMs, `the stream waited on the hung device for the stall time first (${result.elapsedMs} ms)`);
  t.equal(device.deliveredBytes, result.manifest.totalBytes, 'the live device got every chunk once');
});
