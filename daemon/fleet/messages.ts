/**
 * Validators for fleet messages (daemon/fleet/protocol.ts): each turns unknown JSON (or MQTT payload bytes) into a
 * protocol type or throws EDGERUN_ERR_FLEET_PAYLOAD naming the topic and the field. Both the device agent and the
 * operator commands read every payload through here; nothing trusts a message's shape before this.
 */
import { EdgerunError } from '../errors.ts';
import { MANIFEST_FILE, relativePathProblem } from '../package/manifest.ts';
import { isValidModelName, isValidVersion } from '../package/versions.ts';
import {
  FLEET_NAME_PATTERN, PROTOCOL_VERSION,
  type ChunkRequest, type DeploymentFile, type DeploymentManifest, type DeploymentProgress, type DeploymentState,
  type DeviceModelState, type DeviceStatus, type FleetCommand, type SignedEnvelope, type TelemetryReport, type TransferAck,
} from './protocol.ts';

/** Caps before anything is allocated from a message's claims. */
export const MAX_MANIFEST_FILES = 10_000;
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;
export const MAX_CHUNK_COUNT = 1_000_000;
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const MAX_STRING = 1024;
const MAX_LIST = 1024;

export const DEPLOYMENT_STATES: readonly DeploymentState[] = [
  'accepted', 'downloading', 'verifying', 'installing', 'active', 'rejected', 'failed', 'rolled-back', 'aborted', 'duplicate',
];

function payloadError(topic: string, field: string, reason: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_FLEET_PAYLOAD', `${topic}: ${field} ${reason}`, { topic, field });
}

/** Reads one JSON object from an MQTT payload (bytes or text). */
export function parseJsonPayload(payload: Uint8Array | string, topic: string): Record<string, unknown> {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_MESSAGE_BYTES) throw payloadError(topic, 'payload', `is ${size} bytes, above the ${MAX_MESSAGE_BYTES}-byte cap`);
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload).toString('utf8'));
  } catch {
    throw payloadError(topic, 'payload', 'is not JSON');
  }
  return objectAt(value, topic, 'payload');
}

/** Field readers: each names `field` (a dotted path) in its error. */
class Reader {
  constructor(readonly topic: string, readonly object: Record<string, unknown>, readonly prefix: string) {}

  private fieldPath(key: string): string { return this.prefix ? `${this.prefix}.${key}` : key; }

  error(key: string, reason: string): EdgerunError { return payloadError(this.topic, this.fieldPath(key), reason); }

  has(key: string): boolean { return this.object[key] !== undefined; }

  string(key: string, maxLength = MAX_STRING): string {
    const value = this.object[key];
    if (typeof value !== 'string' || value.length === 0) throw this.error(key, 'must be a non-empty string');
    if (value.length > maxLength) throw this.error(key, `is longer than ${maxLength} characters`);
    return value;
  }

  optionalString(key: string, maxLength = MAX_STRING): string | undefined {
    return this.has(key) ? this.string(key, maxLength) : undefined;
  }

  fleetName(key: string): string {
    const value = this.string(key, 128);
    if (!FLEET_NAME_PATTERN.test(value)) throw this.error(key, `"${value}" is not a valid name (${FLEET_NAME_PATTERN.source})`);
    return value;
  }

  optionalName(key: string): string | undefined { return this.has(key) ? this.fleetName(key) : undefined; }

  integer(key: string, min: number, max: number): number {
    const value = this.object[key];
    if (typeof value !== 'number' || !Number.isInteger(value)) throw this.error(key, 'must be an integer');
    if (value < min || value > max) throw this.error(key, `is ${value}, outside [${min}, ${max}]`);
    return value;
  }

  number(key: string): number {
    const value = this.object[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) throw this.error(key, 'must be a finite number');
    return value;
  }

  nullableNumber(key: string): number | null {
    return this.object[key] === null ? null : this.number(key);
  }

