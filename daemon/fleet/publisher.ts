/**
 * One deployment from the operator's side: a signed manifest published retained on one or more deploy topics,
 * one chunk stream on its transfer topics shared by every device it reaches, ChunkRequests served until the
 * end, and progress followed until every device has an outcome or time runs out.
 *
 * The first pass of chunks starts once every expected device has reported the manifest (so it has subscribed
 * to the chunk topics and the broadcast is not lost on it) or after `startGraceMs`; a device that missed
 * chunks, joined late or resumes after an outage asks for them with a ChunkRequest.
 *
 * After the sender's connection to the broker comes back, new chunks wait until every device still downloading
 * has announced itself again (a live status or progress message), or `reannounceGraceMs`: a broker that lost its
 * state (SIGKILL between autosaves) also lost the devices' chunk subscriptions, and chunks published before a
 * device re-subscribes would be dropped and have to be asked for again.
 *
 * The chunk stream is paced on the devices' acknowledgements (publisher-pacing.ts): it runs at most a bounded lead
 * ahead of the slowest device still downloading, so a broker that dies without saving loses at most that lead.
 * The acknowledgements come in on a connection of their own (connectCompanion says why).
 */
import crypto from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { EdgerunError } from '../errors.ts';
import { logger } from '../log.ts';
import { ChunkSender, type ChunkSenderStats, DEFAULT_SEND_WINDOW } from './chunk-sender.ts';
import { parseChunkRequest, parseDeploymentProgress, parseDeviceStatus, parseJsonPayload, parseTransferAck } from './messages.ts';
import { onlineGroupMembers, readFleet } from './fleet-view.ts';
import { brokerReceiveMaximum, connectCompanion } from './publisher-broker.ts';
import type { DeployTarget } from './publisher-options.ts';
import { buildDeploymentManifest, type PackageSource } from './publisher-package.ts';
import { DEFAULT_PACING_STALL_MS, TransferPacer } from './publisher-pacing.ts';
import { attachProgressPrinter, DeploymentTracker, type DeviceDeployment, outcomeOf } from './publisher-progress.ts';
import { type DeploymentManifest, type FleetCommand, topics } from './protocol.ts';
import { type SigningKey, signPayload } from './signing.ts';

export const DEFAULT_START_GRACE_MS = 5_000;
/** After a broker reconnect, how long chunks wait for the devices still downloading to announce themselves again. */
export const DEFAULT_REANNOUNCE_GRACE_MS = 3_000;
/** How long after a device's will the chunk stream stops waiting on it (a broker shutting down sends every will). */
export const OFFLINE_DROP_DELAY_MS = 1_000;
/** How long publish and rollout collect retained device statuses at most. */
export const DEFAULT_FLEET_WAIT_MS = 2_000;

export interface DeploymentOptions {
  client: MqttClient;
  prefix: string;
  key: SigningKey;
  source: PackageSource;
  manifest: DeploymentManifest;
  /** Deploy topics the signed manifest is published on (retained). */
  deployTopics: string[];
  /** Devices whose outcome the deployment waits for. */
  expected: string[];
  /** Publishes awaiting PUBACK at once (capped by the broker's receive maximum). */
  window?: number;
  startGraceMs?: number;
  reannounceGraceMs?: number;
  /** How long the chunk stream waits on a device whose progress does not move before it stops pacing on it. */
  pacingStallMs?: number;
  /** Where live per-device lines go (none when absent). */
  progressStream?: NodeJS.WritableStream;
  progressLabel?: string;
}

export interface DeploymentResult {
  manifest: DeploymentManifest;
  devices: DeviceDeployment[];
  succeeded: number;
  failed: number;
  /** Devices without an outcome when the wait ended. */
  pending: number;
  timedOut: boolean;
  elapsedMs: number;
  sender: ChunkSenderStats;
}

export class Deployment {
  readonly tracker: DeploymentTracker;
  readonly sender: ChunkSender;
  readonly pacer: TransferPacer;
  private readonly startedAt = Date.now();
  private readonly requestTopic: string;
  private readonly ackTopic: string;
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly offlineTimers = new Map<string, NodeJS.Timeout>();
  /** A second connection that receives acknowledgements sooner (connectCompanion), or `client` when none could be opened. */
  private ackClient: MqttClient | null = null;
  /** `{prefix}/devices/`: progress and status topics start with it. */
  private readonly devicesPrefix: string;
  private started = false;
  private disconnectedAt = Number.POSITIVE_INFINITY;
  private awaitingAnnounce = new Set<string>();
  private announceTimer: NodeJS.Timeout | undefined;
  private changeWaiters: (() => void)[] = [];
  private sendFailure: Error | null = null;
  private readonly log = logger.child({ component: 'fleet-publisher' });

