/**
 * The operator side's MQTT connection (publish, rollout, fleet status): validates the broker URL, connects
 * within a timeout (an unreachable broker is EDGERUN_ERR_FLEET_BROKER naming the URL, not a silent retry
 * loop), and only then turns mqtt.js's reconnect on, so a broker restart in the middle of a transfer is ridden
 * out rather than fatal.
 */
import crypto from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { EdgerunError } from '../errors.ts';

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const BROKER_SCHEMES = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:']);
const RECONNECT_PERIOD_MS = 500;

export interface OperatorConnectOptions {
  connectTimeoutMs?: number;
  /** Client id prefix; a random suffix keeps two operators from kicking each other off. */
  clientIdPrefix?: string;
}

/** Checks `url` names an MQTT broker (scheme and host); returns it normalised. */
export function parseBrokerUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EdgerunError('EDGERUN_ERR_FLEET_BROKER', `'${url}' is not a broker URL (expected mqtt://HOST[:PORT])`, { url });
  }
  if (!BROKER_SCHEMES.has(parsed.protocol) || parsed.hostname === '') {
    throw new EdgerunError('EDGERUN_ERR_FLEET_BROKER',
      `'${url}' is not a broker URL: the scheme must be one of ${[...BROKER_SCHEMES].map((s) => s.slice(0, -1)).join(', ')} and a host is required`,
      { url });
  }
  return parsed;
}

/**
 * Connects with MQTT 5 (or 3.1.1 when the broker refuses 5, as Aedes does); rejects with EDGERUN_ERR_FLEET_BROKER
 * (naming the URL) when no CONNACK comes in time.
 */
export async function connectOperator(url: string, options: OperatorConnectOptions = {}): Promise<MqttClient> {
  parseBrokerUrl(url);
  try {
    return await connectWith(url, options, 5);
  } catch (error) {
    if (!/unacceptable protocol version|unsupported protocol version/i.test((error as Error).message)) throw brokerError(url, error);
  }
  try {
    return await connectWith(url, options, 4);
  } catch (error) {
    throw brokerError(url, error);
  }
}

function brokerError(url: string, error: unknown): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_FLEET_BROKER', `cannot connect to the broker at ${url}: ${(error as Error).message}`, { url }, { cause: error });
}

async function connectWith(url: string, options: OperatorConnectOptions, protocolVersion: 4 | 5): Promise<MqttClient> {
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const clientOptions: IClientOptions = {
    protocolVersion,
    clientId: `${options.clientIdPrefix ?? 'edgerun-operator'}-${crypto.randomBytes(4).toString('hex')}`,
    clean: true,
    connectTimeout: timeoutMs,
    reconnectPeriod: 0,
    keepalive: 30,
  };
  const client = mqtt.connect(url, clientOptions);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('close', onClose);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = (): void => settle();
      const onError = (error: Error): void => settle(error);
      const onClose = (): void => settle(new Error('the connection closed before the broker accepted it'));
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('close', onClose);
    });
  } catch (error) {
    client.end(true);
    throw error;
  }
  // Errors after the first CONNACK are transient (mqtt.js reconnects); without a listener they would throw.
  client.on('error', () => undefined);
  client.options.reconnectPeriod = RECONNECT_PERIOD_MS;
  return client;
}

/**
 * A second connection to the broker `client` is connected to (same address, protocol version and credentials).
 * The chunk stream reads the devices' acknowledgements on one of these: on the chunk connection they queue behind
 * the broker's small PUBACK writes, which Mosquitto (TCP_NODELAY off by default) holds back until our delayed TCP
 * ACK, ~40 ms a round, and a paced stream moves one bounded lead per round.
 */
export async function connectCompanion(client: MqttClient, clientIdPrefix: string): Promise<MqttClient> {
  const { protocol, hostname, host, port, path, username, password, connectTimeout } = client.options;
  const url = new URL(`${protocol ?? 'mqtt'}://${hostname ?? host ?? 'localhost'}`);
  if (port) url.port = String(port);
  if (path && /^wss?$/.test(protocol ?? '')) url.pathname = path;
  if (username) url.username = username;
  if (password) url.password = password.toString();
  const companion = await connectOperator(url.toString(), { clientIdPrefix, ...(connectTimeout ? { connectTimeoutMs: connectTimeout } : {}) });
  noDelay(companion);
  companion.on('connect', () => noDelay(companion));
  return companion;
}

/** Small control messages (acknowledgements, PUBACKs) go out at once rather than waiting on Nagle's algorithm. */
export function noDelay(client: MqttClient): void {
  const socket = client.stream as { setNoDelay?: (noDelay: boolean) => unknown } | undefined;
  socket?.setNoDelay?.(true);
}

/** The broker's receive maximum (MQTT 5 CONNACK): how many QoS 1 publishes may await PUBACK at once. */
export function brokerReceiveMaximum(client: MqttClient): number | undefined {
  // mqtt.js keeps the CONNACK in a field its typings mark private.
  return (client as unknown as { connackPacket?: { properties?: { receiveMaximum?: number } } }).connackPacket?.properties?.receiveMaximum;
}
