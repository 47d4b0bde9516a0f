/**
 * Shadow runs: label-free accuracy of a new version on live traffic. While a new version is on probation the
 * previous one is still loaded, so a fraction of the requests the new version answered are run again on the
 * previous version — after the reply was sent, never on the request path — and the two outputs compared with
 * agreement() (daemon/telemetry/agreement.ts, the measure the accuracy gate uses).
 *
 * Bounded: at most `maxConcurrent` shadow runs at a time; a sample offered while they are busy is dropped (and
 * counted), so a slow previous version cannot queue work behind live traffic. A shadow run that fails is
 * counted and logged, never surfaced to a client.
 *
 * Agreement is summed per (model, version, baseline version) and recorded as one 'shadow' accuracy record every
 * `requestsPerRecord` compared requests, `recordIntervalMs` after the first sample of a partial aggregate, and
 * when probation ends (flush). A record's `samples` counts compared items, as the gate's does (rows for argmax,
 * elements for allclose).
 */
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { isFloatDType, type Tensor } from '../graph/ir.ts';
import { logger } from '../log.ts';
import type { ModelPackage } from '../package/read-package.ts';
import { agreement, type AgreementMetric, type AgreementResult, combineAgreement } from '../telemetry/agreement.ts';
import type { TelemetrySink } from '../telemetry/sink.ts';
import type { LoadedVersion } from './loaded-version.ts';
import type { ShadowSample } from './registry.ts';

const log = logger.child({ component: 'shadow' });

export interface ShadowOptions {
  /** Fraction in [0, 1] of the live requests on a version on probation also run on the previous version; 0 disables. */
  fraction: number;
  /** Shadow runs in flight at most; a sample offered while this many run is dropped. */
  maxConcurrent: number;
  /** Compared requests summed into one accuracy record. */
  requestsPerRecord: number;
  /** A partial aggregate is recorded at most this long (ms) after its first sample. */
  recordIntervalMs: number;
}

export const DEFAULT_SHADOW: ShadowOptions = { fraction: 0.05, maxConcurrent: 1, requestsPerRecord: 20, recordIntervalMs: 10_000 };

export interface ShadowStats {
  /** Samples drawn (by `fraction`) while a previous version was loaded. */
  sampled: number;
  /** Drawn samples dropped because `maxConcurrent` shadow runs were in flight (or the runner was closing). */
  dropped: number;
  /** Shadow runs that failed (the previous version could not run the input, or an output could not be compared). */
  failed: number;
  /** Shadow runs whose outputs were compared. */
  compared: number;
  /** Shadow runs in flight now, and the most ever at once. */
  inFlight: number;
  maxInFlight: number;
}

/** Fills in defaults; a fraction outside [0, 1] or a count below 1 is a configuration error naming the key. */
export function resolveShadowOptions(options: Partial<ShadowOptions> = {}): ShadowOptions {
  const resolved = { ...DEFAULT_SHADOW, ...options };
  if (!(resolved.fraction >= 0 && resolved.fraction <= 1)) {
    throw new EdgerunError('EDGERUN_ERR_CONFIG', `telemetry.shadowFraction must be within [0, 1], got ${resolved.fraction}`, { key: 'telemetry.shadowFraction' });
  }
  for (const key of ['maxConcurrent', 'requestsPerRecord', 'recordIntervalMs'] as const) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 1) {
      throw new EdgerunError('EDGERUN_ERR_CONFIG', `shadow option ${key} must be an integer >= 1, got ${resolved[key]}`, { key });
    }
  }
  return resolved;
}

/** The package's eval metric; without an eval set argmax for float outputs of rank ≥ 2 (class scores), else allclose. */
export function shadowMetric(pkg: ModelPackage, output: Tensor): { metric: AgreementMetric; tolerance?: number } {
  if (pkg.eval) return { metric: pkg.eval.metric, tolerance: pkg.eval.tolerance };
  return { metric: isFloatDType(output.dtype) && output.dims.length >= 2 ? 'argmax' : 'allclose' };
}

