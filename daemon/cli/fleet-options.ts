/**
 * The flags the fleet operator commands (publish, rollout, fleet status) share, with one way to read them, so a
 * flag means the same and fails with the same message (naming the command and the flag) in every command.
 */
import type { MqttClient } from 'mqtt';
import { connectOperator, DEFAULT_CONNECT_TIMEOUT_MS, parseBrokerUrl } from '../fleet/publisher-broker.ts';
import { parseChunkBytes, parseDuration, parseTopicPrefix, requireFlag } from '../fleet/publisher-options.ts';
import { DEFAULT_CHUNK_BYTES, DEFAULT_TOPIC_PREFIX } from '../fleet/protocol.ts';
import { readSigningKey, type SigningKey } from '../fleet/signing.ts';
import { parsePositiveInt } from './args.ts';

/** --broker, --prefix and --connect-timeout: every command that talks to the broker. */
export const BROKER_OPTIONS = {
  broker: { type: 'string' },
  prefix: { type: 'string' },
  'connect-timeout': { type: 'string' },
} as const;

/** --key, --timeout, --expires, --chunk-bytes and --window: every command that sends a signed deployment. */
export const DEPLOY_OPTIONS = {
  key: { type: 'string' },
  timeout: { type: 'string' },
  expires: { type: 'string' },
  'chunk-bytes': { type: 'string' },
  window: { type: 'string' },
} as const;

type FlagValues<T> = { readonly [K in keyof T]?: string | undefined };

export interface BrokerFlags {
  brokerUrl: string;
  connectTimeoutMs: number;
  prefix: string;
}

export interface DeployFlags extends BrokerFlags {
  key: SigningKey;
  timeoutMs: number;
  expiresInMs: number;
  chunkBytes: number;
  window: number;
}

export function parseBrokerFlags(command: string, values: FlagValues<typeof BROKER_OPTIONS>): BrokerFlags {
  const brokerUrl = requireFlag(command, 'broker', values.broker);
  parseBrokerUrl(brokerUrl);
  return {
    brokerUrl,
    connectTimeoutMs: parseDuration(command, 'connect-timeout', values['connect-timeout'], DEFAULT_CONNECT_TIMEOUT_MS),
    prefix: parseTopicPrefix(command, values.prefix, DEFAULT_TOPIC_PREFIX),
  };
}

/** Reads the key file last, after every flag checked, so a usage error never waits on the disk. */
export async function parseDeployFlags(command: string, values: FlagValues<typeof BROKER_OPTIONS & typeof DEPLOY_OPTIONS>): Promise<DeployFlags> {
  const broker = parseBrokerFlags(command, values);
  const timeoutMs = parseDuration(command, 'timeout', values.timeout, 10 * 60_000);
  const expiresInMs = parseDuration(command, 'expires', values.expires, 24 * 3_600_000);
  const chunkBytes = parseChunkBytes(command, values['chunk-bytes'], DEFAULT_CHUNK_BYTES);
  const window = parsePositiveInt(command, 'window', values.window, 16);
  const key = await readSigningKey(requireFlag(command, 'key', values.key));
  return { ...broker, key, timeoutMs, expiresInMs, chunkBytes, window };
}

/** Connects as `edgerun-<command>` so the broker's log tells which operator command a client is. */
export function connectFleetBroker(command: string, flags: BrokerFlags): Promise<MqttClient> {
  return connectOperator(flags.brokerUrl, { connectTimeoutMs: flags.connectTimeoutMs, clientIdPrefix: `edgerun-${command}` });
}
