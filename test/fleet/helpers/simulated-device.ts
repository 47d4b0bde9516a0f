/**
 * A minimal device for the operator-side tests: its own MQTT client announcing a retained status, verifying
 * signed manifests with the trusted keys, receiving chunk frames into memory, asking for missing chunks after
 * a quiet spell, checking every file's sha256 and reporting progress — or the failure it is told to report.
 * It records the commands it receives. The daemon's real agent is tested on its own; this stands in for a
 * fleet where no inference engine is needed.
 */
import crypto from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { decodeChunkFrame } from '../../../daemon/fleet/chunk-frame.ts';
import { parseDeploymentManifest, parseEnvelope, parseFleetCommand, parseJsonPayload } from '../../../daemon/fleet/messages.ts';
import {
  DEFAULT_TOPIC_PREFIX, type DeploymentManifest, type DeploymentProgress, type DeploymentState, type DeviceModelState,
  type FleetCommand, topics,
} from '../../../daemon/fleet/protocol.ts';
import { type TrustedKey, verifyEnvelope } from '../../../daemon/fleet/signing.ts';

export interface SimulatedDeviceOptions {
  brokerUrl: string;
  /** MQTT 5 unless the test broker speaks only 3.1.1 (Aedes). */
  protocolVersion?: 4 | 5;
  deviceId: string;
  groups?: string[];
  trusted: TrustedKey[];
  prefix?: string;
  models?: DeviceModelState[];
  /** Report this failure instead of going active once the package is complete. */
  failWith?: { code: string; reason: string };
  /** Wait this long after the package is complete before reporting the outcome. */
  outcomeDelayMs?: number;
  /** Chunks lost on their first delivery (the device must ask for them again). */
  dropFirst?: (index: number) => boolean;
  /** Quiet time after which missing chunks are requested. */
  requestAfterMs?: number;
}

export class SimulatedDevice {
  readonly manifests: DeploymentManifest[] = [];
  readonly commands: FleetCommand[] = [];
  readonly rejected: string[] = [];
  /** The files of the last completed deployment, by path. */
  files = new Map<string, Buffer>();
  requestsSent = 0;
  private current: { manifest: DeploymentManifest; data: Buffer; have: Uint8Array; received: number; timer: NodeJS.Timeout | null } | null = null;
  private readonly dropped = new Set<number>();
  private readonly prefix: string;

  private constructor(private readonly client: MqttClient, private readonly options: SimulatedDeviceOptions) {
    this.prefix = options.prefix ?? DEFAULT_TOPIC_PREFIX;
  }

  static async start(options: SimulatedDeviceOptions): Promise<SimulatedDevice> {
    const prefix = options.prefix ?? DEFAULT_TOPIC_PREFIX;
    const offline = JSON.stringify(SimulatedDevice.status(options, false));
    const client = await mqtt.connectAsync(options.brokerUrl, {
      protocolVersion: options.protocolVersion ?? 5, clientId: `sim-${options.deviceId}`, clean: true, reconnectPeriod: 200,
      will: { topic: topics.status(prefix, options.deviceId), payload: Buffer.from(offline), qos: 1, retain: true },
    });
    const device = new SimulatedDevice(client, options);
    client.on('message', (topic, payload) => device.onMessage(topic, payload));
    await client.subscribeAsync([
      topics.deviceDeploy(prefix, options.deviceId),
      topics.deviceCommand(prefix, options.deviceId),
      ...(options.groups ?? []).flatMap((g) => [topics.groupDeploy(prefix, g), topics.groupCommand(prefix, g)]),
    ], { qos: 1 });
    await client.publishAsync(topics.status(prefix, options.deviceId), JSON.stringify(SimulatedDevice.status(options, true)), { qos: 1, retain: true });
    return device;
  }

