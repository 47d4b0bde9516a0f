/**
 * The operator side of the fleet agent's tests: signing keys, small model packages, a daemon process that joins
 * the test broker's fleet, and a test sender that publishes signed manifests and chunk frames with whatever
 * faults a test asks for (duplicates, reordering, truncation, bit flips), answers ChunkRequests, and counts the
 * data bytes it sent more than once.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { encodeChunkFrame } from '../../../daemon/fleet/chunk-frame.ts';
import { parseDeploymentProgress } from '../../../daemon/fleet/messages.ts';
import { type DeploymentManifest, type DeploymentProgress, type DeviceStatus, type FleetCommand, topics } from '../../../daemon/fleet/protocol.ts';
import { buildDeploymentManifest, openPackageSource, type PackageSource } from '../../../daemon/fleet/publisher-package.ts';
import { generateKeyPair, readSigningKey, type SigningKey, signPayload } from '../../../daemon/fleet/signing.ts';
import { DaemonProcess } from '../../helpers/daemon-process.ts';
import { inferBody, scaleModel } from '../../helpers/daemon-models.ts';
import type { TestBroker } from '../../helpers/mqtt-broker.ts';
import { writePackage } from '../../helpers/package-builder.ts';

export const PREFIX = 'edgerun/v1';

export async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }, label: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `edgerun-${label}-`));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function makeKey(dir: string, name: string): Promise<{ key: SigningKey; pubFile: string }> {
  const { keyFile, pubFile } = await generateKeyPair(path.join(dir, name));
  return { key: await readSigningKey(keyFile), pubFile };
}

/**
 * Package `scale` version `version`: y = x × factor with one eval case, padded with `padBytes` of random bytes
 * (a listed file) so the transfer has enough chunks to interrupt.
 */
export async function writeScalePackage(dir: string, version: string, factor: number, padBytes = 0): Promise<string> {
  const packageDir = path.join(dir, `scale-${version}`);
  await writePackage(packageDir, {
    name: 'scale', version, model: scaleModel(factor),
    evalInputs: [{ x: { dtype: 'float32', dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) } }],
    ...(padBytes > 0 ? { extraFiles: { 'pad.bin': crypto.randomBytes(padBytes) } } : {}),
  });
  return packageDir;
}

export interface DeviceOptions {
  broker: TestBroker;
  dir: string;
  deviceId: string;
  trust: string[];
  groups?: string[];
  /** A models folder to serve at start. */
  modelsDir?: string;
  env?: NodeJS.ProcessEnv;
}

export async function startDevice(options: DeviceOptions): Promise<DaemonProcess> {
  const stateDir = path.join(options.dir, 'state');
  const modelsDir = options.modelsDir ?? path.join(options.dir, 'models');
  await fs.mkdir(modelsDir, { recursive: true });
  const args = ['--port', '0', '--state-dir', stateDir, '--models', modelsDir, '--broker', options.broker.url, '--device-id', options.deviceId];
  for (const pub of options.trust) args.push('--trust', pub);
  for (const group of options.groups ?? []) args.push('--group', group);
  const daemon = await DaemonProcess.start({
    dir: options.dir,
    args,
    env: {
      EDGERUN_ENGINE_KIND: 'onnxruntime-cpu',
      EDGERUN_FLEET_MQTT_PROTOCOL_VERSION: String(options.broker.protocolVersion),
      EDGERUN_FLEET_CHUNK_REQUEST_TIMEOUT_MS: '500',
      EDGERUN_SWAP_PROBATION_WINDOW_MS: '0',
      EDGERUN_TELEMETRY_ENABLED: 'false',
      ...options.env,
    },
  });
  return daemon.ready(60_000);
}

