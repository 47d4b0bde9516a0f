/**
 * The systemd watchdog: with WatchdogSec= set, systemd passes WATCHDOG_USEC (and WATCHDOG_PID) and kills the
 * service when no WATCHDOG=1 arrives within that interval. We ping at half the interval, and only when the
 * process is healthy: the ping timer itself must not have been held up by more than a quarter of the interval
 * (a blocked or saturated event loop) and the optional health check must pass — a daemon that cannot serve
 * should be restarted, not kept alive by a timer that still happens to fire. After a skipped ping the check is
 * retried soon (a tenth of the ping period), so one transient stall delays a ping but a loop that stays
 * saturated, or a failing health check, lets systemd's deadline pass.
 */
import type { Logger } from '../log.ts';
import type { SdNotify } from './sd-notify.ts';

/** The watchdog interval systemd asks for, in ms, or null when there is none for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return null;
  // WATCHDOG_PID names the process meant to ping; a child that inherited the variables must not.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return null;
  return usec / 1000;
}

export interface WatchdogOptions {
  notify: SdNotify;
  intervalMs: number;
  log: Logger;
  /** Extra health check (engine thread alive, …); a false skips the ping. */
  healthy?: () => boolean;
}

export class Watchdog {
  readonly #options: WatchdogOptions;
  #timer: NodeJS.Timeout | undefined;
  #expectedAt = 0;
  #skipping = false;
  pings = 0;
  skipped = 0;

  constructor(options: WatchdogOptions) {
    this.#options = options;
  }

  get pingEveryMs(): number { return this.#options.intervalMs / 2; }

  start(): void {
    if (this.#timer) return;
    this.#schedule();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs = this.pingEveryMs): void {
    this.#expectedAt = performance.now() + delayMs;
    this.#timer = setTimeout(() => this.#tick(), delayMs);
    // The watchdog never keeps a stopping daemon alive.
    this.#timer.unref();
  }

  #tick(): void {
    const lateMs = performance.now() - this.#expectedAt;
    const maxLateMs = this.#options.intervalMs / 4;
    let reason: string | undefined;
    if (lateMs > maxLateMs) reason = `the event loop was blocked ${lateMs.toFixed(0)} ms (limit ${maxLateMs.toFixed(0)} ms)`;
    else if (this.#options.healthy && !this.#options.healthy()) reason = 'the health check failed';
    if (reason) {
      this.skipped++;
      // One line per unhealthy stretch, not one per retry.
      if (!this.#skipping) this.#options.log.warn({ lateMs: +lateMs.toFixed(1) }, `watchdog ping skipped: ${reason}`);
      this.#skipping = true;
      this.#schedule(this.pingEveryMs / 10);
      return;
    }
    if (this.#skipping) this.#options.log.info('watchdog pings resumed');
    this.#skipping = false;
    this.pings++;
    void this.#options.notify.watchdog();
    this.#schedule();
  }
}