  private static status(options: SimulatedDeviceOptions, online: boolean) {
    return {
      protocol: 1, deviceId: options.deviceId, groups: options.groups ?? [], online, agentVersion: 'sim',
      models: options.models ?? [], at: new Date().toISOString(),
    };
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.includes('/transfers/')) {
      this.onChunk(topic, payload);
      return;
    }
    if (payload.length === 0) return;
    try {
      const envelope = parseEnvelope(parseJsonPayload(payload, topic), topic);
      const value = verifyEnvelope(envelope, this.options.trusted, topic);
      if (topic.endsWith('/deploy')) this.onManifest(parseDeploymentManifest(value, topic));
      else this.onCommand(parseFleetCommand(value, topic));
    } catch (error) {
      this.rejected.push((error as Error).message);
    }
  }

  /** Rollbacks are answered the way the agent answers them: progress under the command's id. */
  private onCommand(command: FleetCommand): void {
    this.commands.push(command);
    if (command.kind !== 'rollback') return;
    const progress: DeploymentProgress = {
      protocol: 1, deviceId: this.options.deviceId, deploymentId: command.commandId, model: { name: command.model, version: command.toVersion ?? '0' },
      state: 'rolled-back', receivedChunks: 0, chunkCount: 0, receivedBytes: 0, totalBytes: 0, at: new Date().toISOString(),
    };
    void this.client.publishAsync(topics.progress(this.prefix, this.options.deviceId), JSON.stringify(progress), { qos: 1, retain: true });
  }

  private onManifest(manifest: DeploymentManifest): void {
    if (this.manifests.some((m) => m.deploymentId === manifest.deploymentId)) return;
    this.manifests.push(manifest);
    this.current = { manifest, data: Buffer.alloc(manifest.totalBytes), have: new Uint8Array(manifest.chunkCount), received: 0, timer: null };
    void this.client.subscribeAsync(topics.chunkWildcard(this.prefix, manifest.transferId), { qos: 1 }).then(() => {
      this.report('accepted');
      this.armRequestTimer();
    });
  }

  private onChunk(topic: string, payload: Buffer): void {
    const current = this.current;
    if (!current || !topic.includes(`/transfers/${current.manifest.transferId}/`)) return;
    const frame = decodeChunkFrame(payload, topic);
    if (this.options.dropFirst?.(frame.index) && !this.dropped.has(frame.index)) {
      this.dropped.add(frame.index);
      return;
    }
    if (current.have[frame.index]) return;
    current.have[frame.index] = 1;
    current.received++;
    frame.data.copy(current.data, frame.index * current.manifest.chunkBytes);
    if (current.received === current.manifest.chunkCount) {
      if (current.timer) clearTimeout(current.timer);
      this.finish();
    } else {
      if (current.received % 8 === 1) this.report('downloading');
      this.armRequestTimer();
    }
  }

  private armRequestTimer(): void {
    const current = this.current;
    if (!current) return;
    if (current.timer) clearTimeout(current.timer);
    current.timer = setTimeout(() => this.requestMissing(), this.options.requestAfterMs ?? 300);
  }

  private requestMissing(): void {
    const current = this.current;
    if (!current || current.received === current.manifest.chunkCount) return;
    const ranges: [number, number][] = [];
    for (let i = 0; i < current.have.length; i++) {
      if (current.have[i]) continue;
      const last = ranges[ranges.length - 1];
      if (last && last[1] === i - 1) last[1] = i;
      else ranges.push([i, i]);
    }
    this.requestsSent++;
    void this.client.publishAsync(topics.chunkRequest(this.prefix, current.manifest.transferId),
      JSON.stringify({ protocol: 1, deviceId: this.options.deviceId, transferId: current.manifest.transferId, ranges }), { qos: 1 });
    this.armRequestTimer();
  }

  private finish(): void {
    const { manifest, data } = this.current!;
    this.report('verifying');
    const files = new Map<string, Buffer>();
    let offset = 0;
    for (const file of manifest.files) {
      const bytes = data.subarray(offset, offset + file.bytes);
      offset += file.bytes;
      if (crypto.createHash('sha256').update(bytes).digest('hex') !== file.sha256) {
        this.report('failed', { code: 'EDGERUN_ERR_FLEET_TRANSFER', reason: `${file.path} does not match its sha256` });
        return;
      }
      files.set(file.path, Buffer.from(bytes));
    }
    this.files = files;
    setTimeout(() => {
      if (this.options.failWith) this.report('failed', this.options.failWith);
      else this.report('active');
    }, this.options.outcomeDelayMs ?? 0);
  }

  private report(state: DeploymentState, failure?: { code: string; reason: string }): void {
    const current = this.current!;
    const { manifest } = current;
    const receivedBytes = Math.min(manifest.totalBytes, current.received * manifest.chunkBytes);
    const progress: DeploymentProgress = {
      protocol: 1, deviceId: this.options.deviceId, deploymentId: manifest.deploymentId,
      ...(manifest.rolloutId ? { rolloutId: manifest.rolloutId } : {}),
      model: manifest.model, state, receivedChunks: current.received, chunkCount: manifest.chunkCount,
      receivedBytes, totalBytes: manifest.totalBytes, ...(failure ?? {}), at: new Date().toISOString(),
    };
    void this.client.publishAsync(topics.progress(this.prefix, this.options.deviceId), JSON.stringify(progress), { qos: 1, retain: true });
  }

  /** Disconnects cleanly after marking itself offline. */
  async stop(): Promise<void> {
    if (this.current?.timer) clearTimeout(this.current.timer);
    await this.client.publishAsync(topics.status(this.prefix, this.options.deviceId), JSON.stringify(SimulatedDevice.status(this.options, false)), { qos: 1, retain: true });
    await this.client.endAsync();
  }
}
