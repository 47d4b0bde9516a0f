/**
 * The composition root of `edgerun daemon`: configuration → telemetry → engine selection → model store +
 * ModelManager → HTTP → fleet agent (when fleet.broker is set) → (listening, models loaded) READY=1 and the
 * systemd watchdog. Components start in that
 * order and stop in reverse (daemon/lifecycle/lifecycle.ts): on SIGTERM the HTTP server drains first, then the
 * model versions drain and close, the engine closes, and telemetry flushes last.
 */
import type { ResolvedConfig } from './config/types.ts';
import { EngineComponent } from './lifecycle/engine-component.ts';
import { FleetComponent } from './lifecycle/fleet-component.ts';
import { HttpComponent } from './lifecycle/http-component.ts';
import { Lifecycle, type Component, type ComponentStopReport } from './lifecycle/lifecycle.ts';
import { ModelsComponent } from './lifecycle/models-component.ts';
import { SdNotify } from './lifecycle/sd-notify.ts';
import { TelemetryComponent } from './lifecycle/telemetry-component.ts';
import { UplinkComponent } from './lifecycle/uplink-component.ts';
import { Watchdog, watchdogIntervalMs } from './lifecycle/watchdog.ts';
import { logger as rootLogger, type Logger } from './log.ts';
import { telemetryRoutes } from './serve/telemetry-routes.ts';
import type { FleetAgent } from './fleet/agent.ts';
import type { ModelManager } from './swap/model-manager.ts';
import type { Telemetry } from './telemetry/telemetry.ts';

export interface DaemonOptions {
  config: ResolvedConfig;
  /** systemd notifications; default: from env (a no-op without NOTIFY_SOCKET). */
  notify?: SdNotify;
  /** Where NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID are read (default process.env). */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
}

export interface Daemon {
  readonly lifecycle: Lifecycle;
  /** Starts every component, then tells systemd READY=1; false when a stop interrupted the start. */
  start(): Promise<boolean>;
  /** Stops in reverse order (idempotent); the signal handler calls this through the lifecycle. */
  stop(): Promise<ComponentStopReport[]>;
  /** Where HTTP listens, once started. */
  address(): { host: string; port: number } | undefined;
  /** The model registry (store + hot-swap), once started. */
  models(): ModelManager;
  /** The telemetry database and recorder, once started (undefined when telemetry is off). */
  telemetry(): Telemetry | undefined;
  /** The fleet agent, once started (undefined when fleet.broker is null). */
  fleet(): FleetAgent | undefined;
  /** For a forced exit's log: requests in flight, and whether HTTP is draining. */
  describeRunning(): Record<string, unknown>;
}

/** Tells systemd READY=1 once everything before it started, and pings the watchdog while running. */
class SystemdComponent implements Component {
  readonly name = 'systemd';
  #watchdog: Watchdog | undefined;

  constructor(
    private readonly notify: SdNotify,
    private readonly watchdogMs: number | null,
    private readonly status: () => string,
    private readonly healthy: () => boolean,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const status = this.status();
    if (this.notify.enabled) {
      const ok = await this.notify.ready(status);
      this.log.info({ socket: this.notify.socket, method: this.notify.method, ok }, 'told systemd READY=1');
    }
    if (this.watchdogMs !== null) {
      this.#watchdog = new Watchdog({ notify: this.notify, intervalMs: this.watchdogMs, log: this.log, healthy: this.healthy });
      this.#watchdog.start();
      this.log.info({ intervalMs: this.watchdogMs, pingEveryMs: this.#watchdog.pingEveryMs }, 'systemd watchdog on');
    }
  }

  async stop(): Promise<void> {
    this.#watchdog?.stop();
  }
}

export function createDaemon(options: DaemonOptions): Daemon {
  const { config } = options;
  const env = options.env ?? process.env;
  const log = options.log ?? rootLogger.child({ component: 'daemon' });
  const child = (component: string): Logger => (options.log ?? rootLogger).child({ component });
  const notify = options.notify ?? new SdNotify(env, { log: child('sd-notify') });

  const telemetry = new TelemetryComponent(config, child('telemetry'));
  const engine = new EngineComponent(config, child('engine'));
  const models = new ModelsComponent(config, { engine: () => engine.engine, telemetry: () => telemetry.sink }, child('models'));
  const http = new HttpComponent(config, {
    registry: () => models.manager,
    telemetry: () => telemetry.sink,
    // GET /v2/telemetry/summary and /dashboard read the same database the recorder writes (absent when it is off).
    extraRoutes: async (app) => {
      const open = telemetry.telemetry;
      if (open) await app.register(telemetryRoutes, { store: open.store });
    },
  }, child('http'));

  const fleet = new FleetComponent(config, { models: () => models.manager, store: () => models.store }, child('fleet'));
  const uplink = new UplinkComponent(config, { agent: () => fleet.agent, telemetry: () => telemetry.telemetry }, child('telemetry-uplink'));

  const status = (): string => {
    const list = models.manager.list();
    const ready = list.filter((m) => m.activeVersion !== undefined).length;
    const address = http.address();
    return `serving ${ready} of ${list.length} model(s) with ${engine.engine.name} on http://${address?.host}:${address?.port}`;
  };
  const watchdogMs = config.lifecycle.watchdog ? watchdogIntervalMs(env) : null;
  const systemd = new SystemdComponent(notify, watchdogMs, status, () => lifecycle.state === 'running' || lifecycle.state === 'starting', log);
  const lifecycle: Lifecycle = new Lifecycle([telemetry, engine, models, http, fleet, uplink, systemd], { stopTimeoutMs: config.lifecycle.componentStopTimeoutMs, log });

  return {
    lifecycle,
    async start() {
      if (notify.enabled) void notify.status('starting: telemetry, engine, models, HTTP');
      const started = await lifecycle.start();
      if (started) log.info({ address: http.address() }, status());
      return started;
    },
    stop: () => lifecycle.stop(),
    address: () => http.address(),
    models: () => models.manager,
    telemetry: () => telemetry.telemetry,
    fleet: () => fleet.agent,
    describeRunning: () => ({ inFlightRequests: http.inFlight, draining: http.draining }),
  };
}
