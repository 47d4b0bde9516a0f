/**
 * Telemetry as a daemon component: opens the SQLite database (a damaged file is moved aside, never a reason not
 * to serve), the batched recorder, power sampling and retention; stops last, flushing what is queued. With
 * telemetry off, the sink discards.
 */
import type { ResolvedConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../telemetry/sink.ts';
import { Telemetry } from '../telemetry/telemetry.ts';
import type { Component } from './lifecycle.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** The sink when telemetry is off: records go nowhere, at no cost. */
const DISCARD: TelemetrySink = {
  recordRequest(_record: RequestRecord) { /* telemetry is off */ },
  recordEvent(_event: LifecycleEvent) { /* telemetry is off */ },
  recordAccuracy(_record: AccuracyRecord) { /* telemetry is off */ },
};

export class TelemetryComponent implements Component {
  readonly name = 'telemetry';
  #telemetry: Telemetry | undefined;

  constructor(private readonly config: ResolvedConfig, private readonly log: Logger) {}

  /** The sink to record into (the recorder once started; a discarding sink when telemetry is off). */
  get sink(): TelemetrySink { return this.#telemetry?.recorder ?? DISCARD; }

  /** The open telemetry (database, store for summaries), when enabled and started. */
  get telemetry(): Telemetry | undefined { return this.#telemetry; }

  async start(): Promise<void> {
    const t = this.config.telemetry;
    if (!t.enabled) {
      this.log.info('telemetry is off (telemetry.enabled: false)');
      return;
    }
    const p = this.config.power;
    this.#telemetry = await Telemetry.open({
      file: t.dbFile,
      onCorrupt: 'quarantine',
      recorder: { flushIntervalMs: t.flushIntervalMs, batchSize: t.batchSize, maxQueue: t.maxQueue },
      retention: {
        rawMaxAgeMs: t.retention.rawMaxAgeHours * HOUR_MS,
        minuteMaxAgeMs: t.retention.minuteMaxAgeDays * DAY_MS,
        hourMaxAgeMs: t.retention.hourMaxAgeDays * DAY_MS,
        eventsMaxAgeMs: t.retention.eventsMaxAgeDays * DAY_MS,
        maxBytes: t.retention.maxBytes,
        intervalMs: t.retention.intervalMs,
      },
      power: p.sources.length === 0 ? false : { intervalMs: p.intervalMs, sysfsRoot: p.sysfsRoot, nvidiaSmi: p.nvidiaSmi, kinds: p.sources },
    });
    this.#telemetry.recorder.recordEvent({ at: Date.now(), kind: 'start', details: { pid: process.pid } });
  }

  async stop(): Promise<void> {
    const telemetry = this.#telemetry;
    if (!telemetry) return;
    telemetry.recorder.recordEvent({ at: Date.now(), kind: 'stop', details: { pid: process.pid } });
    // close() flushes the queue in one last transaction before closing the database.
    await telemetry.close();
  }
}
