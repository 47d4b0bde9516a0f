/**
 * The daemon's fleet agent (docs/PROTOCOL.md): one MQTT client (mqtt.js, MQTT 5 by default) with a persistent
 * session, so QoS 1 chunks and commands published while the device is away wait for it at the broker. On every
 * connect it publishes its retained status (the will publishes the same with online=false when the connection
 * dies) and subscribes to its device and group deploy and command topics, plus the chunk topics of transfers in
 * progress. Reconnecting is mqtt.js's job; the agent reacts to its events.
 *
 * Deployments and commands are handled one at a time on a queue (handle-deploy.ts, handle-command.ts); chunks
 * are written synchronously in the message handler (active-deployment.ts), so a PUBACK always follows the
 * write. Transfers in progress are reopened from <state dir>/fleet before the client connects.
 */
import fs from 'node:fs';
import path from 'node:path';
import mqtt, { type IClientOptions, type ISubscriptionMap, type MqttClient } from 'mqtt';
import type { ResolvedConfig } from '../config/types.ts';
import { configFolder } from '../config/files.ts';
import type { Logger } from '../log.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { ModelManager } from '../swap/model-manager.ts';
import type { ActiveDeployment } from './active-deployment.ts';
import type { AgentContext, ProgressUpdate } from './agent-context.ts';
import { AgentState } from './agent-state.ts';
import type { DeploymentPolicy } from './deployment-checks.ts';
import { handleCommandMessage } from './handle-command.ts';
import { handleDeployMessage, startDeployment } from './handle-deploy.ts';
import { parseDeploymentManifest, parseEnvelope } from './messages.ts';
import { type ChunkRequest, type DeviceStatus, PROTOCOL_VERSION, topics, type TransferAck } from './protocol.ts';
import { verifyEnvelope } from './signing.ts';
import { TrustSet } from './trust-set.ts';

/** How long the broker keeps the device's session (subscriptions, queued QoS 1 messages) while it is away. */
export const SESSION_EXPIRY_SECONDS = 7 * 24 * 3600;
/** How often the agent compares the model registry with its last status. */
export const STATUS_CHECK_INTERVAL_MS = 5_000;

export interface FleetAgentOptions {
  fleet: ResolvedConfig['fleet'] & { broker: string };
  stateDir: string;
  models: () => ModelManager;
  store: () => ModelStore;
  log: Logger;
}

function agentVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(configFolder(), '..', 'package.json'), 'utf8')) as { version?: string };
    return `edgerun/${pkg.version ?? 'unknown'}`;
  } catch {
    return 'edgerun/unknown';
  }
}

export class FleetAgent implements AgentContext {
  readonly deviceId: string;
  readonly prefix: string;
  readonly policy: DeploymentPolicy;
  readonly transfersDir: string;
  readonly chunkRequestTimeoutMs: number;
  readonly active = new Map<string, ActiveDeployment>();
  readonly log: Logger;
  private mqttClient: MqttClient | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly subscriptions = new Set<string>();
  private readonly version = agentVersion();
  private stopped = false;
  private lastModels = '';
  private statusTimer: NodeJS.Timeout | undefined;

  private constructor(private readonly options: FleetAgentOptions, readonly state: AgentState, readonly trust: TrustSet) {
    const { fleet } = options;
    this.deviceId = fleet.deviceId;
    this.prefix = fleet.topicPrefix;
    this.log = options.log;
    this.chunkRequestTimeoutMs = fleet.chunkRequestTimeoutMs;
    this.transfersDir = path.join(options.stateDir, 'fleet', 'transfers');
    this.policy = { target: fleet.target, maxPackageBytes: fleet.maxPackageBytes, minFreeDiskBytes: fleet.minFreeDiskBytes, stateDir: options.stateDir };
    for (const group of fleet.groups) {
      this.subscriptions.add(topics.groupDeploy(this.prefix, group));
      this.subscriptions.add(topics.groupCommand(this.prefix, group));
    }
    this.subscriptions.add(topics.deviceDeploy(this.prefix, this.deviceId));
    this.subscriptions.add(topics.deviceCommand(this.prefix, this.deviceId));
  }

