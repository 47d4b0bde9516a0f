/**
 * The monitor's MQTT connection: a persistent session (clean: false, a stable client id, MQTT 5 session expiry),
 * so telemetry published while the monitor restarts waits for it at the broker. The first connection must succeed
 * within a timeout (EDGERUN_ERR_FLEET_BROKER naming the URL); after that, reconnecting is mqtt.js's job.
 */
import os from 'node:os';
import mqtt, { type MqttClient } from 'mqtt';
import { EdgerunError } from '../errors.ts';
import { parseBrokerUrl } from '../fleet/publisher-broker.ts';

/** How long the broker keeps the monitor's session and queued messages while it is away. */
export const MONITOR_SESSION_EXPIRY_SECONDS = 24 * 3600;

export interface MonitorClientOptions {
  /** Default `edgerun-monitor-<host name>`: one per host, so a restarted monitor resumes its session. */
  clientId?: string;
  protocolVersion?: 4 | 5;
  connectTimeoutMs?: number;
}

export function defaultMonitorClientId(): string {
  return `edgerun-monitor-${os.hostname().replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

export async function connectMonitor(url: string, options: MonitorClientOptions = {}): Promise<MqttClient> {
  parseBrokerUrl(url);
  const protocolVersion = options.protocolVersion ?? 5;
  const timeoutMs = options.connectTimeoutMs ?? 10_000;
  const client = mqtt.connect(url, {
    clientId: options.clientId ?? defaultMonitorClientId(),
    clean: false,
    protocolVersion,
    reconnectPeriod: 1000,
    connectTimeout: timeoutMs,
    ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: MONITOR_SESSION_EXPIRY_SECONDS } } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      client.once('connect', () => { clearTimeout(timer); resolve(); });
      client.once('error', (error) => { clearTimeout(timer); reject(error); });
    });
  } catch (error) {
    await client.endAsync(true);
    throw new EdgerunError('EDGERUN_ERR_FLEET_BROKER', `monitor: cannot connect to the broker at ${url}: ${(error as Error).message}`, { url }, { cause: error });
  }
  // Errors after the first CONNACK are transient (mqtt.js reconnects); without a listener they would throw.
  client.on('error', () => undefined);
  return client;
}