  constructor(private readonly options: DeploymentOptions) {
    const { client, prefix, manifest, source } = options;
    const brokerMax = brokerReceiveMaximum(client);
    const window = Math.max(1, Math.min(options.window ?? DEFAULT_SEND_WINDOW, brokerMax ?? Number.MAX_SAFE_INTEGER));
    this.sender = new ChunkSender(client, prefix, manifest, source, window, (error) => {
      this.sendFailure = error;
      this.wakeWaiters();
    });
    const stallMs = options.pacingStallMs ?? DEFAULT_PACING_STALL_MS;
    this.pacer = new TransferPacer(manifest, (limit) => this.sender.setLimit(limit), stallMs);
    this.tracker = new DeploymentTracker(manifest.deploymentId, manifest.totalBytes, options.expected);
    this.requestTopic = topics.chunkRequest(prefix, manifest.transferId);
    this.ackTopic = topics.transferAck(prefix, manifest.transferId);
    const progressWildcard = topics.allProgress(prefix);
    this.devicesPrefix = progressWildcard.slice(0, progressWildcard.indexOf('+'));
    if (options.progressStream) attachProgressPrinter(this.tracker, options.progressStream, options.progressLabel);
    this.tracker.onChange(() => this.wakeWaiters());
  }

  private readonly onMessage = (topic: string, payload: Buffer, packet: { retain?: boolean }): void => {
    try {
      if (topic === this.requestTopic) {
        const request = parseChunkRequest(parseJsonPayload(payload, topic), topic);
        if (request.transferId !== this.options.manifest.transferId) return;
        const added = this.sender.queueRequested(request.ranges);
        this.log.debug({ deviceId: request.deviceId, ranges: request.ranges.length, added }, 'chunk request');
      } else if (topic === this.ackTopic) {
        const ack = parseTransferAck(parseJsonPayload(payload, topic), topic);
        const device = this.tracker.devices.get(ack.deviceId);
        if (ack.transferId === this.options.manifest.transferId && (!device || outcomeOf(device) === 'pending')) {
          this.cameBack(ack.deviceId);
          this.pacer.acknowledged(ack.deviceId, ack.contiguousChunks);
        }
      } else if (topic.startsWith(this.devicesPrefix) && topic.endsWith('/progress') && payload.length > 0) {
        const progress = parseDeploymentProgress(parseJsonPayload(payload, topic), topic);
        if (!this.tracker.apply(progress)) return;
        if (!packet.retain) this.announced(progress.deviceId);
        if (progress.state !== 'accepted' && progress.state !== 'downloading') this.pacer.drop(progress.deviceId, 'finished');
      } else if (topic.startsWith(this.devicesPrefix) && topic.endsWith('/status') && payload.length > 0) {
        const status = parseDeviceStatus(parseJsonPayload(payload, topic), topic);
        if (!status.online && !packet.retain) this.wentOffline(status.deviceId);
        if (status.online) this.cameBack(status.deviceId);
        if (this.awaitingAnnounce.size > 0 && status.online && (!packet.retain || Date.parse(status.at) >= this.disconnectedAt)) this.announced(status.deviceId);
      }
    } catch (error) {
      this.log.warn({ err: error, topic }, 'ignored a malformed message');
    }
  };

  private readonly onClose = (): void => {
    this.disconnectedAt = Math.min(this.disconnectedAt, Date.now());
    // A broker that shuts down publishes its clients' wills: those devices did not go anywhere.
    for (const timer of this.offlineTimers.values()) clearTimeout(timer);
    this.offlineTimers.clear();
  };

  /**
   * A will arrived live: unless the broker turns out to be going down (our own connection closes) or the device
   * is back within OFFLINE_DROP_DELAY_MS, the stream stops waiting on it; its session keeps what follows.
   */
  private wentOffline(deviceId: string): void {
    clearTimeout(this.offlineTimers.get(deviceId));
    this.offlineTimers.set(deviceId, setTimeout(() => {
      this.offlineTimers.delete(deviceId);
      if (this.options.client.connected && this.pacer.drop(deviceId, 'offline')) {
        this.log.info({ deviceId }, 'a device went offline; the chunk stream no longer waits on it');
      }
    }, OFFLINE_DROP_DELAY_MS));
  }

  private cameBack(deviceId: string): void {
    clearTimeout(this.offlineTimers.get(deviceId));
    this.offlineTimers.delete(deviceId);
  }

