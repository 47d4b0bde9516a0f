/** TransferReceiver on its own: staging files, the persisted bitmap, resume checks, assembly against the signed hashes. */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { decodeChunkFrame, encodeChunkFrame } from '../../daemon/fleet/chunk-frame.ts';
import type { DeploymentManifest } from '../../daemon/fleet/protocol.ts';
import { TransferReceiver } from '../../daemon/fleet/transfer-receiver.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { tempDir } from './helpers/agent-harness.ts';

const CHUNK = 1000;
const manifestBytes = Buffer.from(JSON.stringify({ name: 'm', version: '1' }));
const model = Buffer.alloc(4500, 0).map((_, i) => (i * 7) % 251);
const stream = Buffer.concat([manifestBytes, model]);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function manifest(overrides: Partial<DeploymentManifest> = {}): DeploymentManifest {
  return {
    protocol: 1, kind: 'deploy', deploymentId: 'd1', transferId: 't1', model: { name: 'm', version: '1' },
    files: [{ path: 'manifest.json', sha256: sha(manifestBytes), bytes: manifestBytes.length }, { path: 'sub/model.onnx', sha256: sha(model), bytes: model.length }],
    totalBytes: stream.length, chunkBytes: CHUNK, chunkCount: Math.ceil(stream.length / CHUNK),
    issuedAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 60_000).toISOString(), ...overrides,
  };
}

const frame = (m: DeploymentManifest, index: number, data = stream.subarray(index * CHUNK, (index + 1) * CHUNK)) =>
  decodeChunkFrame(encodeChunkFrame(index, m.chunkCount, data), `p/transfers/${m.transferId}/chunk/${index}`);

t.test('chunks in any order, duplicates ignored, missing ranges listed, and the package assembled with its files verified', async (t) => {
  const dir = await tempDir(t, 'receiver');
  const m = manifest();
  const receiver = await TransferReceiver.open(dir, m);
  t.same(receiver.missingRanges(), [[0, m.chunkCount - 1]]);
  for (const index of [4, 0, 2]) t.equal(receiver.receive(frame(m, index)), 'stored');
  t.equal(receiver.receive(frame(m, 2)), 'duplicate');
  t.equal(m.chunkCount, 5);
  t.same(receiver.missingRanges(), [[1, 1], [3, 3]]);
  t.same(receiver.missingRanges(1), [[1, 1]], 'capped at the requested number of ranges');
  await expectEdgerunError(t, () => receiver.receive(frame(m, 1, stream.subarray(CHUNK, 2 * CHUNK - 3))), 'EDGERUN_ERR_FLEET_TRANSFER', /chunk 1 holds 997 bytes, expected 1000/);
  for (let index = 0; index < m.chunkCount; index++) receiver.receive(frame(m, index));
  t.ok(receiver.complete);
  t.equal(receiver.receivedBytes, stream.length);
  const packageDir = await receiver.assemble();
  t.same(await fs.readFile(path.join(packageDir, 'sub', 'model.onnx')), model);
  t.same(await fs.readFile(path.join(packageDir, 'manifest.json')), manifestBytes);
  receiver.close();
});

t.test('reopening keeps stored chunks whose bytes still match and forgets the others', async (t) => {
  const dir = await tempDir(t, 'receiver');
  const m = manifest();
  const first = await TransferReceiver.open(dir, m);
  for (const index of [0, 1, 2, 3]) first.receive(frame(m, index));
  first.close();
  // A power loss that kept chunk 2's bitmap byte but not its data.
  const data = await fs.open(path.join(dir, 't1', 'data.bin'), 'r+');
  await data.write(Buffer.alloc(10, 0xee), 0, 10, 2 * CHUNK + 5);
  await data.close();
  const reopened = await TransferReceiver.open(dir, m);
  t.equal(reopened.receivedChunks, 3);
  t.same(reopened.missingRanges(), [[2, 2], [4, m.chunkCount - 1]]);
  reopened.close();
});

t.test('a file whose bytes do not match the signed manifest fails the assembly and leaves no package folder', async (t) => {
  const dir = await tempDir(t, 'receiver');
  const m = manifest({ transferId: 't2' });
  m.files[1]!.sha256 = sha(Buffer.from('something else'));
  const receiver = await TransferReceiver.open(dir, m);
  for (let index = 0; index < m.chunkCount; index++) receiver.receive(frame(m, index));
  await expectEdgerunError(t, receiver.assemble(), 'EDGERUN_ERR_FLEET_TRANSFER', /file sub\/model\.onnx does not match the signed manifest/);
  t.same((await fs.readdir(path.join(dir, 't2'))).sort(), ['chunks.bitmap', 'chunks.sha256', 'data.bin']);
  receiver.close();
});