  /** Opens the state, loads the trusted keys (a bad key file fails the start), resumes transfers, then connects. */
  static async start(options: FleetAgentOptions): Promise<FleetAgent> {
    const state = AgentState.open(path.join(options.stateDir, 'fleet'));
    let agent: FleetAgent;
    try {
      const trust = await TrustSet.load(options.fleet.trust, state);
      if (trust.keys().length === 0) options.log.warn('fleet.trust names no key: every deployment and command will be refused');
      agent = new FleetAgent(options, state, trust);
      // The client exists before transfers resume, so their progress reports queue in it until it connects.
      agent.createClient();
      await agent.resumeTransfers();
    } catch (error) {
      state.close();
      throw error;
    }
    agent.client.connect();
    agent.statusTimer = setInterval(() => agent.publishStatusIfModelsChanged(), STATUS_CHECK_INTERVAL_MS);
    agent.statusTimer.unref();
    return agent;
  }

  /** The MQTT client (other fleet parts, such as the telemetry uplink, publish through it). */
  get client(): MqttClient {
    if (!this.mqttClient) throw new Error('fleet agent: used before start');
    return this.mqttClient;
  }

  models(): ModelManager { return this.options.models(); }
  store(): ModelStore { return this.options.store(); }

  private async resumeTransfers(): Promise<void> {
    fs.mkdirSync(this.transfersDir, { recursive: true });
    for (const record of this.state.inProgress()) {
      const what = `resumed deployment ${record.deploymentId}`;
      try {
        // Re-verified: the trust set may have changed since (a removed key's deployments do not resume).
        const envelope = parseEnvelope(JSON.parse(record.envelope ?? 'null') as unknown, what);
        const manifest = parseDeploymentManifest(verifyEnvelope(envelope, this.trust.keys(), what), what);
        await startDeployment(this, manifest, record.envelope!, true);
      } catch (error) {
        this.log.warn({ deploymentId: record.deploymentId, err: error }, 'could not resume a deployment');
        this.state.record({ ...record, state: 'failed', envelope: null, code: 'EDGERUN_ERR_FLEET_TRANSFER', reason: `could not resume: ${(error as Error).message}` });
      }
    }
    const known = new Set(this.active.keys());
    for (const entry of fs.readdirSync(this.transfersDir)) {
      if (!known.has(entry)) fs.rmSync(path.join(this.transfersDir, entry), { recursive: true, force: true });
    }
  }

  private status(online: boolean): DeviceStatus {
    const { fleet } = this.options;
    let models: DeviceStatus['models'] = [];
    try {
      models = this.models().list().map((info) => {
        const active = info.versions.find((v) => v.version === info.activeVersion);
        return { name: info.name, version: info.activeVersion ?? null, state: active?.state ?? info.versions.at(-1)?.state ?? 'UNAVAILABLE' };
      });
    } catch {
      // The model manager is not started (or already closed): the status lists no models.
    }
    return {
      protocol: PROTOCOL_VERSION, deviceId: this.deviceId, groups: [...fleet.groups], online,
      ...(fleet.target !== null ? { target: fleet.target } : {}),
      agentVersion: this.version, models, at: new Date().toISOString(),
    };
  }

