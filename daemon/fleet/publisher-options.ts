/**
 * Command-line values the fleet commands share: durations (`30s`, `10m`), deployment targets (`DEVICE` or
 * `group:NAME`), topic prefixes and chunk sizes, each checked before anything is read or published.
 */
import { EdgerunError } from '../errors.ts';
import { MAX_CHUNK_BYTES } from './messages.ts';
import { FLEET_NAME_PATTERN } from './protocol.ts';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function usage(command: string, message: string, context: Record<string, unknown>): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: ${message}`, { command, ...context });
}

/** `500ms`, `30s`, `10m`, `2h`, `1d` → milliseconds. */
export function parseDuration(command: string, flag: string, text: string | undefined, fallbackMs: number): number {
  if (text === undefined) return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2]!]! : NaN;
  if (!Number.isFinite(ms) || ms <= 0) {
    throw usage(command, `--${flag} must be a duration such as 30s, 10m or 2h, got '${text}'`, { flag, value: text });
  }
  return Math.round(ms);
}

export function checkFleetName(command: string, what: string, name: string): string {
  if (!FLEET_NAME_PATTERN.test(name)) {
    throw usage(command, `${what} '${name}' is not a valid name (letters, digits, '.', '_', '-'; starting with a letter or digit; at most 128)`,
      { what, value: name });
  }
  return name;
}

export type DeployTarget = { kind: 'device'; deviceId: string } | { kind: 'group'; group: string };

/** `--to DEVICE` or `--to group:NAME` (a device id cannot contain ':', so the two never clash). */
export function parseDeployTarget(command: string, text: string | undefined): DeployTarget {
  if (text === undefined) throw usage(command, '--to DEVICE or --to group:NAME is required', { flag: 'to' });
  if (text.startsWith('group:')) return { kind: 'group', group: checkFleetName(command, 'group', text.slice('group:'.length)) };
  return { kind: 'device', deviceId: checkFleetName(command, 'device id', text) };
}

export function parseTopicPrefix(command: string, text: string | undefined, fallback: string): string {
  if (text === undefined) return fallback;
  if (text === '' || /[#+\0]/.test(text) || text.startsWith('/') || text.endsWith('/')) {
    throw usage(command, `--prefix '${text}' is not a topic prefix (no wildcards, no leading or trailing '/')`, { flag: 'prefix', value: text });
  }
  return text;
}

export function parseChunkBytes(command: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1024 || value > MAX_CHUNK_BYTES) {
    throw usage(command, `--chunk-bytes must be an integer from 1024 to ${MAX_CHUNK_BYTES}, got '${text}'`, { flag: 'chunk-bytes', value: text });
  }
  return value;
}

export function requireFlag(command: string, flag: string, value: string | undefined): string {
  if (value === undefined || value === '') throw usage(command, `--${flag} is required`, { flag });
  return value;
}
