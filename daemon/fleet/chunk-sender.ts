/**
 * Sends a transfer's chunks on its chunk topics, QoS 1, with at most `window` publishes awaiting PUBACK: a chunk
 * is read from disk only when a slot frees, so memory stays at window × chunkBytes whatever the package size,
 * and a broker restart leaves at most `window` chunks in mqtt.js's store to resend. Chunks to send form one set
 * (lowest index first): the first pass queues them all, a ChunkRequest queues its ranges, and a chunk asked for
 * while already queued is sent once — so fifty devices asking for the same missing chunk cost one publish.
 * A limit (setLimit, from the devices' acknowledgements) holds back every chunk at or above it.
 */
import type { MqttClient } from 'mqtt';
import { logger } from '../log.ts';
import { encodeChunkFrame } from './chunk-frame.ts';
import type { PackageSource } from './publisher-package.ts';
import { CHUNK_HEADER_BYTES, type DeploymentManifest, topics } from './protocol.ts';

/** PUBACK-pending publishes; Mosquitto's default receive maximum is 20, and the broker's own value caps it. */
export const DEFAULT_SEND_WINDOW = 16;

export interface ChunkSenderStats {
  /** Chunk publishes completed (PUBACK received), first sends and resends. */
  sentChunks: number;
  /** Data bytes (frame headers excluded) of every completed publish. */
  sentBytes: number;
  /** Data bytes of publishes of chunks that had been sent before. */
  resentBytes: number;
  /** Chunks queued by ChunkRequests (a chunk already queued is not counted again). */
  requestedChunks: number;
  /** Data bytes of every chunk PUBLISH written to the socket, mqtt.js's retransmissions after a reconnect included. */
  wireBytes: number;
}

export class ChunkSender {
  private readonly queued: Uint8Array;
  private readonly sendCount: Uint32Array;
  private queuedCount = 0;
  private cursor = 0;
  private inFlight = 0;
  private failure: Error | null = null;
  private readonly log = logger.child({ component: 'fleet-chunk-sender' });
  private paused = false;
  /** Chunks at or above this index wait (pacing); no limit until setLimit. */
  private limit = Number.POSITIVE_INFINITY;
  private readonly chunkTopicPrefix: string;
  readonly stats: ChunkSenderStats = { sentChunks: 0, sentBytes: 0, resentBytes: 0, requestedChunks: 0, wireBytes: 0 };

  constructor(
    private readonly client: MqttClient,
    private readonly prefix: string,
    private readonly manifest: DeploymentManifest,
    private readonly source: PackageSource,
    private readonly window: number = DEFAULT_SEND_WINDOW,
    /** Called once when a chunk cannot be read or published; nothing more is sent after that. */
    private readonly onFailure: (error: Error) => void = () => undefined,
  ) {
    this.queued = new Uint8Array(manifest.chunkCount);
    this.sendCount = new Uint32Array(manifest.chunkCount);
    const chunkTopic = topics.chunk(prefix, manifest.transferId, 0);
    this.chunkTopicPrefix = chunkTopic.slice(0, chunkTopic.length - 1);
    client.on('packetsend', this.countWireBytes);
  }

  private readonly countWireBytes = (packet: { cmd: string; topic?: string; payload?: Buffer | string }): void => {
    if (packet.cmd !== 'publish' || !packet.topic?.startsWith(this.chunkTopicPrefix) || !packet.payload) return;
    this.stats.wireBytes += Math.max(0, packet.payload.length - CHUNK_HEADER_BYTES);
  };

  /** Stops starting new publishes (those awaiting PUBACK complete) until resume(). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  /** Only chunks below `limit` may be published from now on; raising it sends what it held back. */
  setLimit(limit: number): void {
    const raised = limit > this.limit;
    this.limit = limit;
    if (raised) this.pump();
  }

  /** True when chunks are queued but all of them wait for the limit to rise. */
  get heldBack(): boolean {
    return this.queuedCount > 0 && this.nextQueued() >= this.limit;
  }

  /** Stops counting; queued chunks are dropped. */
  close(): void {
    this.client.off('packetsend', this.countWireBytes);
    this.queued.fill(0);
    this.queuedCount = 0;
  }

  /** Queues every chunk (the first pass). */
  queueAll(): void {
    this.queueRange(0, this.manifest.chunkCount - 1);
  }

  /** Queues the inclusive ranges a device asked for (indices outside the transfer are ignored); returns how many were newly queued. */
  queueRequested(ranges: readonly (readonly [number, number])[]): number {
    let added = 0;
    for (const [first, last] of ranges) added += this.queueRange(first, last);
    this.stats.requestedChunks += added;
    return added;
  }

  private queueRange(first: number, last: number): number {
    const from = Math.max(0, first);
    const to = Math.min(this.manifest.chunkCount - 1, last);
    let added = 0;
    for (let index = from; index <= to; index++) {
      if (this.queued[index]) continue;
      this.queued[index] = 1;
      added++;
    }
    if (added > 0) {
      this.queuedCount += added;
      this.cursor = Math.min(this.cursor, from);
      this.pump();
    }
    return added;
  }

  private nextQueued(): number {
    while (this.cursor < this.queued.length && !this.queued[this.cursor]) this.cursor++;
    return this.cursor;
  }

  private pump(): void {
    while (!this.failure && !this.paused && this.inFlight < this.window && this.queuedCount > 0) {
      const index = this.nextQueued();
      if (index >= this.limit) break;
      this.queued[index] = 0;
      this.queuedCount--;
      this.inFlight++;
      this.send(index).then(() => {
        this.inFlight--;
        this.pump();
      }, (error: Error) => {
        this.inFlight--;
        if (this.failure) return;
        this.failure = error;
        this.log.error({ err: error, transferId: this.manifest.transferId, chunk: index }, 'chunk send failed');
        this.onFailure(error);
      });
    }
  }

  private async send(index: number): Promise<void> {
    const { chunkBytes, chunkCount, transferId } = this.manifest;
    const data = await this.source.read(index * chunkBytes, chunkBytes);
    const frame = encodeChunkFrame(index, chunkCount, data);
    await this.client.publishAsync(topics.chunk(this.prefix, transferId, index), frame, { qos: 1 });
    this.stats.sentChunks++;
    this.stats.sentBytes += data.length;
    if (this.sendCount[index]! > 0) this.stats.resentBytes += data.length;
    this.sendCount[index]!++;
  }
}
