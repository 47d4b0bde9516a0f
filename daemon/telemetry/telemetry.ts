/**
 * Telemetry as one daemon component: the database, the batched recorder (the TelemetrySink), the read store, the
 * power sampler and the retention timer, started and stopped together.
 */
import { logger } from '../log.ts';
import { detectPowerSources, noSourceReason } from './power/detect.ts';
import { PowerSampler } from './power/sampler.ts';
import type { DetectResult, PowerSourceKind } from './power/types.ts';
import { TelemetryRecorder, type RecorderOptions } from './recorder.ts';
import { DEFAULT_RETENTION, runRetention, type RetentionPolicy } from './retention.ts';
import { openOrQuarantine, openTelemetryDb, type TelemetryDb } from './schema.ts';
import { TelemetryStore } from './store.ts';

const log = logger.child({ component: 'telemetry' });

export interface PowerOptions {
  /** Default 1000 ms. */
  intervalMs?: number;
  sysfsRoot?: string;
  /** nvidia-smi command; null skips NVIDIA. */
  nvidiaSmi?: string | null;
  kinds?: PowerSourceKind[];
  attributeSources?: string[];
  baselineWatts?: number;
}

export interface TelemetryOptions {
  file: string;
  recorder?: RecorderOptions;
  /** false disables retention (tests, or an external job). */
  retention?: (Partial<RetentionPolicy> & { intervalMs?: number }) | false;
  /** false disables power sampling. */
  power?: PowerOptions | false;
  /** 'quarantine' moves a damaged database aside and starts a new one; 'throw' (default) fails. */
  onCorrupt?: 'throw' | 'quarantine';
}

export class Telemetry {
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRun: Promise<unknown> | undefined;
  private closed = false;

  private constructor(
    readonly db: TelemetryDb,
    readonly recorder: TelemetryRecorder,
    readonly store: TelemetryStore,
    readonly power: DetectResult | undefined,
    private readonly sampler: PowerSampler | undefined,
    private readonly retention: (RetentionPolicy & { intervalMs: number }) | undefined,
  ) {}

  /** Opens the database and starts sampling and retention. Failures to open are EDGERUN_ERR_TELEMETRY. */
  static async open(options: TelemetryOptions): Promise<Telemetry> {
    const db = options.onCorrupt === 'quarantine'
      ? openOrQuarantine(options.file, (movedTo, error) => log.error({ file: options.file, movedTo }, `damaged telemetry database moved aside: ${error.message}`))
      : openTelemetryDb(options.file, { check: 'quick' });
    const recorder = new TelemetryRecorder(db, options.recorder);
    let power: DetectResult | undefined;
    let sampler: PowerSampler | undefined;
    try {
      if (options.power !== false) {
        const p = options.power ?? {};
        power = await detectPowerSources({ sysfsRoot: p.sysfsRoot, nvidiaSmi: p.nvidiaSmi, kinds: p.kinds });
        sampler = new PowerSampler({
          sources: power.sources, sink: recorder, intervalMs: p.intervalMs, attributeSources: p.attributeSources,
          baselineWatts: p.baselineWatts, noSourceReason: noSourceReason(power),
        });
        log.info({ sources: power.sources.map((s) => s.id), missing: power.missing }, power.sources.length ? 'power sources found' : 'no power sources: power recorded as unavailable');
        await sampler.start();
      }
    } catch (error) {
      recorder.close();
      db.close();
      throw error;
    }
    const retention = options.retention === false ? undefined : { ...DEFAULT_RETENTION, intervalMs: 5 * 60_000, ...options.retention };
    const telemetry = new Telemetry(db, recorder, new TelemetryStore(db), power, sampler, retention);
    telemetry.startRetention();
    return telemetry;
  }

  /** Runs retention now (also run on a timer). */
  async runRetention(now = Date.now()) {
    if (!this.retention) return undefined;
    this.recorder.flush();
    return runRetention(this.db, this.retention, now);
  }

  /** Stops sampling and retention, flushes what is queued and closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    await this.sampler?.stop();
    await this.retentionRun;
    this.recorder.close();
    this.db.close();
  }

  private startRetention(): void {
    if (!this.retention) return;
    const tick = () => {
      if (this.retentionRun || this.closed) return;
      this.retentionRun = this.runRetention()
        .then((report) => { if (report?.sizeLimited) log.warn(report, 'telemetry database over its size limit: removed data younger than the age limits'); })
        .catch((error) => log.error({ err: error }, 'telemetry retention failed'))
        .finally(() => { this.retentionRun = undefined; });
    };
    this.retentionTimer = setInterval(tick, this.retention.intervalMs);
    this.retentionTimer.unref();
    setImmediate(tick);
  }
}
