/**
 * One loaded model version: its session, the leases out on it, and what their releases reported (for
 * probation). A retired version hands out no new leases; its session is closed once the last lease is back.
 */
import type { Session } from '../engine/types.ts';
import { logger } from '../log.ts';
import type { ModelPackage } from '../package/read-package.ts';
import type { Lease } from './registry.ts';

const log = logger.child({ component: 'model-manager' });

/** Latencies kept per version: enough for a stable median, bounded memory. */
const LATENCY_SAMPLES = 512;

export interface ReleaseOutcome {
  ok: boolean;
  latencyMs: number;
}

export class LoadedVersion {
  private inFlight = 0;
  private retiredFlag = false;
  private idleWaiters: (() => void)[] = [];
  private readonly latencies: number[] = [];
  private latencyCursor = 0;
  /** Outcomes reported by releases since the version started serving. */
  requests = 0;
  errors = 0;
  /** Called for every reported outcome (probation listens here). */
  onOutcome: ((outcome: ReleaseOutcome) => void) | undefined;

  constructor(
    readonly name: string,
    readonly version: string,
    readonly engine: string,
    readonly session: Session,
    readonly pkg: ModelPackage,
    /** Where the package came from: 'store' versions are persisted as active once they are confirmed. */
    readonly origin: 'store' | 'folder',
  ) {}

  get leases(): number {
    return this.inFlight;
  }

  get retired(): boolean {
    return this.retiredFlag;
  }

  /** Counts a new lease. Callers check `retired` first; acquire() is synchronous, so nothing runs in between. */
  lease(): Lease {
    this.inFlight++;
    let released = false;
    return {
      name: this.name,
      version: this.version,
      engine: this.engine,
      session: this.session,
      release: (outcome?: ReleaseOutcome) => {
        if (released) {
          log.warn({ model: this.name, version: this.version }, 'a lease was released twice; the second release is ignored');
          return;
        }
        released = true;
        this.released(outcome);
      },
    };
  }

  /** Stops new leases; resolves true once none is in flight, false if `timeoutMs` passes first. */
  retire(timeoutMs: number): Promise<boolean> {
    this.retiredFlag = true;
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  /** Median latency of the most recent reported outcomes, or undefined with fewer than `minSamples`. */
  medianLatency(minSamples = 1): number | undefined {
    if (this.latencies.length < Math.max(1, minSamples)) return undefined;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }

  private released(outcome: ReleaseOutcome | undefined): void {
    this.inFlight--;
    if (outcome) {
      this.requests++;
      if (!outcome.ok) this.errors++;
      if (Number.isFinite(outcome.latencyMs) && outcome.latencyMs >= 0) {
        if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(outcome.latencyMs);
        else this.latencies[this.latencyCursor] = outcome.latencyMs;
        this.latencyCursor = (this.latencyCursor + 1) % LATENCY_SAMPLES;
      }
      this.onOutcome?.(outcome);
    }
    if (this.inFlight === 0 && this.retiredFlag) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }
}
