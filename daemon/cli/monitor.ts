/**
 * `edgerun monitor --broker URL [--port N] [--host H] [--db FILE | --postgres URL] [--prefix P]`: collects every
 * device's status, deployment progress and telemetry from the fleet's broker into SQLite (default) or PostgreSQL
 * and serves the fleet dashboard and its JSON API (docs/MONITOR.md) until SIGINT or SIGTERM.
 */
import { EdgerunError } from '../errors.ts';
import { parseBrokerUrl } from '../fleet/publisher-broker.ts';
import { DEFAULT_TOPIC_PREFIX } from '../fleet/protocol.ts';
import { logger } from '../log.ts';
import { defaultMonitorClientId } from '../monitor/monitor-client.ts';
import { startMonitor } from '../monitor/monitor.ts';
import { openPostgresMonitorStore } from '../monitor/postgres-store.ts';
import { openSqliteMonitorStore } from '../monitor/sqlite-store.ts';
import type { MonitorStore } from '../monitor/store-types.ts';
import { parseCommandArgs, parsePositiveInt } from './args.ts';
import type { CliIO } from './main.ts';

export const DEFAULT_MONITOR_PORT = 8090;
export const DEFAULT_MONITOR_DB = 'edgerun-monitor.db';

const HELP = `usage: edgerun monitor --broker URL [--port N] [--host H] [--db FILE | --postgres URL] [--prefix P]

Subscribes to every device's status, deployment progress and telemetry under the topic prefix, stores them and
serves a dashboard (fleet table, rollout progress, latency, power, energy and accuracy charts per device and per
model) with its JSON API. Runs until SIGINT or SIGTERM.

  --broker URL      the fleet's MQTT broker (mqtt://, mqtts://, ws://, wss://)
  --port N          dashboard port (default ${DEFAULT_MONITOR_PORT}; 0 picks a free one)
  --host H          dashboard address (default 127.0.0.1; 0.0.0.0 serves every interface)
  --db FILE         SQLite database (default ./${DEFAULT_MONITOR_DB})
  --postgres URL    PostgreSQL instead of SQLite, e.g. postgres://user:pass@db.example.com/edgerun
  --prefix P        topic prefix (default ${DEFAULT_TOPIC_PREFIX})
  --client-id ID    MQTT client id of the persistent session (default ${defaultMonitorClientId()})
  --mqtt-version V  5 (default) or 4 (MQTT 3.1.1)
`;

export async function monitorCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('monitor', args, {
    broker: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string' },
    db: { type: 'string' },
    postgres: { type: 'string' },
    prefix: { type: 'string' },
    'client-id': { type: 'string' },
    'mqtt-version': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) usage(`unexpected argument '${positionals[0]}'`);
  if (!values.broker) usage('--broker URL is required');
  parseBrokerUrl(values.broker);
  if (values.db !== undefined && values.postgres !== undefined) usage('give --db FILE or --postgres URL, not both');
  if (values.postgres !== undefined && !/^postgres(ql)?:\/\//.test(values.postgres)) usage(`--postgres: '${values.postgres.replace(/:[^:@/]*@/, ':***@')}' is not a postgres:// URL`);
  const port = values.port === '0' ? 0 : parsePositiveInt('monitor', 'port', values.port, DEFAULT_MONITOR_PORT);
  if (port > 65535) usage(`--port must be at most 65535, got ${port}`);
  const prefix = values.prefix ?? DEFAULT_TOPIC_PREFIX;
  if (/[#+]/.test(prefix) || prefix.startsWith('/') || prefix.endsWith('/') || prefix === '') usage(`--prefix: '${prefix}' must be topic levels without wildcards or a leading or trailing '/'`);
  const mqttVersion = values['mqtt-version'] === undefined ? 5 : Number(values['mqtt-version']);
  if (mqttVersion !== 4 && mqttVersion !== 5) usage(`--mqtt-version must be 4 or 5, got '${values['mqtt-version']}'`);

  const log = logger.child({ component: 'monitor' });
  const store: MonitorStore = values.postgres !== undefined
    ? await openPostgresMonitorStore(values.postgres)
    : await openSqliteMonitorStore(values.db ?? DEFAULT_MONITOR_DB);
  let monitor;
  try {
    monitor = await startMonitor({
      broker: values.broker, prefix, store, host: values.host ?? '127.0.0.1', port,
      clientId: values['client-id'], protocolVersion: mqttVersion, log,
    });
  } catch (error) {
    await store.close();
    throw error;
  }
  io.stdout.write(`edgerun monitor: dashboard on ${monitor.url}/ (store ${store.description}, broker ${values.broker}, prefix ${prefix})\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  io.stdout.write(`edgerun monitor: ${signal}: stopping\n`);
  await monitor.stop();
  return 0;
}

function usage(message: string): never {
  throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun monitor: ${message}`, { command: 'monitor' });
}
