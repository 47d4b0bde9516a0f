/**
 * One accepted deployment from its first chunk to its outcome: chunks go to the TransferReceiver, missing ones
 * are asked for again (after chunkRequestTimeoutMs without a chunk, doubling up to 8×; soon after a bad chunk),
 * progress is published at every state change and every 5 % of the bytes, the stored progress is acknowledged to
 * the sender (TransferAck, which paces the chunk stream on it) every ackIntervalChunks, and the complete transfer is
 * verified (every file hash), assembled, installed into the model store and handed to the ModelManager's
 * hot-swap with its accuracy gate. Any failure leaves the running version serving and is reported with its code.
 */
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { readManifest } from '../package/read-package.ts';
import { compareVersions } from '../package/versions.ts';
import type { AgentContext } from './agent-context.ts';
import { chunkIndexOfTopic, decodeChunkFrame } from './chunk-frame.ts';
import { ackIntervalChunks, type DeploymentManifest, type DeploymentState, topics } from './protocol.ts';
import { TransferReceiver } from './transfer-receiver.ts';

const PROGRESS_STEP_PERCENT = 5;
const MAX_BACKOFF_FACTOR = 8;
/** A bad chunk is asked for again this soon (bad chunks that arrive together go in one request). */
const BAD_CHUNK_REQUEST_DELAY_MS = 100;

function describe(error: unknown): { code: string; reason: string } {
  if (isEdgerunError(error)) return { code: error.code, reason: error.message };
  return { code: 'EDGERUN_ERR_FLEET_TRANSFER', reason: error instanceof Error ? error.message : String(error) };
}

export class ActiveDeployment {
  state: DeploymentState = 'accepted';
  private idleTimer: NodeJS.Timeout | undefined;
  private badChunkTimer: NodeJS.Timeout | undefined;
  private readonly badChunks = new Set<number>();
  private backoff = 1;
  private lastStep = -1;
  private storedSinceAck = 0;
  private readonly ackEvery: number;
  private finishing = false;
  private ended = false;
  /** Chunks refused (bad frame, wrong size) and duplicates ignored, for the log and tests. */
  readonly counts = { stored: 0, duplicates: 0, refused: 0, requests: 0 };
  private readonly chunkTopic: string;

  constructor(
    private readonly ctx: AgentContext,
    readonly manifest: DeploymentManifest,
    private readonly envelope: string,
    private readonly receiver: TransferReceiver,
  ) {
    this.chunkTopic = topics.chunkWildcard(ctx.prefix, manifest.transferId);
    this.ackEvery = ackIntervalChunks(manifest);
  }

  get deploymentId(): string { return this.manifest.deploymentId; }
  get transferId(): string { return this.manifest.transferId; }

  /** Subscribes to the chunks and reports; a resumed transfer that is already complete goes straight to install. */
  async start(resumed: boolean): Promise<void> {
    this.ctx.active.set(this.transferId, this);
    const state = resumed && this.receiver.receivedChunks > 0 ? 'downloading' : 'accepted';
    if (this.receiver.complete) {
      this.setState(state);
      void this.ctx.enqueue(() => this.finish());
      return;
    }
    // Subscribed before reporting: a sender starts the chunks when it sees the report.
    await this.ctx.subscribe(this.chunkTopic);
    // Before the report: the sender starts the chunks on the report, already pacing on this device.
    this.acknowledge();
    // Chunks already flowing (another device's transfer of the same deployment) may have moved it on.
    if (this.counts.stored === 0) this.setState(state);
    if (this.ctx.connected() && !this.finishing) this.armIdleTimer();
  }

  /**
   * Asking for chunks only makes sense while connected: a request queued offline would be answered after the
   * reconnect, together with the chunks the broker kept for this device's session, and they would come twice.
   */
  connectionChanged(connected: boolean): void {
    if (this.ended || this.finishing) return;
    if (connected) {
      this.backoff = 1;
      // The sender waits on this device's progress; after an outage it learns where the device stands.
      this.acknowledge();
      this.armIdleTimer();
    } else {
      this.clearTimers();
    }
  }

