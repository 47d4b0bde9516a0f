import t from 'tap';
import { decodeChunkFrame, encodeChunkFrame } from '../../daemon/fleet/chunk-frame.ts';
import {
  parseChunkRequest, parseDeploymentManifest, parseDeploymentProgress, parseDeviceStatus, parseEnvelope, parseFleetCommand,
  parseJsonPayload, parseTelemetryReport,
} from '../../daemon/fleet/messages.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const TOPIC = 'edgerun/v1/devices/d1/deploy';
const sha = 'a'.repeat(64);

function manifest(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    protocol: 1, kind: 'deploy', deploymentId: 'dep-1', transferId: 'tr-1', model: { name: 'm', version: '2' },
    files: [{ path: 'manifest.json', sha256: sha, bytes: 100 }, { path: 'model.onnx', sha256: sha, bytes: 250 }],
    totalBytes: 350, chunkBytes: 128, chunkCount: 3, issuedAt: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-02T00:00:00.000Z',
    ...overrides,
  };
}

t.test('a well-formed deployment manifest parses', async (t) => {
  const parsed = parseDeploymentManifest(manifest({ targets: ['cpu'], rolloutId: 'r1' }), TOPIC);
  t.equal(parsed.chunkCount, 3);
  t.same(parsed.targets, ['cpu']);
  t.equal(parsed.rolloutId, 'r1');
});

