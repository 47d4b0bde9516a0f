/**
 * A bounded queue per model: at most `maxConcurrency` inferences run on the engine at once, at most `maxQueue`
 * wait behind them; one more is refused at once (503 + Retry-After) rather than letting latency grow without
 * bound. Waiting requests give up at their deadline (504) and leave the queue.
 */
import { EdgerunError } from '../errors.ts';

export interface QueueLimits {
  maxConcurrency: number;
  maxQueue: number;
  retryAfterSeconds: number;
}

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout;
}

export class InferenceQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly model: string, private readonly limits: QueueLimits) {}

  /** Requests waiting for a slot. */
  get depth(): number {
    return this.waiting.length;
  }

  /** Inferences holding a slot. */
  get active(): number {
    return this.running;
  }

  /**
   * Resolves with the slot's release function once the request may run. Rejects with EDGERUN_ERR_OVERLOADED
   * when the queue is full, EDGERUN_ERR_TIMEOUT when `deadline` (performance.now() ms) passes while waiting.
   */
  enter(deadline: number): Promise<() => void> {
    if (this.running < this.limits.maxConcurrency && this.waiting.length === 0) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.waiting.length >= this.limits.maxQueue) {
      return Promise.reject(new EdgerunError('EDGERUN_ERR_OVERLOADED',
        `model '${this.model}' has ${this.waiting.length} requests queued behind ${this.running} running (the limit); retry later`,
        { model: this.model, queued: this.waiting.length, retryAfterSeconds: this.limits.retryAfterSeconds }));
    }
    const waitMs = deadline - performance.now();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(new EdgerunError('EDGERUN_ERR_TIMEOUT', `request for model '${this.model}' timed out waiting in its queue`, { model: this.model }));
        }, Math.max(0, waitMs)),
      };
      this.waiting.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) {
        // The slot passes straight to the next request: `running` is unchanged.
        clearTimeout(next.timer);
        next.grant(this.releaser());
      } else {
        this.running--;
      }
    };
  }
}
