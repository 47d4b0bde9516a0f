/**
 * Probation: for a window after a switch, the new version's error rate and latency (from lease releases) are
 * watched while the previous version stays loaded. Too many errors roll back at once; at the end of the window
 * a median latency beyond `maxLatencyRatio` times the previous version's also rolls back; otherwise it passes.
 */
import type { LoadedVersion, ReleaseOutcome } from './loaded-version.ts';

export interface ProbationOptions {
  /** How long the new version is watched (0 disables probation: the previous version is freed at once). */
  windowMs: number;
  /** Outcomes needed before the error rate or latency can fail the new version. */
  minRequests: number;
  /** Fraction of failed requests beyond which the new version is rolled back. */
  maxErrorRate: number;
  /** Median latency ratio new/previous beyond which the new version is rolled back. */
  maxLatencyRatio: number;
}

export const DEFAULT_PROBATION: ProbationOptions = { windowMs: 60_000, minRequests: 20, maxErrorRate: 0.05, maxLatencyRatio: 2 };

/**
 * Latencies below this are treated as this (ms), so sub-millisecond jitter on tiny models cannot look like a
 * doubling.
 */
export const LATENCY_FLOOR_MS = 1;

export type ProbationVerdict =
  | { passed: true; requests: number; errors: number; medianLatencyMs?: number }
  | { passed: false; reason: string; requests: number; errors: number };

export class Probation {
  private timer: NodeJS.Timeout | undefined;
  private requests = 0;
  private errors = 0;
  private decided = false;
  readonly startedAt = Date.now();

  constructor(
    readonly candidate: LoadedVersion,
    readonly previous: LoadedVersion,
    private readonly options: ProbationOptions,
    private readonly decide: (verdict: ProbationVerdict) => void,
  ) {}

  start(): void {
    this.candidate.onOutcome = (outcome) => this.observe(outcome);
    this.timer = setTimeout(() => this.finish(), this.options.windowMs);
    this.timer.unref();
  }

  /** Ends probation without a verdict (superseded by another swap, unload, shutdown). */
  cancel(): void {
    this.stop();
  }

  get active(): boolean {
    return !this.decided;
  }

  private observe(outcome: ReleaseOutcome): void {
    if (this.decided) return;
    this.requests++;
    if (!outcome.ok) this.errors++;
    const { minRequests, maxErrorRate } = this.options;
    if (this.requests >= minRequests && this.errors / this.requests > maxErrorRate) {
      this.conclude({
        passed: false,
        reason: `error rate ${(this.errors / this.requests).toFixed(3)} (${this.errors} of ${this.requests} requests) exceeds ${maxErrorRate}`,
        requests: this.requests,
        errors: this.errors,
      });
    }
  }

  private finish(): void {
    if (this.decided) return;
    const { minRequests, maxLatencyRatio } = this.options;
    const current = this.candidate.medianLatency(minRequests);
    const baseline = this.previous.medianLatency(minRequests);
    if (this.requests >= minRequests && current !== undefined && baseline !== undefined
      && Math.max(current, LATENCY_FLOOR_MS) > maxLatencyRatio * Math.max(baseline, LATENCY_FLOOR_MS)) {
      this.conclude({
        passed: false,
        reason: `median latency ${current.toFixed(2)} ms exceeds ${maxLatencyRatio} × the previous version's ${baseline.toFixed(2)} ms`,
        requests: this.requests,
        errors: this.errors,
      });
      return;
    }
    this.conclude({ passed: true, requests: this.requests, errors: this.errors, ...(current !== undefined ? { medianLatencyMs: current } : {}) });
  }

  private conclude(verdict: ProbationVerdict): void {
    this.stop();
    this.decide(verdict);
  }

  private stop(): void {
    this.decided = true;
    clearTimeout(this.timer);
    this.candidate.onOutcome = undefined;
  }
}