interface Aggregate {
  model: string;
  version: string;
  baseline: string;
  results: AgreementResult[];
  requests: number;
  timer: NodeJS.Timeout;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ShadowRunner {
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly running = new Set<Promise<void>>();
  /** Version pairs whose failure was logged already (one warning per pair, not per request). */
  private readonly warned = new Set<string>();
  private closed = false;
  readonly stats: ShadowStats = { sampled: 0, dropped: 0, failed: 0, compared: 0, inFlight: 0, maxInFlight: 0 };

  constructor(
    readonly options: ShadowOptions,
    private readonly telemetry: TelemetrySink,
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether this request should be shadowed (drawn with probability `fraction`). */
  draw(): boolean {
    return !this.closed && this.options.fraction > 0 && this.random() < this.options.fraction;
  }

  /**
   * Runs `sample` (answered by `candidate`) on `baseline` in the background. Returns at once; false when the
   * sample was dropped because the runner is busy or closed.
   */
  run(candidate: LoadedVersion, baseline: LoadedVersion, sample: ShadowSample): boolean {
    this.stats.sampled++;
    if (this.closed || this.stats.inFlight >= this.options.maxConcurrent || baseline.retired) {
      this.stats.dropped++;
      return false;
    }
    this.stats.inFlight++;
    this.stats.maxInFlight = Math.max(this.stats.maxInFlight, this.stats.inFlight);
    const done = this.shadow(candidate, baseline, sample).catch((error: unknown) => this.failed(sample, baseline, message(error))).finally(() => {
      this.stats.inFlight--;
      this.running.delete(done);
    });
    this.running.add(done);
    return true;
  }

  /** Records the partial aggregates of `model` now (all models without one), e.g. when its probation ends. */
  flush(model?: string): void {
    for (const aggregate of [...this.aggregates.values()]) if (model === undefined || aggregate.model === model) this.record(aggregate);
  }

  /** No new shadow runs; waits for those in flight, then records every partial aggregate. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
    this.flush();
  }

  private async shadow(candidate: LoadedVersion, baseline: LoadedVersion, sample: ShadowSample): Promise<void> {
    const lease = baseline.lease();
    let outputs: Map<string, Tensor>;
    try {
      outputs = (await lease.session.run(sample.feeds)).outputs;
    } catch (error) {
      return this.failed(sample, baseline, `the previous version could not run the request: ${message(error)}`);
    } finally {
      // No outcome: shadow runs must not count in the previous version's latency and error figures (probation's baseline).
      lease.release();
    }
    const results: AgreementResult[] = [];
    for (const [name, live] of sample.outputs) {
      const reference = outputs.get(name);
      if (!reference) return this.failed(sample, baseline, `the previous version produced no output '${name}'`);
      const { metric, tolerance } = shadowMetric(candidate.pkg, live);
      try {
        results.push(agreement(live, reference, metric, { ...(tolerance !== undefined ? { tolerance } : {}), name }));
      } catch (error) {
        if (!isEdgerunError(error)) throw error;
        return this.failed(sample, baseline, error.message);
      }
    }
    this.stats.compared++;
    this.add(sample.model, sample.version, baseline.version, combineAgreement(results));
  }

  private failed(sample: ShadowSample, baseline: LoadedVersion, reason: string): void {
    this.stats.failed++;
    const pair = `${sample.model}\0${sample.version}\0${baseline.version}`;
    if (this.warned.has(pair)) return;
    this.warned.add(pair);
    log.warn({ model: sample.model, version: sample.version, baseline: baseline.version, reason }, 'a shadow run could not be compared (further failures of this pair are only counted)');
  }

  private add(model: string, version: string, baseline: string, result: AgreementResult): void {
    const key = `${model}\0${version}\0${baseline}`;
    let aggregate = this.aggregates.get(key);
    if (!aggregate) {
      const timer = setTimeout(() => this.record(this.aggregates.get(key)), this.options.recordIntervalMs);
      timer.unref();
      aggregate = { model, version, baseline, results: [], requests: 0, timer };
      this.aggregates.set(key, aggregate);
    }
    aggregate.results.push(result);
    aggregate.requests++;
    if (aggregate.requests >= this.options.requestsPerRecord) this.record(aggregate);
  }

  private record(aggregate: Aggregate | undefined): void {
    if (!aggregate) return;
    clearTimeout(aggregate.timer);
    this.aggregates.delete(`${aggregate.model}\0${aggregate.version}\0${aggregate.baseline}`);
    const total = combineAgreement(aggregate.results);
    this.telemetry.recordAccuracy({
      at: Date.now(), model: aggregate.model, version: aggregate.version, kind: 'shadow',
      agreement: total.fraction, samples: total.compared, baselineVersion: aggregate.baseline,
    });
  }
}
