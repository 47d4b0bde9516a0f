/** What build() takes, the limits with their defaults, and the context every serving plugin shares. */
import type { Registry } from 'prom-client';
import { EdgerunError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { ModelRegistry } from '../swap/registry.ts';
import type { TelemetrySink } from '../telemetry/sink.ts';
import type { InferenceQueue } from './inference-queue.ts';
import type { ServerMetrics } from './server-metrics.ts';

export interface ServeLimits {
  /** Largest request body in bytes, JSON header and binary tensor data together (413 beyond). */
  bodyLimitBytes: number;
  /** An inference request's time from arrival to its result, queue wait included (504 beyond). */
  requestTimeoutMs: number;
  /** Inferences that run on one model's session at once. */
  maxConcurrency: number;
  /** Requests that may wait behind them per model (503 + Retry-After beyond). */
  maxQueue: number;
  /** The Retry-After header of an overloaded reply, in seconds. */
  retryAfterSeconds: number;
  /**
   * How long an idle keep-alive connection stays open. Longer than clients' pool timeouts, so the server is
   * never the side that closes a connection a client is about to reuse (that race drops requests).
   */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<ServeLimits> = {
  bodyLimitBytes: 64 * 1024 * 1024,
  requestTimeoutMs: 30_000,
  maxConcurrency: 1,
  maxQueue: 64,
  retryAfterSeconds: 1,
  keepAliveTimeoutMs: 65_000,
};

export interface ServeOptions {
  registry: ModelRegistry;
  telemetry?: TelemetrySink;
  limits?: Partial<ServeLimits>;
  /** pino logger for the HTTP layer (default: the daemon's, as component "http"). */
  logger?: Logger;
  /**
   * Where the metrics live. Default: a registry of this app's own, with prom-client's default process metrics.
   * A registry passed in gets only the serving metrics (its owner decides about the default ones).
   */
  metricsRegistry?: Registry;
  /** While true every new request gets 503 with `Connection: close` (SIGTERM drain). */
  isDraining?: () => boolean;
  /** GET /v2 server metadata (default: edgerun and the package version). */
  serverInfo?: { name: string; version: string };
}

/** What the plugins share (passed as the plugin options of each). */
export interface ServeContext {
  registry: ModelRegistry;
  telemetry?: TelemetrySink;
  limits: ServeLimits;
  metrics: ServerMetrics;
  queueFor(model: string): InferenceQueue;
  isDraining: () => boolean;
  serverInfo: { name: string; version: string };
}

export function resolveLimits(limits: Partial<ServeLimits> = {}): ServeLimits {
  const resolved = { ...DEFAULT_LIMITS, ...limits };
  for (const [key, value] of Object.entries(resolved)) {
    const allowsZero = key === 'maxQueue';
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowsZero ? 0 : 1)) {
      throw new EdgerunError('EDGERUN_ERR_CONFIG', `limits.${key} must be a ${allowsZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(value)}`, { key: `limits.${key}` });
    }
  }
  return resolved;
}