  private readonly onReconnect = (): void => {
    if (!this.started) return;
    const pending = [...this.tracker.devices.values()].filter((d) => outcomeOf(d) === 'pending').map((d) => d.deviceId);
    this.log.debug({ deploymentId: this.options.manifest.deploymentId, waitingFor: pending.length }, 'reconnected to the broker');
    if (pending.length === 0) return;
    this.options.progressStream?.write(`${this.options.progressLabel ?? ''}reconnected to the broker; chunks wait for ${pending.length} device(s) to announce themselves again\n`);
    this.awaitingAnnounce = new Set(pending);
    this.sender.pause();
    clearTimeout(this.announceTimer);
    this.announceTimer = setTimeout(() => this.resumeSending(), this.options.reannounceGraceMs ?? DEFAULT_REANNOUNCE_GRACE_MS);
  };

  private announced(deviceId: string): void {
    if (!this.awaitingAnnounce.delete(deviceId) || this.awaitingAnnounce.size > 0) return;
    this.resumeSending();
  }

  private resumeSending(): void {
    clearTimeout(this.announceTimer);
    this.announceTimer = undefined;
    this.awaitingAnnounce.clear();
    this.disconnectedAt = Number.POSITIVE_INFINITY;
    this.sender.resume();
  }

  private wakeWaiters(): void {
    const waiters = this.changeWaiters;
    this.changeWaiters = [];
    for (const wake of waiters) wake();
  }

  private async nextChange(untilMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, untilMs - Date.now()));
      function done(): void { clearTimeout(timer); resolve(); }
      this.changeWaiters.push(done);
    });
  }

  /** Subscribes, publishes the signed manifest and starts the first pass of chunks (by `deadline` at the latest). */
  async start(deadline: number): Promise<void> {
    const { client, prefix, key, manifest, deployTopics } = this.options;
    client.on('message', this.onMessage);
    client.on('close', this.onClose);
    client.on('connect', this.onReconnect);
    this.ackClient = await connectCompanion(client, 'edgerun-acks').catch((error: unknown) => {
      this.log.warn({ err: error }, 'no second broker connection for acknowledgements; they share the chunk connection');
      return client;
    });
    if (this.ackClient !== client) {
      this.ackClient.on('message', this.onMessage);
      await this.ackClient.subscribeAsync(this.ackTopic, { qos: 1 });
    }
    // Acknowledgements on the chunk connection too: there they arrive in order with the same device's progress
    // reports, so the first pass never starts on a report whose acknowledgement is still on its way.
    await client.subscribeAsync([this.requestTopic, this.ackTopic, topics.allProgress(prefix), topics.allStatus(prefix)], { qos: 1 });
    const envelope = JSON.stringify(signPayload(manifest, key));
    await Promise.all(deployTopics.map((topic) => client.publishAsync(topic, envelope, { qos: 1, retain: true })));
    const graceUntil = Math.min(deadline, Date.now() + (this.options.startGraceMs ?? DEFAULT_START_GRACE_MS));
    while (!this.tracker.allReported && !this.tracker.done && Date.now() < graceUntil) await this.nextChange(graceUntil);
    this.started = true;
    this.sender.queueAll();
    this.stallTimer = setInterval(() => this.checkStalled(), Math.max(100, Math.min(1000, (this.options.pacingStallMs ?? DEFAULT_PACING_STALL_MS) / 4)));
    this.stallTimer.unref();
  }

  /** A device that stopped moving (without a will: a hung daemon, a broken link) must not hold the stream forever. */
  private checkStalled(): void {
    if (!this.sender.heldBack) return;
    for (const deviceId of this.pacer.dropStalled()) {
      this.log.warn({ deviceId, deploymentId: this.options.manifest.deploymentId }, 'a device has not progressed; the chunk stream no longer waits on it');
    }
  }

  /**
   * Waits until every device has an outcome, `deadline` (epoch ms) passes, or `stopWhen` says so (a rollout
   * that has seen too many failures). Chunk requests are served all along.
   */
  async wait(deadline: number, stopWhen: (tracker: DeploymentTracker) => boolean = () => false): Promise<DeploymentResult> {
    while (!this.tracker.done && !stopWhen(this.tracker) && Date.now() < deadline && !this.sendFailure) await this.nextChange(deadline);
    // A package file that changed under the sender, or a client that was closed: the deployment cannot go on.
    if (this.sendFailure) throw this.sendFailure;
    return this.result(!this.tracker.done && !stopWhen(this.tracker));
  }

  private result(timedOut: boolean): DeploymentResult {
    const devices = [...this.tracker.devices.values()];
    return {
      manifest: this.options.manifest,
      devices,
      succeeded: devices.filter((d) => outcomeOf(d) === 'succeeded').length,
      failed: devices.filter((d) => outcomeOf(d) === 'failed').length,
      pending: devices.filter((d) => outcomeOf(d) === 'pending').length,
      timedOut,
      elapsedMs: Date.now() - this.startedAt,
      sender: { ...this.sender.stats },
    };
  }

  /**
   * Stops serving chunk requests and deletes the retained manifest from the deploy topics: a device can only fetch
   * chunks while a sender serves them, so a manifest left behind would start transfers that never finish on
   * devices that come online later. (Devices keep what they need to resume in their own state.)
   */
  async stop(): Promise<void> {
    const { client } = this.options;
    client.off('message', this.onMessage);
    client.off('close', this.onClose);
    client.off('connect', this.onReconnect);
    clearTimeout(this.announceTimer);
    clearInterval(this.stallTimer);
    for (const timer of this.offlineTimers.values()) clearTimeout(timer);
    this.offlineTimers.clear();
    this.sender.close();
    if (this.ackClient && this.ackClient !== client) {
      this.ackClient.off('message', this.onMessage);
      // Forced: it never publishes, so there is nothing to flush, and a broker that is down must not hold up the end.
      await this.ackClient.endAsync(true).catch(() => undefined);
    }
    this.ackClient = null;
    if (client.connected) {
      await client.unsubscribeAsync([this.requestTopic, this.ackTopic]).catch(() => undefined);
      await this.clearRetained().catch((error: unknown) => this.log.warn({ err: error }, 'could not clear the retained manifest'));
    }
    this.wakeWaiters();
  }

  /** Signed `abort` to devices still in flight. */
  async abort(deviceIds: readonly string[], expiresInMs: number): Promise<void> {
    const { client, prefix, key, manifest } = this.options;
    for (const deviceId of deviceIds) {
      await sendCommand(client, prefix, key, deviceId, {
        protocol: 1, kind: 'abort', commandId: crypto.randomUUID(), deploymentId: manifest.deploymentId, ...commandTimes(expiresInMs),
      });
    }
  }

  private async clearRetained(): Promise<void> {
    const { client, deployTopics } = this.options;
    await Promise.all(deployTopics.map((topic) => client.publishAsync(topic, '', { qos: 1, retain: true })));
  }
}