t.test('manifest errors name the topic and the field', async (t) => {
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ protocol: 2 }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /devices\/d1\/deploy: protocol/);
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ transferId: 'a/#' }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /transferId/);
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ model: { name: 'm', version: 'x' } }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /model\.version/);
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ totalBytes: 351 }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /totalBytes.*add up to 350/);
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ chunkCount: 4 }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /chunkCount/);
  await expectEdgerunError(t, () => parseDeploymentManifest(manifest({ expiresAt: 'soon' }), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /expiresAt/);
  const escaping = manifest({ files: [{ path: 'manifest.json', sha256: sha, bytes: 100 }, { path: '../x', sha256: sha, bytes: 250 }] });
  await expectEdgerunError(t, () => parseDeploymentManifest(escaping, TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /files\[1\]\.path/);
  const noManifestFirst = manifest({ files: [{ path: 'model.onnx', sha256: sha, bytes: 350 }] });
  await expectEdgerunError(t, () => parseDeploymentManifest(noManifestFirst, TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /must start with manifest\.json/);
  await expectEdgerunError(t, () => parseJsonPayload(Buffer.from('{nope'), TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /payload is not JSON/);
});

t.test('envelopes, commands and the observer messages parse or name the field', async (t) => {
  const envelope = parseEnvelope({ alg: 'ed25519', keyId: '0123456789abcdef', payload: '{}', signature: 'AAAA' }, TOPIC);
  t.equal(envelope.keyId, '0123456789abcdef');
  await expectEdgerunError(t, () => parseEnvelope({ alg: 'rsa', keyId: '0', payload: '{}', signature: 'A' }, TOPIC), 'EDGERUN_ERR_FLEET_PAYLOAD', /alg/);
  const dates = { issuedAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-02T00:00:00Z' };
  t.equal(parseFleetCommand({ protocol: 1, kind: 'rollback', commandId: 'c1', model: 'm', ...dates }, 'x').kind, 'rollback');
  t.equal(parseFleetCommand({ protocol: 1, kind: 'abort', commandId: 'c2', deploymentId: 'd', ...dates }, 'x').kind, 'abort');
  await expectEdgerunError(t, () => parseFleetCommand({ protocol: 1, kind: 'trust-keys', commandId: 'c3', add: ['nope'], remove: [], ...dates }, 'x'),
    'EDGERUN_ERR_FLEET_PAYLOAD', /add\[0\] must be a PEM/);
  await expectEdgerunError(t, () => parseFleetCommand({ protocol: 1, kind: 'reboot', commandId: 'c4', ...dates }, 'x'), 'EDGERUN_ERR_FLEET_PAYLOAD', /kind/);
  const status = parseDeviceStatus({ protocol: 1, deviceId: 'd1', groups: ['g'], online: true, agentVersion: '1', models: [{ name: 'm', version: null, state: 'x' }], at: dates.issuedAt }, 's');
  t.equal(status.models[0]!.version, null);
  const progress = { protocol: 1, deviceId: 'd1', deploymentId: 'dep', model: { name: 'm', version: '1' }, state: 'rejected', receivedChunks: 0, chunkCount: 1, receivedBytes: 0, totalBytes: 1, code: 'EDGERUN_ERR_FLEET_REJECTED', reason: 'why', at: dates.issuedAt };
  t.equal(parseDeploymentProgress(progress, 'p').code, 'EDGERUN_ERR_FLEET_REJECTED');
  await expectEdgerunError(t, () => parseDeploymentProgress({ ...progress, state: 'done' }, 'p'), 'EDGERUN_ERR_FLEET_PAYLOAD', /state/);
  t.same(parseChunkRequest({ protocol: 1, deviceId: 'd1', transferId: 't', ranges: [[0, 2], [5, 5]] }, 'r').ranges, [[0, 2], [5, 5]]);
  await expectEdgerunError(t, () => parseChunkRequest({ protocol: 1, deviceId: 'd1', transferId: 't', ranges: [[3, 2]] }, 'r'), 'EDGERUN_ERR_FLEET_PAYLOAD', /ranges\[0\]/);
  const telemetry = { protocol: 1, deviceId: 'd1', seq: 4, windowStart: dates.issuedAt, windowEnd: dates.expiresAt, models: [
    { name: 'm', version: '1', requests: 3, errors: 0, throughputPerSec: 1.5, latencyMs: { p50: 1, p95: null, p99: null }, powerWatts: null, energyPerInferenceJ: null, accuracy: 0.99 }] };
  t.equal(parseTelemetryReport(telemetry, 'tm').models[0]!.latencyMs.p50, 1);
  await expectEdgerunError(t, () => parseTelemetryReport({ ...telemetry, seq: -1 }, 'tm'), 'EDGERUN_ERR_FLEET_PAYLOAD', /seq/);
});

t.test('a chunk frame round-trips; truncated, bit-flipped and mislabelled frames are refused', async (t) => {
  const data = Buffer.from('hello chunk data');
  const frame = encodeChunkFrame(2, 5, data);
  const decoded = decodeChunkFrame(frame, 'p/transfers/t/chunk/2');
  t.equal(decoded.index, 2);
  t.equal(decoded.chunkCount, 5);
  t.same(Buffer.from(decoded.data), data);
  await expectEdgerunError(t, () => decodeChunkFrame(frame.subarray(0, frame.length - 3), 'p/transfers/t/chunk/2'), 'EDGERUN_ERR_FLEET_TRANSFER', /sha256/);
  const flipped = Buffer.from(frame);
  flipped[flipped.length - 1] ^= 0x01;
  await expectEdgerunError(t, () => decodeChunkFrame(flipped, 'p/transfers/t/chunk/2'), 'EDGERUN_ERR_FLEET_TRANSFER', /chunk 2 does not match/);
  await expectEdgerunError(t, () => decodeChunkFrame(frame, 'p/transfers/t/chunk/3'), 'EDGERUN_ERR_FLEET_TRANSFER', /topic names 3/);
  await expectEdgerunError(t, () => decodeChunkFrame(frame.subarray(0, 10), 'p/transfers/t/chunk/2'), 'EDGERUN_ERR_FLEET_TRANSFER', /header/);
  await expectEdgerunError(t, () => decodeChunkFrame(encodeChunkFrame(5, 5, data), 'p/transfers/t/chunk/5'), 'EDGERUN_ERR_FLEET_TRANSFER', /not below/);
});
