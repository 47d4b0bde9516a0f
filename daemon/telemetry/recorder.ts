/**
 * The SQLite TelemetrySink. record* only validates and queues (no I/O on the caller's path); a timer, a full
 * batch or a lifecycle event schedules a flush on a later turn of the event loop, which writes the queued records
 * and their minute rollups in one transaction. The queue is bounded: when the writer falls behind, the oldest
 * records are dropped and counted.
 */
import { logger } from '../log.ts';
import { BoundedQueue } from './bounded-queue.ts';
import type { EnergyRecord, PowerSampleRecord, VersionActivity } from './records.ts';
import { RollupAccumulator, RollupWriter } from './rollups.ts';
import type { TelemetryDb } from './schema.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from './sink.ts';

const log = logger.child({ component: 'telemetry' });

export interface RecorderOptions {
  /** Flush at least this often (default 1000 ms). */
  flushIntervalMs?: number;
  /** Records per transaction; a queue this long schedules a flush at once (default 2000). */
  batchSize?: number;
  /** Queue capacity; beyond it the oldest records are dropped (default 100 000). */
  maxQueue?: number;
  /** Failed writes of one batch are retried this many times before the batch is dropped (default 3). */
  maxWriteAttempts?: number;
}

export interface RecorderStats {
  queued: number;
  written: number;
  /** Records lost: pushed out of a full queue, dropped after failed writes, or recorded after close(). */
  dropped: number;
  /** Records refused at record time (non-finite numbers, empty names). */
  invalid: number;
  flushes: number;
  writeErrors: number;
  lastError?: string;
}

type Queued =
  | { type: 'request'; record: RequestRecord }
  | { type: 'event'; event: LifecycleEvent; details: string | null }
  | { type: 'accuracy'; record: AccuracyRecord }
  | { type: 'power'; sample: PowerSampleRecord }
  | { type: 'energy'; record: EnergyRecord };

