/**
 * Orderly shutdown on SIGTERM/SIGINT: tell systemd STOPPING=1, stop the components in reverse start order (the
 * HTTP component drains: new requests get 503 with Connection: close, in-flight ones finish; then telemetry is
 * flushed and engines closed), and exit 0 when everything stopped within the grace. A second signal, or the
 * grace running out, logs what was still running and exits 1; so does a component whose stop failed.
 */
import type { Logger } from '../log.ts';
import type { ComponentStopReport, Lifecycle } from './lifecycle.ts';
import type { SdNotify } from './sd-notify.ts';

export interface ShutdownOptions {
  lifecycle: Lifecycle;
  graceMs: number;
  log: Logger;
  notify?: SdNotify;
  /**
   * Ends the process (the CLI flushes logs and exits); tests pass a recorder. `workStillRunning` is true when a
   * component had not finished stopping (an inference may be running on an engine thread).
   */
  exit: (code: number, workStillRunning: boolean) => void;
  /** What else was still running at a forced exit (in-flight requests, …), for the log. */
  describeRunning?: () => Record<string, unknown>;
  signals?: NodeJS.Signals[];
}

export interface ShutdownOutcome {
  code: number;
  /** 'stopped': every component stopped; 'incomplete': one failed or timed out; 'forced': second signal or grace. */
  kind: 'stopped' | 'incomplete' | 'forced';
  reports?: ComponentStopReport[];
}

export interface ShutdownController {
  /** Begins shutdown (as a signal would); every call returns the same outcome. */
  shutdown(reason: string): Promise<ShutdownOutcome>;
  /** Removes the signal handlers (tests; the daemon keeps them for its life). */
  dispose(): void;
}

export function handleShutdownSignals(options: ShutdownOptions): ShutdownController {
  const { lifecycle, graceMs, log } = options;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let outcome: Promise<ShutdownOutcome> | undefined;
  let settle: (result: ShutdownOutcome) => void = () => undefined;
  let finished = false;

  const finish = (result: ShutdownOutcome): void => {
    if (finished) return;
    finished = true;
    settle(result);
    options.exit(result.code, lifecycle.pending().length > 0);
  };

  const force = (why: string): void => {
    if (finished) return;
    log.error({ pending: lifecycle.pending(), running: lifecycle.running(), ...options.describeRunning?.() }, `shutdown forced (${why}); exiting with work still running`);
    finish({ code: 1, kind: 'forced' });
  };

  const shutdown = (reason: string): Promise<ShutdownOutcome> => {
    if (outcome) return outcome;
    outcome = new Promise<ShutdownOutcome>((resolve) => { settle = resolve; });
    const began = performance.now();
    log.info({ reason, graceMs }, 'shutting down: draining requests, flushing telemetry, closing engines');
    void options.notify?.stopping(`stopping (${reason})`);
    const grace = setTimeout(() => force(`the ${graceMs} ms grace expired`), graceMs);
    grace.unref();
    lifecycle.stop().then((reports) => {
      clearTimeout(grace);
      const clean = reports.every((r) => r.outcome === 'stopped');
      const ms = +(performance.now() - began).toFixed(1);
      if (clean) log.info({ ms }, 'stopped');
      else log.error({ ms, problems: reports.filter((r) => r.outcome !== 'stopped') }, 'stopped, but not every component stopped cleanly');
      finish({ code: clean ? 0 : 1, kind: clean ? 'stopped' : 'incomplete', reports });
    }, (error: unknown) => {
      clearTimeout(grace);
      log.error({ err: error }, 'shutdown failed');
      finish({ code: 1, kind: 'incomplete' });
    });
    return outcome;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (outcome) force(`second signal ${signal}`);
    else void shutdown(signal);
  };
  for (const signal of signals) process.on(signal, onSignal);
  return {
    shutdown,
    dispose: () => { for (const signal of signals) process.off(signal, onSignal); },
  };
}