  /**
   * Persists the state; a database that cannot be written (a full disk) is logged, not thrown, so the outcome is
   * still reported and the chunk handler never throws into mqtt.js.
   */
  private record(code?: string, reason?: string): void {
    const { manifest } = this;
    try {
      this.ctx.state.record({
        deploymentId: manifest.deploymentId, model: manifest.model.name, version: manifest.model.version, transferId: manifest.transferId,
        state: this.state, envelope: this.envelope, code: code ?? null, reason: reason ?? null,
      });
    } catch (error) {
      this.ctx.log.error({ deploymentId: this.deploymentId, state: this.state, err: (error as Error).message }, 'could not record the deployment state');
    }
  }

  private report(code?: string, reason?: string): void {
    const { manifest, receiver } = this;
    this.ctx.publishProgress({
      deploymentId: manifest.deploymentId,
      ...(manifest.rolloutId ? { rolloutId: manifest.rolloutId } : {}),
      model: manifest.model,
      state: this.state,
      receivedChunks: receiver.receivedChunks,
      chunkCount: manifest.chunkCount,
      receivedBytes: receiver.receivedBytes,
      totalBytes: manifest.totalBytes,
      ...(code ? { code } : {}),
      ...(reason ? { reason } : {}),
    });
  }

  private setState(state: DeploymentState, code?: string, reason?: string): void {
    this.state = state;
    this.record(code, reason);
    this.report(code, reason);
  }

  /** Called synchronously from the MQTT message handler: the chunk is on disk before the PUBACK goes out. */
  onChunk(topic: string, payload: Uint8Array): void {
    if (this.ended || this.finishing) return;
    try {
      const frame = decodeChunkFrame(payload, topic);
      if (this.receiver.receive(frame) === 'duplicate') {
        this.counts.duplicates++;
        return;
      }
    } catch (error) {
      const { code, reason } = describe(error);
      if (!isEdgerunError(error, 'EDGERUN_ERR_FLEET_TRANSFER') || error.context.storage === true) {
        this.finishing = true;
        this.clearTimers();
        void this.ctx.enqueue(() => this.fail(code, reason));
        return;
      }
      this.counts.refused++;
      this.ctx.log.warn({ transferId: this.transferId, topic, reason }, 'refused a chunk; it will be asked for again');
      const index = chunkIndexOfTopic(topic);
      if (index !== undefined && index < this.manifest.chunkCount) this.askAgainSoon(index);
      return;
    }
    this.counts.stored++;
    this.backoff = 1;
    if (++this.storedSinceAck >= this.ackEvery) this.acknowledge();
    const step = Math.floor((this.receiver.receivedBytes / this.manifest.totalBytes) * 100 / PROGRESS_STEP_PERCENT);
    if (this.state === 'accepted') {
      this.lastStep = step;
      this.setState('downloading');
    } else if (step !== this.lastStep) {
      this.lastStep = step;
      this.record();
      this.report();
    }
    if (this.receiver.complete) {
      this.finishing = true;
      this.clearTimers();
      void this.ctx.enqueue(() => this.finish());
      return;
    }
    if (this.ctx.connected()) this.armIdleTimer();
  }

  private askAgainSoon(index: number): void {
    this.badChunks.add(index);
    this.badChunkTimer ??= setTimeout(() => {
      this.badChunkTimer = undefined;
      const indices = [...this.badChunks].sort((a, b) => a - b);
      this.badChunks.clear();
      const ranges = indices.filter((i) => !this.receiver.has(i)).map((i): [number, number] => [i, i]);
      if (ranges.length > 0) this.request(ranges);
    }, Math.min(BAD_CHUNK_REQUEST_DELAY_MS, this.ctx.chunkRequestTimeoutMs));
  }

  private request(ranges: [number, number][]): void {
    this.counts.requests++;
    this.ctx.log.info({ transferId: this.transferId, ranges: ranges.length, first: ranges[0] }, 'asking for missing chunks');
    this.ctx.publishChunkRequest(this.transferId, ranges);
    this.acknowledge();
  }