  boolean(key: string): boolean {
    const value = this.object[key];
    if (typeof value !== 'boolean') throw this.error(key, 'must be true or false');
    return value;
  }

  date(key: string): string {
    const value = this.string(key, 64);
    if (!/^\d{4}-\d\d-\d\dT/.test(value) || Number.isNaN(Date.parse(value))) throw this.error(key, `"${value}" is not an ISO 8601 date-time`);
    return value;
  }

  literal<T extends string | number>(key: string, allowed: readonly T[]): T {
    const value = this.object[key];
    if (!allowed.includes(value as T)) throw this.error(key, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`);
    return value as T;
  }

  child(key: string): Reader {
    return new Reader(this.topic, objectAt(this.object[key], this.topic, this.fieldPath(key)), this.fieldPath(key));
  }

  array(key: string, maxItems = MAX_LIST): unknown[] {
    const value = this.object[key];
    if (!Array.isArray(value)) throw this.error(key, 'must be a list');
    if (value.length > maxItems) throw this.error(key, `has ${value.length} items, above the cap of ${maxItems}`);
    return value;
  }

  objects(key: string, maxItems = MAX_LIST): Reader[] {
    return this.array(key, maxItems).map((item, i) => new Reader(this.topic, objectAt(item, this.topic, `${this.fieldPath(key)}[${i}]`), `${this.fieldPath(key)}[${i}]`));
  }

  strings(key: string, check?: (value: string) => string | undefined): string[] {
    return this.array(key).map((item, i) => {
      if (typeof item !== 'string' || item.length === 0 || item.length > MAX_STRING) throw this.error(`${key}[${i}]`, 'must be a non-empty string');
      const problem = check?.(item);
      if (problem) throw this.error(`${key}[${i}]`, problem);
      return item;
    });
  }

  protocol(): 1 {
    const value = this.object.protocol;
    if (value !== PROTOCOL_VERSION) throw this.error('protocol', `is ${JSON.stringify(value)}; this edgerun speaks protocol ${PROTOCOL_VERSION}`);
    return PROTOCOL_VERSION;
  }
}

function objectAt(value: unknown, topic: string, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw payloadError(topic, field, 'must be a JSON object');
  return value as Record<string, unknown>;
}

function reader(value: unknown, topic: string): Reader {
  return new Reader(topic, objectAt(value, topic, 'payload'), '');
}

function modelRef(r: Reader, key: string): { name: string; version: string } {
  const model = r.child(key);
  const name = model.string('name', 128);
  if (!isValidModelName(name)) throw model.error('name', `"${name}" is not a valid model name`);
  const version = model.string('version', 64);
  if (!isValidVersion(version)) throw model.error('version', `"${version}" is not a dotted numeric version`);
  return { name, version };
}

export function parseEnvelope(value: unknown, topic: string): SignedEnvelope {
  const r = reader(value, topic);
  r.literal('alg', ['ed25519'] as const);
  const keyId = r.string('keyId', 16);
  if (!/^[0-9a-f]{16}$/.test(keyId)) throw r.error('keyId', 'must be 16 lowercase hex digits');
  const payload = r.string('payload', MAX_MESSAGE_BYTES);
  const signature = r.string('signature', 128);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) throw r.error('signature', 'must be base64');
  return { alg: 'ed25519', keyId, payload, signature };
}

function deploymentFile(r: Reader): DeploymentFile {
  const path = r.string('path');
  const problem = relativePathProblem(path);
  if (problem) throw r.error('path', `"${path}" ${problem}`);
  const sha256 = r.string('sha256', 64);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw r.error('sha256', 'must be 64 lowercase hex digits');
  return { path, sha256, bytes: r.integer('bytes', 0, Number.MAX_SAFE_INTEGER) };
}

export function parseDeploymentManifest(value: unknown, topic: string): DeploymentManifest {
  const r = reader(value, topic);
  r.protocol();
  r.literal('kind', ['deploy'] as const);
  const deploymentId = r.fleetName('deploymentId');
  const transferId = r.fleetName('transferId');
  const model = modelRef(r, 'model');
  const files = r.objects('files', MAX_MANIFEST_FILES).map(deploymentFile);
  if (files.length === 0 || files[0]!.path !== MANIFEST_FILE) throw r.error('files', `must start with ${MANIFEST_FILE}`);
  const seen = new Set<string>();
  for (const file of files) {
    const key = file.path.toLowerCase();
    if (seen.has(key)) throw r.error('files', `lists "${file.path}" twice (paths compare without letter case)`);
    seen.add(key);
  }
  const totalBytes = r.integer('totalBytes', 1, Number.MAX_SAFE_INTEGER);
  const sum = files.reduce((total, file) => total + file.bytes, 0);
  if (sum !== totalBytes) throw r.error('totalBytes', `is ${totalBytes} but the files add up to ${sum}`);
  const chunkBytes = r.integer('chunkBytes', 1, MAX_CHUNK_BYTES);
  const chunkCount = r.integer('chunkCount', 1, MAX_CHUNK_COUNT);
  const expected = Math.ceil(totalBytes / chunkBytes);
  if (chunkCount !== expected) throw r.error('chunkCount', `is ${chunkCount} but ${totalBytes} bytes in ${chunkBytes}-byte chunks make ${expected}`);
  const targets = r.has('targets') ? r.strings('targets') : undefined;
  const issuedAt = r.date('issuedAt');
  const expiresAt = r.date('expiresAt');
  const rolloutId = r.optionalName('rolloutId');
  return {
    protocol: 1, kind: 'deploy', deploymentId, transferId, model, files, totalBytes, chunkBytes, chunkCount,
    ...(targets ? { targets } : {}), issuedAt, expiresAt, ...(rolloutId ? { rolloutId } : {}),
  };
}

export function parseFleetCommand(value: unknown, topic: string): FleetCommand {
  const r = reader(value, topic);
  r.protocol();
  const kind = r.literal('kind', ['rollback', 'abort', 'trust-keys'] as const);
  const commandId = r.fleetName('commandId');
  const issuedAt = r.date('issuedAt');
  const expiresAt = r.date('expiresAt');
  if (kind === 'rollback') {
    const model = r.string('model', 128);
    if (!isValidModelName(model)) throw r.error('model', `"${model}" is not a valid model name`);
    const toVersion = r.optionalString('toVersion', 64);
    if (toVersion !== undefined && !isValidVersion(toVersion)) throw r.error('toVersion', `"${toVersion}" is not a dotted numeric version`);
    const rolloutId = r.optionalName('rolloutId');
    return { protocol: 1, kind, commandId, model, ...(toVersion ? { toVersion } : {}), issuedAt, expiresAt, ...(rolloutId ? { rolloutId } : {}) };
  }
  if (kind === 'abort') return { protocol: 1, kind, commandId, deploymentId: r.fleetName('deploymentId'), issuedAt, expiresAt };
  const pem = (text: string) => (text.includes('-----BEGIN PUBLIC KEY-----') ? undefined : 'must be a PEM public key');
  const add = r.strings('add', pem);
  const remove = r.strings('remove', (text) => (/^[0-9a-f]{16}$/.test(text) ? undefined : 'must be a key id (16 lowercase hex digits)'));
  return { protocol: 1, kind, commandId, add, remove, issuedAt, expiresAt };
}

export function parseDeviceStatus(value: unknown, topic: string): DeviceStatus {
  const r = reader(value, topic);
  r.protocol();
  const target = r.optionalString('target', 256);
  const models: DeviceModelState[] = r.objects('models').map((m) => ({
    name: m.string('name', 128),
    version: m.object.version === null ? null : m.string('version', 64),
    state: m.string('state', 64),
  }));
  return {
    protocol: 1,
    deviceId: r.fleetName('deviceId'),
    groups: r.strings('groups', (g) => (FLEET_NAME_PATTERN.test(g) ? undefined : 'is not a valid group name')),
    online: r.boolean('online'),
    ...(target ? { target } : {}),
    agentVersion: r.string('agentVersion', 64),
    models,
    at: r.date('at'),
  };
}

export function parseDeploymentProgress(value: unknown, topic: string): DeploymentProgress {
  const r = reader(value, topic);
  r.protocol();
  const rolloutId = r.optionalName('rolloutId');
  const code = r.optionalString('code', 128);
  const reason = r.optionalString('reason', 4096);
  return {
    protocol: 1,
    deviceId: r.fleetName('deviceId'),
    deploymentId: r.fleetName('deploymentId'),
    ...(rolloutId ? { rolloutId } : {}),
    model: modelRef(r, 'model'),
    state: r.literal('state', DEPLOYMENT_STATES),
    receivedChunks: r.integer('receivedChunks', 0, MAX_CHUNK_COUNT),
    chunkCount: r.integer('chunkCount', 0, MAX_CHUNK_COUNT),
    receivedBytes: r.integer('receivedBytes', 0, Number.MAX_SAFE_INTEGER),
    totalBytes: r.integer('totalBytes', 0, Number.MAX_SAFE_INTEGER),
    ...(code ? { code } : {}),
    ...(reason ? { reason } : {}),
    at: r.date('at'),
  };
}

export function parseChunkRequest(value: unknown, topic: string): ChunkRequest {
  const r = reader(value, topic);
  r.protocol();
  const ranges = r.array('ranges', 10_000).map((range, i): [number, number] => {
    const ok = Array.isArray(range) && range.length === 2 && range.every((n) => Number.isInteger(n) && n >= 0 && n < MAX_CHUNK_COUNT);
    if (!ok || range[0] > range[1]) throw r.error(`ranges[${i}]`, 'must be [first, last] chunk indices with first ≤ last');
    return [range[0] as number, range[1] as number];
  });
  return { protocol: 1, deviceId: r.fleetName('deviceId'), transferId: r.fleetName('transferId'), ranges };
}

export function parseTransferAck(value: unknown, topic: string): TransferAck {
  const r = reader(value, topic);
  r.protocol();
  const receivedChunks = r.integer('receivedChunks', 0, MAX_CHUNK_COUNT);
  const contiguousChunks = r.integer('contiguousChunks', 0, receivedChunks);
  return { protocol: 1, deviceId: r.fleetName('deviceId'), transferId: r.fleetName('transferId'), contiguousChunks, receivedChunks };
}

export function parseTelemetryReport(value: unknown, topic: string): TelemetryReport {
  const r = reader(value, topic);
  r.protocol();
  const models = r.objects('models').map((m) => {
    const latency = m.child('latencyMs');
    return {
      name: m.string('name', 128),
      version: m.string('version', 64),
      requests: m.integer('requests', 0, Number.MAX_SAFE_INTEGER),
      errors: m.integer('errors', 0, Number.MAX_SAFE_INTEGER),
      throughputPerSec: m.number('throughputPerSec'),
      latencyMs: { p50: latency.nullableNumber('p50'), p95: latency.nullableNumber('p95'), p99: latency.nullableNumber('p99') },
      powerWatts: m.nullableNumber('powerWatts'),
      energyPerInferenceJ: m.nullableNumber('energyPerInferenceJ'),
      accuracy: m.nullableNumber('accuracy'),
    };
  });
  return {
    protocol: 1,
    deviceId: r.fleetName('deviceId'),
    seq: r.integer('seq', 0, Number.MAX_SAFE_INTEGER),
    windowStart: r.date('windowStart'),
    windowEnd: r.date('windowEnd'),
    ...(r.has('dropped') ? { dropped: r.integer('dropped', 0, Number.MAX_SAFE_INTEGER) } : {}),
    models,
  };
}
