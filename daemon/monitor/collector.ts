/**
 * The monitor's MQTT side: subscribes (QoS 1) to every device's status, progress and telemetry under a prefix,
 * validates each payload with the fleet's parsers and stores it. A bad payload is counted and logged, never
 * thrown: one broken device must not stop the monitor watching the others. Messages are stored one at a time in
 * arrival order, so telemetry replayed after an outage lands in seq order.
 */
import type { MqttClient } from 'mqtt';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { parseDeploymentProgress, parseDeviceStatus, parseJsonPayload, parseTelemetryReport } from '../fleet/messages.ts';
import { topics } from '../fleet/protocol.ts';
import type { MonitorStore } from './store-types.ts';

export type MessageKind = 'status' | 'progress' | 'telemetry';

export interface CollectorStats {
  received: Record<MessageKind, number>;
  stored: number;
  duplicates: number;
  badPayloads: number;
  /** The latest bad payloads (newest last, at most 20): topic and reason. */
  recentBad: { at: number; topic: string; reason: string }[];
  storeErrors: number;
}

const KIND_BY_LEVEL: Record<string, MessageKind> = { status: 'status', progress: 'progress', telemetry: 'telemetry' };

export class FleetCollector {
  readonly #stats: CollectorStats = {
    received: { status: 0, progress: 0, telemetry: 0 }, stored: 0, duplicates: 0, badPayloads: 0, recentBad: [], storeErrors: 0,
  };
  #chain: Promise<void> = Promise.resolve();
  readonly #onMessage = (topic: string, payload: Buffer) => {
    const receivedAt = Date.now();
    this.#chain = this.#chain.then(() => this.#handle(topic, payload, receivedAt));
  };

  constructor(
    private readonly client: MqttClient,
    private readonly store: MonitorStore,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.client.on('message', this.#onMessage);
    const subscriptions = [topics.allStatus(this.prefix), topics.allProgress(this.prefix), topics.allTelemetry(this.prefix)];
    await this.client.subscribeAsync(subscriptions, { qos: 1 });
    this.log.info({ subscriptions }, 'monitor: subscribed');
  }

  stats(): CollectorStats {
    return structuredClone(this.#stats);
  }

  /** Resolves once every message received so far is stored (tests, and a clean stop). */
  idle(): Promise<void> {
    return this.#chain;
  }

  async stop(): Promise<void> {
    this.client.removeListener('message', this.#onMessage);
    await this.#chain;
  }

  async #handle(topic: string, payload: Buffer, receivedAt: number): Promise<void> {
    const levels = topic.slice(this.prefix.length + 1).split('/');
    const kind = levels.length === 3 && levels[0] === 'devices' ? KIND_BY_LEVEL[levels[2]] : undefined;
    if (!topic.startsWith(`${this.prefix}/`) || !kind) return;
    this.#stats.received[kind]++;
    // An empty retained message clears a topic (a device removed from the fleet): nothing to store.
    if (payload.length === 0) return;
    let outcome: 'stored' | 'duplicate';
    try {
      const value = parseJsonPayload(payload, topic);
      const deviceId = levels[1];
      if (kind === 'status') {
        const status = parseDeviceStatus(value, topic);
        this.#checkDevice(topic, deviceId, status.deviceId);
        await this.store.recordStatus(status, receivedAt);
        outcome = 'stored';
      } else if (kind === 'progress') {
        const progress = parseDeploymentProgress(value, topic);
        this.#checkDevice(topic, deviceId, progress.deviceId);
        await this.store.recordProgress(progress, receivedAt);
        outcome = 'stored';
      } else {
        const report = parseTelemetryReport(value, topic);
        this.#checkDevice(topic, deviceId, report.deviceId);
        outcome = await this.store.recordTelemetry(report, receivedAt);
      }
    } catch (error) {
      if (isEdgerunError(error, 'EDGERUN_ERR_FLEET_PAYLOAD')) {
        this.#stats.badPayloads++;
        this.#stats.recentBad.push({ at: receivedAt, topic, reason: error.message });
        if (this.#stats.recentBad.length > 20) this.#stats.recentBad.shift();
        this.log.warn({ topic, reason: error.message }, 'monitor: bad payload ignored');
      } else {
        this.#stats.storeErrors++;
        this.log.error({ topic, err: error }, 'monitor: could not store a message');
      }
      return;
    }
    if (outcome === 'duplicate') this.#stats.duplicates++;
    else this.#stats.stored++;
  }

  /** A device may only speak for itself: the id in the payload must be the one in the topic. */
  #checkDevice(topic: string, fromTopic: string, fromPayload: string): void {
    if (fromTopic !== fromPayload) {
      throw new EdgerunError('EDGERUN_ERR_FLEET_PAYLOAD', `${topic}: deviceId '${fromPayload}' is not the topic's device '${fromTopic}'`, { topic, field: 'deviceId' });
    }
  }
}
