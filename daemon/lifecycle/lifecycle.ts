/**
 * Components with trivial constructors and async start/stop, started in order and stopped in reverse (as
 * zigbee2mqtt's controller does). A failed stop does not keep the others from stopping, each stop is bounded by
 * a timeout, and stop runs once however often it is asked for. A stop that arrives while components are still
 * starting (SIGTERM while models load) lets the running start finish, starts nothing more, and stops what started.
 */
import { EdgerunError } from '../errors.ts';
import type { Logger } from '../log.ts';

export interface Component {
  readonly name: string;
  /** An optional component whose start fails is logged and left out; a required one fails the whole start. */
  readonly optional?: boolean;
  start(): Promise<void>;
  /** Called once, after start resolved (or after a start that timed out during a stop); must release everything. */
  stop(): Promise<void>;
}

export type ComponentStopOutcome = 'stopped' | 'failed' | 'timed-out';

export interface ComponentStopReport {
  name: string;
  outcome: ComponentStopOutcome;
  ms: number;
  error?: string;
}

export type LifecycleState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface LifecycleOptions {
  /** A component's stop is abandoned after this long (it is then reported as timed out and still pending). */
  stopTimeoutMs: number;
  log: Logger;
}

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error));

export class Lifecycle {
  #state: LifecycleState = 'idle';
  readonly #components: Component[];
  readonly #options: LifecycleOptions;
  readonly #started: Component[] = [];
  readonly #pending = new Map<string, 'starting' | 'stopping'>();
  #starting: Promise<unknown> | undefined;
  #stopping: Promise<ComponentStopReport[]> | undefined;

  constructor(components: Component[], options: LifecycleOptions) {
    const names = new Set<string>();
    for (const c of components) {
      if (names.has(c.name)) throw new EdgerunError('EDGERUN_ERR_STARTUP', `lifecycle: two components are named '${c.name}'`, { component: c.name });
      names.add(c.name);
    }
    this.#components = components;
    this.#options = options;
  }

  get state(): LifecycleState { return this.#state; }

  /** Components whose start or stop has not finished (what a forced exit leaves running). */
  pending(): { name: string; phase: 'starting' | 'stopping' }[] {
    return [...this.#pending].map(([name, phase]) => ({ name, phase }));
  }

  /** Names of the components that started and are not stopped yet, in start order. */
  running(): string[] { return this.#started.map((c) => c.name); }

  /**
   * Starts every component in order. Resolves true when all required ones run, false when a stop interrupted
   * the start. A required component's failure stops those already started (in reverse) and rethrows, naming it.
   */
  async start(): Promise<boolean> {
    if (this.#state !== 'idle') throw new EdgerunError('EDGERUN_ERR_STARTUP', `lifecycle: start called while ${this.#state}`, { state: this.#state });
    this.#state = 'starting';
    const log = this.#options.log;
    for (const component of this.#components) {
      if (this.#stopping) return false;
      const began = performance.now();
      this.#pending.set(component.name, 'starting');
      const starting = component.start();
      this.#starting = starting.catch(() => undefined);
      try {
        await starting;
      } catch (error) {
        this.#pending.delete(component.name);
        if (component.optional) {
          log.error({ component: component.name, err: error }, `${component.name}: start failed; continuing without it`);
          continue;
        }
        log.error({ component: component.name, err: error }, `${component.name}: start failed; stopping the components already started`);
        if (!this.#stopping) await this.stop();
        throw error instanceof EdgerunError ? error
          : new EdgerunError('EDGERUN_ERR_STARTUP', `${component.name}: start failed: ${describeError(error)}`, { component: component.name }, { cause: error });
      } finally {
        this.#starting = undefined;
      }
      this.#pending.delete(component.name);
      this.#started.push(component);
      log.debug({ component: component.name, ms: +(performance.now() - began).toFixed(1) }, `${component.name}: started`);
    }
    if (this.#stopping) return false;
    this.#state = 'running';
    return true;
  }

  /** Stops the started components in reverse order; every call returns the same promise. */
  stop(): Promise<ComponentStopReport[]> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #stopAll(): Promise<ComponentStopReport[]> {
    this.#state = 'stopping';
    // A start in progress is let finish (bounded), so the component it started is stopped too.
    if (this.#starting) await this.#bounded(this.#starting);
    const reports: ComponentStopReport[] = [];
    for (const component of this.#startedOrStarting().reverse()) reports.push(await this.#stopOne(component));
    this.#started.length = 0;
    this.#state = 'stopped';
    return reports;
  }

  #startedOrStarting(): Component[] {
    const stillStarting = this.#components.filter((c) => this.#pending.get(c.name) === 'starting');
    return [...this.#started, ...stillStarting];
  }

  async #stopOne(component: Component): Promise<ComponentStopReport> {
    const log = this.#options.log;
    const began = performance.now();
    this.#pending.set(component.name, 'stopping');
    const ms = (): number => +(performance.now() - began).toFixed(1);
    let outcome: ComponentStopOutcome;
    let error: string | undefined;
    try {
      // A stop that throws synchronously is reported like one that rejects.
      const settled = await this.#bounded(Promise.resolve().then(() => component.stop()));
      outcome = settled ? 'stopped' : 'timed-out';
      if (settled) this.#pending.delete(component.name);
    } catch (caught) {
      this.#pending.delete(component.name);
      outcome = 'failed';
      error = describeError(caught);
    }
    const report: ComponentStopReport = { name: component.name, outcome, ms: ms(), ...(error ? { error } : {}) };
    if (outcome === 'stopped') log.debug({ component: component.name, ms: report.ms }, `${component.name}: stopped`);
    else if (outcome === 'failed') log.error({ component: component.name, ms: report.ms, error }, `${component.name}: stop failed; stopping the others`);
    else log.error({ component: component.name, ms: report.ms }, `${component.name}: stop did not finish within ${this.#options.stopTimeoutMs} ms; stopping the others`);
    return report;
  }

  /** Resolves true when `work` settles (rejections propagate) within the stop timeout, false when it does not. */
  async #bounded(work: Promise<unknown>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), this.#options.stopTimeoutMs); });
    try {
      return await Promise.race([work.then(() => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