  private createClient(): void {
    const { fleet } = this.options;
    const statusTopic = topics.status(this.prefix, this.deviceId);
    const options: IClientOptions = {
      clientId: `edgerun-${this.deviceId}`,
      clean: false,
      protocolVersion: fleet.mqttProtocolVersion,
      reconnectPeriod: 1000,
      // The 'connect' handler subscribes to exactly what is wanted now (finished transfers' chunk topics not).
      resubscribe: false,
      manualConnect: true,
      connectTimeout: 10_000,
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(this.status(false))), qos: 1, retain: true },
      ...(fleet.mqttProtocolVersion === 5 ? { properties: { sessionExpiryInterval: SESSION_EXPIRY_SECONDS } } : {}),
    };
    const client = mqtt.connect(fleet.broker, options);
    this.mqttClient = client;
    client.on('connect', (connack) => {
      // The chunk handler writes a PUBACK and an acknowledgement back to back: Nagle would hold the second ~40 ms.
      (client.stream as { setNoDelay?: (noDelay: boolean) => unknown } | undefined)?.setNoDelay?.(true);
      this.log.info({ broker: fleet.broker, deviceId: this.deviceId, sessionPresent: connack.sessionPresent }, 'connected to the fleet broker');
      this.publishStatus();
      const wanted = [...this.subscriptions, ...[...this.active.values()].map((a) => topics.chunkWildcard(this.prefix, a.transferId))];
      // resubscribe: mqtt.js skips topics it believes the session holds, but a broker that lost its state (SIGKILL
      // between autosaves) restores an older session without the latest chunk subscriptions.
      const subscriptions = { ...Object.fromEntries(wanted.map((topic) => [topic, { qos: 1 }])), resubscribe: true } as ISubscriptionMap;
      client.subscribeAsync(subscriptions).catch((error: unknown) => this.log.error({ err: error }, 'subscribing failed'));
      for (const active of this.active.values()) active.connectionChanged(true);
    });
    client.on('close', () => {
      for (const active of this.active.values()) active.connectionChanged(false);
    });
    client.on('reconnect', () => this.log.debug({ broker: fleet.broker }, 'reconnecting to the fleet broker'));
    client.on('offline', () => this.log.warn({ broker: fleet.broker }, 'the fleet broker is unreachable; retrying'));
    client.on('error', (error) => this.log.warn({ broker: fleet.broker, err: error.message }, 'fleet broker connection error'));
    client.on('message', (topic, payload, packet) => this.route(topic, payload, packet.retain));
  }

  private route(topic: string, payload: Buffer, retained: boolean): void {
    if (this.stopped) return;
    const transfers = `${this.prefix}/transfers/`;
    if (topic.startsWith(transfers)) {
      const transferId = topic.slice(transfers.length, topic.indexOf('/', transfers.length));
      try {
        this.active.get(transferId)?.onChunk(topic, payload);
      } catch (error) {
        this.log.error({ topic, err: error }, 'a chunk handler failed');
      }
      return;
    }
    if (topic.endsWith('/deploy')) void this.enqueue(() => handleDeployMessage(this, topic, payload, retained));
    else if (topic.endsWith('/command')) void this.enqueue(() => handleCommandMessage(this, topic, payload));
  }

  enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(async () => {
      if (this.stopped) return;
      await work();
    }).catch((error: unknown) => this.log.error({ err: error }, 'a fleet message handler failed'));
    this.queue = next;
    return next;
  }

  publishProgress(update: ProgressUpdate): void {
    const progress = { protocol: PROTOCOL_VERSION, deviceId: this.deviceId, ...update, at: new Date().toISOString() };
    this.publish(topics.progress(this.prefix, this.deviceId), JSON.stringify(progress), true);
  }

  publishStatus(): void {
    const status = this.status(true);
    this.lastModels = JSON.stringify(status.models);
    this.publish(topics.status(this.prefix, this.deviceId), JSON.stringify(status), true);
  }

  /** The hot-swap changes models on its own too (probation passed or rolled back): the status follows. */
  private publishStatusIfModelsChanged(): void {
    if (!this.mqttClient?.connected) return;
    if (JSON.stringify(this.status(true).models) !== this.lastModels) this.publishStatus();
  }

  publishChunkRequest(transferId: string, ranges: [number, number][]): void {
    const request: ChunkRequest = { protocol: PROTOCOL_VERSION, deviceId: this.deviceId, transferId, ranges };
    this.publish(topics.chunkRequest(this.prefix, transferId), JSON.stringify(request), false);
  }

  publishTransferAck(transferId: string, contiguousChunks: number, receivedChunks: number): void {
    const ack: TransferAck = { protocol: PROTOCOL_VERSION, deviceId: this.deviceId, transferId, contiguousChunks, receivedChunks };
    this.publish(topics.transferAck(this.prefix, transferId), JSON.stringify(ack), false);
  }

  private publish(topic: string, payload: string, retain: boolean): void {
    this.mqttClient?.publish(topic, payload, { qos: 1, retain }, (error) => {
      if (error && !this.stopped) this.log.warn({ topic, err: error.message }, 'a fleet publish failed');
    });
  }

  connected(): boolean {
    return this.mqttClient?.connected === true;
  }

  async subscribe(topic: string): Promise<void> {
    if (this.mqttClient?.connected) await this.mqttClient.subscribeAsync(topic, { qos: 1 });
  }

  async unsubscribe(topic: string): Promise<void> {
    if (this.mqttClient?.connected) await this.mqttClient.unsubscribeAsync(topic);
  }

  /** Publishes online=false, disconnects, and leaves transfers in progress on disk for the next start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const client = this.mqttClient;
    if (client?.connected) {
      await client.publishAsync(topics.status(this.prefix, this.deviceId), JSON.stringify(this.status(false)), { qos: 1, retain: true })
        .catch(() => undefined);
    }
    this.stopped = true;
    clearInterval(this.statusTimer);
    await this.queue;
    for (const active of [...this.active.values()]) active.suspend();
    await client?.endAsync().catch(() => undefined);
    this.state.close();
  }
}
