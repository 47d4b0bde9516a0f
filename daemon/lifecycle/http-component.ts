/**
 * The HTTP server as a daemon component: builds the Open Inference Protocol app (daemon/serve) and listens.
 * Stop drains: from that moment every new request gets 503 EDGERUN_ERR_DRAINING with `Connection: close`
 * while the requests already in flight finish; then the listener and the idle connections close.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { ResolvedConfig } from '../config/types.ts';
import type { Logger } from '../log.ts';
import { build } from '../serve/app.ts';
import type { ModelRegistry } from '../swap/registry.ts';
import type { TelemetrySink } from '../telemetry/sink.ts';
import type { Component } from './lifecycle.ts';

export interface HttpDependencies {
  registry: () => ModelRegistry;
  telemetry: () => TelemetrySink;
  /** Registers more routes (telemetry summary and dashboard) after the protocol's. */
  extraRoutes?: (app: FastifyInstance) => Promise<void>;
}

export class HttpComponent implements Component {
  readonly name = 'http';
  #app: FastifyInstance | undefined;
  #draining = false;
  #inFlight = 0;
  #idleWaiters: (() => void)[] = [];

  constructor(private readonly config: ResolvedConfig, private readonly deps: HttpDependencies, private readonly log: Logger) {}

  get draining(): boolean { return this.#draining; }

  /** Requests received and not yet answered (or aborted). */
  get inFlight(): number { return this.#inFlight; }

  get app(): FastifyInstance | undefined { return this.#app; }

  /** Where the server listens, once started. */
  address(): { host: string; port: number } | undefined {
    const address = this.#app?.server.address() as AddressInfo | null | undefined;
    return address ? { host: address.address, port: address.port } : undefined;
  }

  async start(): Promise<void> {
    const { server, limits } = this.config;
    const app = await build({
      registry: this.deps.registry(),
      telemetry: this.deps.telemetry(),
      limits: {
        bodyLimitBytes: limits.bodyBytes,
        requestTimeoutMs: server.requestTimeoutMs,
        maxConcurrency: limits.maxConcurrentInferences,
        maxQueue: limits.maxQueueDepth,
        retryAfterSeconds: limits.retryAfterSeconds,
        keepAliveTimeoutMs: server.keepAliveTimeoutMs,
      },
      isDraining: () => this.#draining,
      logger: this.log,
    });
    await this.deps.extraRoutes?.(app);
    // Counted at the socket level: 'close' fires for answered and for aborted requests alike.
    app.server.on('request', (_request, response) => {
      this.#inFlight++;
      response.once('close', () => {
        this.#inFlight--;
        if (this.#inFlight === 0) for (const wake of this.#idleWaiters.splice(0)) wake();
      });
    });
    this.#app = app;
    await app.listen({ host: server.host, port: server.port });
    this.log.info({ address: this.address() }, 'listening');
  }

  async stop(): Promise<void> {
    const app = this.#app;
    if (!app) return;
    this.#draining = true;
    if (this.#inFlight > 0) {
      this.log.info({ inFlight: this.#inFlight }, 'draining: waiting for the requests in flight');
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    await app.close();
  }
}