  private acknowledge(): void {
    this.storedSinceAck = 0;
    this.ctx.publishTransferAck(this.transferId, this.receiver.contiguousChunks, this.receiver.receivedChunks);
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.ended || this.finishing) return;
      const ranges = this.receiver.missingRanges();
      if (ranges.length > 0) this.request(ranges);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_FACTOR);
      this.armIdleTimer();
    }, this.ctx.chunkRequestTimeoutMs * this.backoff);
  }

  private clearTimers(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.badChunkTimer);
    this.idleTimer = undefined;
    this.badChunkTimer = undefined;
  }

  /** verifying → installing → active (or failed): runs on the agent's queue. */
  private async finish(): Promise<void> {
    if (this.ended) return;
    this.finishing = true;
    this.clearTimers();
    await this.ctx.unsubscribe(this.chunkTopic).catch(() => undefined);
    const { name, version } = this.manifest.model;
    try {
      this.setState('verifying');
      const packageDir = await this.receiver.assemble();
      const inside = (await readManifest(packageDir)).manifest;
      if (inside.name !== name || compareVersions(inside.version, version) !== 0) {
        throw new EdgerunError('EDGERUN_ERR_FLEET_REJECTED',
          `deployment ${this.deploymentId}: the package is ${inside.name} ${inside.version} but the signed manifest names ${name} ${version}`,
          { deploymentId: this.deploymentId });
      }
      this.setState('installing');
      await this.ctx.store().install(packageDir);
      const info = await this.ctx.models().deployVersion(name, version);
      if (info.activeVersion === undefined || compareVersions(info.activeVersion, version) !== 0) {
        const entry = info.versions.find((v) => compareVersions(v.version, version) === 0);
        const code = entry?.gate?.status === 'failed' ? 'EDGERUN_ERR_GATE_FAILED' : 'EDGERUN_ERR_ENGINE';
        await this.end('failed', code, `version ${version} was installed but not swapped in (${info.activeVersion ?? 'nothing'} serves): ${entry?.reason ?? 'unknown reason'}`);
        return;
      }
      try {
        this.ctx.state.raiseFloor(name, version);
      } catch (error) {
        // The version serves; only the replay floor could not be written (the deploymentId guard still holds).
        this.ctx.log.error({ model: name, version, err: (error as Error).message }, 'could not record the version floor');
      }
      await this.end('active');
    } catch (error) {
      const { code, reason } = describe(error);
      await this.end('failed', code, reason);
    }
  }

  private async fail(code: string, reason: string): Promise<void> {
    if (this.ended) return;
    await this.ctx.unsubscribe(this.chunkTopic).catch(() => undefined);
    await this.end('failed', code, reason);
  }

  /** Stops the transfer for good (abort command, superseded) and removes its staging files. */
  async abort(reason: string): Promise<void> {
    if (this.ended) return;
    await this.ctx.unsubscribe(this.chunkTopic).catch(() => undefined);
    await this.end('aborted', 'EDGERUN_ERR_FLEET_REJECTED', reason);
  }

  /** Leaves the staging files for the next start (daemon shutdown). */
  suspend(): void {
    this.clearTimers();
    this.receiver.close();
    this.ctx.active.delete(this.transferId);
  }

  private async end(state: DeploymentState, code?: string, reason?: string): Promise<void> {
    this.ended = true;
    this.clearTimers();
    this.receiver.close();
    this.ctx.active.delete(this.transferId);
    const log = state === 'active' ? this.ctx.log.info.bind(this.ctx.log) : this.ctx.log.warn.bind(this.ctx.log);
    log({ deploymentId: this.deploymentId, model: this.manifest.model, state, code, reason, counts: this.counts }, `deployment ${state}`);
    // Recorded before the staging files go (a crash in between must not resume the transfer), and reported
    // after, so whoever sees the outcome sees the disk as it stays.
    this.state = state;
    this.record(code, reason);
    await TransferReceiver.remove(this.ctx.transfersDir, this.transferId).catch((error: unknown) =>
      this.ctx.log.warn({ transferId: this.transferId, err: error }, 'could not remove the staging files'));
    this.report(code, reason);
    this.ctx.publishStatus();
  }
}