export function commandTimes(expiresInMs: number, now = new Date()): { issuedAt: string; expiresAt: string } {
  return { issuedAt: now.toISOString(), expiresAt: new Date(now.getTime() + expiresInMs).toISOString() };
}

/** Publishes a signed FleetCommand on a device's command topic (QoS 1, not retained). */
export async function sendCommand(client: MqttClient, prefix: string, key: SigningKey, deviceId: string, command: FleetCommand): Promise<void> {
  await client.publishAsync(topics.deviceCommand(prefix, deviceId), JSON.stringify(signPayload(command, key)), { qos: 1 });
}

export interface PublishOptions {
  client: MqttClient;
  prefix: string;
  key: SigningKey;
  source: PackageSource;
  target: DeployTarget;
  timeoutMs: number;
  expiresInMs: number;
  chunkBytes?: number;
  window?: number;
  startGraceMs?: number;
  pacingStallMs?: number;
  /** How long to collect retained device statuses (a group's online members). */
  fleetWaitMs?: number;
  progressStream?: NodeJS.WritableStream;
}

/**
 * `edgerun publish`: one deployment to a device (its deploy topic) or a group (the group's deploy topic, waiting
 * for the members online now). A group without online members is refused before anything is published.
 */
export async function publishPackage(options: PublishOptions): Promise<DeploymentResult> {
  const { client, prefix, target } = options;
  let expected: string[];
  let deployTopics: string[];
  if (target.kind === 'device') {
    expected = [target.deviceId];
    deployTopics = [topics.deviceDeploy(prefix, target.deviceId)];
  } else {
    const view = await readFleet(client, prefix, { waitMs: options.fleetWaitMs ?? DEFAULT_FLEET_WAIT_MS });
    expected = onlineGroupMembers(view, target.group).map((status) => status.deviceId);
    if (expected.length === 0) {
      throw new EdgerunError('EDGERUN_ERR_FLEET_REJECTED',
        `group '${target.group}' has no online device (no retained status under ${prefix} with online=true lists it); nothing was published`,
        { group: target.group });
    }
    deployTopics = [topics.groupDeploy(prefix, target.group)];
  }
  const manifest = buildDeploymentManifest(options.source, {
    expiresInMs: options.expiresInMs, ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
  });
  const deployment = new Deployment({
    client, prefix, key: options.key, source: options.source, manifest, deployTopics, expected,
    ...(options.window ? { window: options.window } : {}),
    ...(options.startGraceMs !== undefined ? { startGraceMs: options.startGraceMs } : {}),
    ...(options.pacingStallMs !== undefined ? { pacingStallMs: options.pacingStallMs } : {}),
    ...(options.progressStream ? { progressStream: options.progressStream } : {}),
  });
  const deadline = Date.now() + options.timeoutMs;
  try {
    await deployment.start(deadline);
    return await deployment.wait(deadline);
  } finally {
    await deployment.stop();
  }
}
