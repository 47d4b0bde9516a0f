/**
 * Polls the power sources at a fixed interval, records one sample per source per interval and attributes the
 * interval's energy to the model versions that ran in it.
 *
 * Attribution (docs/TELEMETRY.md): E = energy of the interval, summed over the attributed sources (from energy
 * counters where the sensor has one, else the trapezoid of the power readings at both ends); E is shared among the
 * versions active in the interval in proportion to their compute time (by inference count when no compute time
 * was reported); a version's energy per inference is its share ÷ its inferences. Idle intervals attribute nothing.
 * An interval where any attributed source had no reading attributes nothing either: a partial sum would
 * understate, and a guess would be invented.
 */
import { logger } from '../../log.ts';
import type { EnergyRecord, PowerSampleRecord, VersionActivity } from '../records.ts';
import type { PowerSource } from './types.ts';

const log = logger.child({ component: 'power' });

export interface PowerSampleSink {
  recordPower(sample: PowerSampleRecord): void;
  recordEnergy(record: EnergyRecord): void;
  /** Inferences and compute time per version since the previous call. */
  takeActivity(): VersionActivity[];
}

export interface PowerSamplerOptions {
  sources: PowerSource[];
  sink: PowerSampleSink;
  /** Default 1000 ms. */
  intervalMs?: number;
  /**
   * Source ids whose energy is attributed to inferences (default: every source). Sensors that measure parts of
   * one another (a RAPL package and a platform rail, INA3221's VDD_IN and its sub-rails) must not all be listed.
   */
  attributeSources?: string[];
  /** Subtracted from the attributed power before sharing it out, to attribute only what inference adds (default 0). */
  baselineWatts?: number;
  /** Recorded (once, as source 'none') when there are no sources. */
  noSourceReason?: string;
  /** Clocks, replaceable in tests. */
  now?: () => number;
  monotonicNow?: () => number;
}

export class PowerSampler {
  private readonly intervalMs: number;
  private readonly attributed: Set<string>;
  private readonly now: () => number;
  private readonly monotonicNow: () => number;
  private readonly previousWatts = new Map<string, number>();
  private readonly lastReason = new Map<string, string>();
  private previousMonotonic: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: PowerSamplerOptions) {
    this.intervalMs = options.intervalMs ?? 1000;
    if (!(this.intervalMs >= 10)) throw new RangeError(`power sampling interval must be at least 10 ms, got ${this.intervalMs}`);
    const ids = options.sources.map((s) => s.id);
    for (const id of options.attributeSources ?? []) {
      if (!ids.includes(id)) throw new RangeError(`attributeSources names '${id}', which is not a detected power source (${ids.join(', ') || 'none'})`);
    }
    this.attributed = new Set(options.attributeSources ?? ids);
    this.now = options.now ?? Date.now;
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
  }

  /** Primes the sources (the first reading of an energy counter has no value) and starts the timer. */
  async start(): Promise<void> {
    if (this.options.sources.length === 0) {
      this.options.sink.recordPower({ at: this.now(), source: 'none', watts: null, reason: this.options.noSourceReason ?? 'no power sensor found', energyJ: null, intervalMs: 0 });
      return;
    }
    await this.prime();
    this.timer = setInterval(() => {
      // A slow sensor (nvidia-smi) may outlast an interval: skip the tick rather than pile reads up.
      if (this.running) return;
      this.running = this.sampleOnce().catch((error) => log.error({ err: error }, 'power sampling failed')).finally(() => { this.running = undefined; });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  async prime(): Promise<void> {
    const monotonic = this.monotonicNow();
    const readings = await Promise.all(this.options.sources.map((s) => s.read(monotonic).catch(() => null)));
    readings.forEach((r, i) => {
      if (r && r.watts !== null) this.previousWatts.set(this.options.sources[i].id, r.watts);
    });
    this.previousMonotonic = monotonic;
    // Activity before the first interval has no energy to go with it.
    this.options.sink.takeActivity();
  }

  /** Reads every source once and records the interval since the previous reading. */
  async sampleOnce(): Promise<void> {
    if (this.previousMonotonic === undefined) return this.prime();
    const at = this.now();
    const monotonic = this.monotonicNow();
    const intervalMs = monotonic - this.previousMonotonic;
    this.previousMonotonic = monotonic;
    const readings = await Promise.all(this.options.sources.map((s) => s.read(monotonic).catch((error: Error) => ({ watts: null, reason: `reading failed: ${error.message}` }))));
    let attributedJ = 0;
    let complete = this.attributed.size > 0;
    readings.forEach((reading, i) => {
      const source = this.options.sources[i].id;
      if (reading.watts === null) {
        this.previousWatts.delete(source);
        if (this.attributed.has(source)) complete = false;
        // An outage is recorded when it starts or its reason changes, not every tick.
        if (this.lastReason.get(source) !== reading.reason) {
          this.lastReason.set(source, reading.reason);
          this.options.sink.recordPower({ at, source, watts: null, reason: reading.reason, energyJ: null, intervalMs });
        }
        return;
      }
      this.lastReason.delete(source);
      const before = this.previousWatts.get(source);
      this.previousWatts.set(source, reading.watts);
      // A counter gives the interval's energy; an instantaneous reading is integrated with the previous one (trapezoid).
      const energyJ = reading.energyJ ?? (before === undefined ? null : ((before + reading.watts) / 2) * (intervalMs / 1000));
      if (energyJ === null && this.attributed.has(source)) complete = false;
      if (energyJ !== null && this.attributed.has(source)) attributedJ += energyJ;
      this.options.sink.recordPower({ at, source, watts: reading.watts, energyJ, intervalMs });
    });
    this.attribute(at, intervalMs, complete ? attributedJ : null);
  }

  private attribute(at: number, intervalMs: number, energyJ: number | null): void {
    const activity = this.options.sink.takeActivity().filter((a) => a.inferences > 0 || a.computeMs > 0);
    if (energyJ === null || activity.length === 0) return;
    const baseline = (this.options.baselineWatts ?? 0) * (intervalMs / 1000);
    const shared = Math.max(0, energyJ - baseline);
    const totalCompute = activity.reduce((sum, a) => sum + a.computeMs, 0);
    const totalInferences = activity.reduce((sum, a) => sum + a.inferences, 0);
    for (const a of activity) {
      const share = totalCompute > 0 ? a.computeMs / totalCompute : a.inferences / totalInferences;
      this.options.sink.recordEnergy({ at, intervalMs, model: a.model, version: a.version, inferences: a.inferences, energyJ: shared * share });
    }
  }
}