export class TelemetryRecorder implements TelemetrySink {
  private readonly queue: BoundedQueue<Queued>;
  private readonly options: Required<RecorderOptions>;
  private readonly statements;
  private readonly rollupWriter: RollupWriter;
  private readonly activity = new Map<string, VersionActivity>();
  private readonly counters = { written: 0, dropped: 0, invalid: 0, flushes: 0, writeErrors: 0 };
  private lastError: string | undefined;
  private lastErrorLoggedAt = 0;
  private pending: { batch: Queued[]; attempts: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly db: TelemetryDb, options: RecorderOptions = {}) {
    this.options = {
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      batchSize: options.batchSize ?? 2000,
      maxQueue: options.maxQueue ?? 100_000,
      maxWriteAttempts: options.maxWriteAttempts ?? 3,
    };
    this.queue = new BoundedQueue(this.options.maxQueue);
    this.rollupWriter = new RollupWriter(db);
    this.statements = {
      request: db.prepare(`INSERT INTO requests (at, model, version, engine, queue_ms, compute_ms, total_ms, batch, ok, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      event: db.prepare('INSERT INTO events (at, kind, model, version, details) VALUES (?, ?, ?, ?, ?)'),
      accuracy: db.prepare(`INSERT INTO accuracy (at, model, version, kind, agreement, samples, baseline_version)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      power: db.prepare('INSERT INTO power_samples (at, source, watts, reason, energy_j, interval_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      energy: db.prepare('INSERT INTO energy (at, interval_ms, model, version, inferences, energy_j) VALUES (?, ?, ?, ?, ?, ?)'),
    };
    this.timer = setInterval(() => this.flushSome(), this.options.flushIntervalMs);
    this.timer.unref();
  }

  recordRequest(record: RequestRecord): void {
    if (!validRequest(record)) return this.reject('request', record.model);
    const key = `${record.model}\u0000${record.version}`;
    const seen = this.activity.get(key) ?? { model: record.model, version: record.version, inferences: 0, computeMs: 0 };
    if (record.ok) seen.inferences += record.batchSize;
    seen.computeMs += record.computeMs;
    this.activity.set(key, seen);
    this.enqueue({ type: 'request', record });
  }

  recordEvent(event: LifecycleEvent): void {
    if (!Number.isFinite(event.at) || !event.kind) return this.reject('event', event.model);
    // Serialised now: details that cannot be (a cycle, a BigInt) must not fail a whole batch later.
    this.enqueue({ type: 'event', event, details: serializeDetails(event.details) });
    // Lifecycle events are rare and matter after a crash: write them on the next turn, durably.
    this.scheduleFlush();
  }

  recordAccuracy(record: AccuracyRecord): void {
    const valid = Number.isFinite(record.at) && record.model && record.version && (record.kind === 'gate' || record.kind === 'shadow')
      && record.agreement >= 0 && record.agreement <= 1 && Number.isInteger(record.samples) && record.samples >= 0;
    if (!valid) return this.reject('accuracy', record.model);
    this.enqueue({ type: 'accuracy', record });
  }

  recordPower(sample: PowerSampleRecord): void {
    const valid = Number.isFinite(sample.at) && sample.source && Number.isFinite(sample.intervalMs)
      && (sample.watts === null ? Boolean(sample.reason) : Number.isFinite(sample.watts))
      && (sample.energyJ === null || Number.isFinite(sample.energyJ));
    if (!valid) return this.reject('power', sample.source);
    this.enqueue({ type: 'power', sample });
  }

  recordEnergy(record: EnergyRecord): void {
    const valid = Number.isFinite(record.at) && record.model && record.version && Number.isFinite(record.energyJ)
      && Number.isInteger(record.inferences) && record.inferences >= 0;
    if (!valid) return this.reject('energy', record.model);
    this.enqueue({ type: 'energy', record });
  }

  /** Inferences and compute time per version since the previous call (the power sampler's attribution basis). */
  takeActivity(): VersionActivity[] {
    const result = [...this.activity.values()];
    this.activity.clear();
    return result;
  }

  stats(): RecorderStats {
    return { queued: this.queue.length + (this.pending?.batch.length ?? 0), ...this.counters, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  /** Writes everything queued now (synchronously). For shutdown and tests; the daemon otherwise never waits on it. */
  flush(): void {
    // A failed batch stays pending and is retried here until written or dropped (maxWriteAttempts), so this ends.
    while (this.flushOnce() || this.pending !== undefined) { /* next batch */ }
  }

  /** Stops the timer and writes what is queued. Later records are counted as dropped. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private enqueue(item: Queued): void {
    if (this.closed) {
      this.counters.dropped++;
      return;
    }
    if (this.queue.push(item)) this.counters.dropped++;
    if (this.queue.length >= this.options.batchSize) this.scheduleFlush();
  }

  private reject(kind: string, name: string | undefined): void {
    this.counters.invalid++;
    this.logRateLimited(`refused an invalid ${kind} record${name ? ` for ${name}` : ''}`);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushSome();
    });
  }

  /** One batch per turn of the event loop; more batches are left to later turns so requests keep flowing. */
  private flushSome(): void {
    if (this.closed) return;
    if (this.flushOnce() && this.queue.length > 0) this.scheduleFlush();
  }

  /** Writes one batch (a pending retry first). Returns false when there was nothing to write or the write failed. */
  private flushOnce(): boolean {
    const retry = this.pending;
    const batch = retry ? retry.batch : this.queue.take(this.options.batchSize);
    if (batch.length === 0) return false;
    try {
      this.writeBatch(batch);
      this.pending = undefined;
      this.counters.written += batch.length;
      this.counters.flushes++;
      return true;
    } catch (error) {
      this.counters.writeErrors++;
      this.lastError = (error as Error).message;
      const attempts = (retry?.attempts ?? 0) + 1;
      if (attempts >= this.options.maxWriteAttempts) {
        this.counters.dropped += batch.length;
        this.pending = undefined;
        this.logRateLimited(`telemetry write failed ${attempts} times, dropped ${batch.length} records: ${this.lastError}`, true);
      } else {
        this.pending = { batch, attempts };
        this.logRateLimited(`telemetry write failed (attempt ${attempts}), will retry: ${this.lastError}`, true);
      }
      return false;
    }
  }

  private writeBatch(batch: Queued[]): void {
    const durable = batch.some((item) => item.type === 'event');
    // synchronous can only change outside a transaction; FULL makes this commit (and all before it) survive power loss.
    if (durable) this.db.pragma('synchronous = FULL');
    try {
      this.db.transaction(() => this.insert(batch))();
    } finally {
      if (durable) this.db.pragma('synchronous = NORMAL');
    }
  }

  private insert(batch: Queued[]): void {
    const s = this.statements;
    const rollups = new RollupAccumulator();
    for (const item of batch) {
      switch (item.type) {
        case 'request': {
          const r = item.record;
          s.request.run(r.at, r.model, r.version, r.engine, r.queueMs, r.computeMs, r.totalMs, r.batchSize, r.ok ? 1 : 0, r.ok ? null : (r.error ?? 'error'));
          rollups.addRequest(r);
          break;
        }
        case 'event': {
          const e = item.event;
          s.event.run(e.at, e.kind, e.model ?? null, e.version ?? null, item.details);
          break;
        }
        case 'accuracy': {
          const a = item.record;
          s.accuracy.run(a.at, a.model, a.version, a.kind, a.agreement, a.samples, a.baselineVersion ?? null);
          break;
        }
        case 'power': {
          const p = item.sample;
          s.power.run(p.at, p.source, p.watts, p.watts === null ? p.reason : null, p.energyJ, Math.round(p.intervalMs));
          break;
        }
        case 'energy': {
          const e = item.record;
          s.energy.run(e.at, Math.round(e.intervalMs), e.model, e.version, e.inferences, e.energyJ);
          rollups.addEnergy(e.at, e.model, e.version, e.energyJ, e.inferences);
          break;
        }
      }
    }
    this.rollupWriter.apply(rollups.deltas.values());
  }

  private logRateLimited(message: string, error = false): void {
    const now = Date.now();
    if (now - this.lastErrorLoggedAt < 60_000) return;
    this.lastErrorLoggedAt = now;
    if (error) log.error(message);
    else log.warn(message);
  }
}

function serializeDetails(details: Record<string, unknown> | undefined): string | null {
  if (details === undefined) return null;
  try {
    return JSON.stringify(details);
  } catch (error) {
    return JSON.stringify({ unserializable: (error as Error).message });
  }
}

function validRequest(r: RequestRecord): boolean {
  return Number.isFinite(r.at) && Boolean(r.model) && Boolean(r.version) && typeof r.engine === 'string'
    && Number.isFinite(r.queueMs) && Number.isFinite(r.computeMs) && Number.isFinite(r.totalMs)
    && Number.isInteger(r.batchSize) && r.batchSize >= 0;
}
