/**
 * `edgerun monitor` assembled: the store (SQLite or PostgreSQL), the MQTT collector on a persistent session, and
 * the dashboard server (fastify). Stops in reverse: HTTP, then the collector (what arrived is stored), then MQTT,
 * then the store.
 */
import Fastify from 'fastify';
import type { Logger } from '../log.ts';
import { errorHandler } from '../serve/http-errors.ts';
import { FleetCollector } from './collector.ts';
import { connectMonitor } from './monitor-client.ts';
import { monitorRoutes } from './routes.ts';
import type { MonitorStore } from './store-types.ts';

export interface MonitorOptions {
  broker: string;
  prefix: string;
  store: MonitorStore;
  host: string;
  /** 0 picks a free port. */
  port: number;
  clientId?: string;
  protocolVersion?: 4 | 5;
  log: Logger;
}

export interface RunningMonitor {
  /** http://host:port of the dashboard. */
  readonly url: string;
  readonly collector: FleetCollector;
  readonly store: MonitorStore;
  stop(): Promise<void>;
}

export async function startMonitor(options: MonitorOptions): Promise<RunningMonitor> {
  const { store, log } = options;
  const client = await connectMonitor(options.broker, { clientId: options.clientId, protocolVersion: options.protocolVersion });
  client.on('offline', () => log.warn({ broker: options.broker }, 'monitor: the broker is unreachable; retrying'));
  client.on('connect', () => log.info({ broker: options.broker }, 'monitor: connected to the broker'));
  const collector = new FleetCollector(client, store, options.prefix, log);
  const app = Fastify({ logger: false });
  try {
    await collector.start();
    app.setErrorHandler(errorHandler(1 << 20));
    await app.register(monitorRoutes, { store, collector });
    const url = await app.listen({ host: options.host, port: options.port });
    log.info({ url, broker: options.broker, store: store.description, prefix: options.prefix }, 'monitor: dashboard listening');
    let stopping: Promise<void> | undefined;
    return {
      url, collector, store,
      stop: () => {
        stopping ??= (async () => {
          await app.close();
          await collector.stop();
          await client.endAsync();
          await store.close();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await app.close();
    await collector.stop();
    await client.endAsync(true);
    throw error;
  }
}