/** POSTs x = [1, 2, 3, 4] to model `scale` and returns y (x × the serving version's factor) and the version. */
export async function inferScale(url: string): Promise<{ status: number; y: number[]; version: string | undefined }> {
  const response = await fetch(`${url}/v2/models/scale/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody('x', [1, 4], [1, 2, 3, 4]) });
  const body = await response.json() as { outputs?: { data: number[] }[]; model_version?: string };
  return { status: response.status, y: body.outputs?.[0]?.data ?? [], version: body.model_version };
}

/**
 * duplicate: sent twice; truncate: the frame loses its last bytes (its hash no longer matches); short: the data
 * loses its last bytes and the frame's hash is computed over what is left; bitflip: one data bit flipped.
 */
export type ChunkFault = 'duplicate' | 'truncate' | 'short' | 'bitflip';

export interface SendOptions {
  /** Chunk indices in sending order (default 0..n-1). */
  order?: number[];
  /** Faults applied to particular chunk indices on their first send. */
  faults?: Map<number, ChunkFault>;
  /** Pause after each chunk. */
  delayMs?: number;
  /** Stop after this many chunks of the first pass. */
  limit?: number;
}

/** A minimal operator: signs, publishes retained manifests, sends chunk frames, answers ChunkRequests. */
export class TestSender {
  readonly progress: DeploymentProgress[] = [];
  readonly statuses: DeviceStatus[] = [];
  private readonly sources = new Map<string, { source: PackageSource; manifest: DeploymentManifest }>();
  private readonly sendCount = new Map<string, Uint32Array>();
  /** Data bytes sent per transfer, and those sent for a chunk that had been sent before. */
  readonly sent = new Map<string, { bytes: number; resentBytes: number; requests: number }>();
  private waiters: (() => void)[] = [];

  private constructor(readonly client: MqttClient, readonly key: SigningKey) {
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  static async connect(broker: TestBroker, key: SigningKey): Promise<TestSender> {
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion, reconnectPeriod: 200, clientId: `test-sender-${crypto.randomUUID()}` });
    const sender = new TestSender(client, key);
    await client.subscribeAsync([topics.allProgress(PREFIX), topics.allStatus(PREFIX), `${PREFIX}/transfers/+/request`], { qos: 1 });
    return sender;
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (payload.length === 0) return;
    if (topic.endsWith('/progress')) this.progress.push(parseDeploymentProgress(JSON.parse(payload.toString()) as unknown, topic));
    else if (topic.endsWith('/status')) this.statuses.push(JSON.parse(payload.toString()) as DeviceStatus);
    else if (topic.endsWith('/request')) {
      const request = JSON.parse(payload.toString()) as { transferId: string; ranges: [number, number][] };
      const entry = this.sources.get(request.transferId);
      if (!entry) return;
      this.stats(request.transferId).requests++;
      const indices = request.ranges.flatMap(([first, last]) => Array.from({ length: last - first + 1 }, (_, i) => first + i));
      void this.sendChunks(request.transferId, { order: indices });
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private stats(transferId: string): { bytes: number; resentBytes: number; requests: number } {
    let stats = this.sent.get(transferId);
    if (!stats) {
      stats = { bytes: 0, resentBytes: 0, requests: 0 };
      this.sent.set(transferId, stats);
    }
    return stats;
  }

  /** Opens `packageDir` and builds a manifest; `edit` may change it (before signing). */
  async prepare(packageDir: string, options: { chunkBytes?: number; expiresInMs?: number; edit?: (m: DeploymentManifest) => void } = {}): Promise<DeploymentManifest> {
    const source = await openPackageSource(packageDir);
    const manifest = buildDeploymentManifest(source, { chunkBytes: options.chunkBytes ?? 16 * 1024, expiresInMs: options.expiresInMs ?? 600_000 });
    options.edit?.(manifest);
    this.sources.set(manifest.transferId, { source, manifest });
    this.sendCount.set(manifest.transferId, new Uint32Array(manifest.chunkCount));
    return manifest;
  }

  envelope(payload: object, key: SigningKey = this.key): string {
    return JSON.stringify(signPayload(payload, key));
  }

  async publishManifest(topic: string, manifest: DeploymentManifest, key: SigningKey = this.key): Promise<void> {
    await this.client.publishAsync(topic, this.envelope(manifest, key), { qos: 1, retain: true });
  }

  async command(deviceId: string, command: FleetCommand, key: SigningKey = this.key): Promise<void> {
    await this.client.publishAsync(topics.deviceCommand(PREFIX, deviceId), this.envelope(command, key), { qos: 1 });
  }

  async sendChunks(transferId: string, options: SendOptions = {}): Promise<void> {
    const { source, manifest } = this.sources.get(transferId)!;
    const counts = this.sendCount.get(transferId)!;
    const stats = this.stats(transferId);
    const order = options.order ?? Array.from({ length: manifest.chunkCount }, (_, i) => i);
    let sentInPass = 0;
    for (const index of order) {
      if (options.limit !== undefined && sentInPass >= options.limit) break;
      const data = await source.read(index * manifest.chunkBytes, manifest.chunkBytes);
      const fault = counts[index] === 0 ? options.faults?.get(index) : undefined;
      let frame = encodeChunkFrame(index, manifest.chunkCount, fault === 'short' ? data.subarray(0, data.length - 7) : data);
      if (fault === 'truncate') frame = frame.subarray(0, frame.length - 7);
      if (fault === 'bitflip') frame[frame.length - 1] ^= 0x10;
      const topic = topics.chunk(PREFIX, transferId, index);
      await this.client.publishAsync(topic, frame, { qos: 1 });
      if (fault === 'duplicate') await this.client.publishAsync(topic, frame, { qos: 1 });
      stats.bytes += data.length * (fault === 'duplicate' ? 2 : 1);
      if (counts[index]! > 0) stats.resentBytes += data.length;
      counts[index]!++;
      sentInPass++;
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    }
  }

  /** Waits for a progress report of `deploymentId` matching `states` (default: any outcome). */
  async waitProgress(deploymentId: string, states: readonly string[], timeoutMs = 60_000): Promise<DeploymentProgress> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.progress.find((p) => p.deploymentId === deploymentId && states.includes(p.state));
      if (found) return found;
      if (Date.now() > deadline) {
        const seen = this.progress.filter((p) => p.deploymentId === deploymentId).map((p) => `${p.state}${p.reason ? ` (${p.reason})` : ''}`);
        throw new Error(`no ${states.join('|')} progress for ${deploymentId} within ${timeoutMs} ms; saw: ${seen.join(', ') || 'nothing'}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Waits until `predicate` holds for the reports seen so far. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    for (const { source } of this.sources.values()) await source.close();
    await this.client.endAsync(true);
  }
}

export function commandTimes(expiresInMs = 600_000): { issuedAt: string; expiresAt: string } {
  const now = Date.now();
  return { issuedAt: new Date(now).toISOString(), expiresAt: new Date(now + expiresInMs).toISOString() };
}
