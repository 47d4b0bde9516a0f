/**
 * What the request path and the model lifecycle report to telemetry. Implementations must return at once
 * (no I/O on the caller's path): the SQLite recorder queues and writes in batches.
 */
export interface RequestRecord {
  /** Unix epoch milliseconds when the request arrived. */
  at: number;
  model: string;
  version: string;
  engine: string;
  /** Time waiting for the engine (queue), computing, and in total (HTTP parse to reply). */
  queueMs: number;
  computeMs: number;
  totalMs: number;
  batchSize: number;
  ok: boolean;
  /** An EdgerunError code or HTTP status family when not ok. */
  error?: string;
}

export type LifecycleEventKind =
  | 'install' | 'load' | 'load_failed' | 'gate_passed' | 'gate_failed' | 'swap' | 'rollback'
  | 'probation_passed' | 'unload' | 'error' | 'start' | 'stop';

export interface LifecycleEvent {
  at: number;
  kind: LifecycleEventKind;
  model?: string;
  version?: string;
  /** Free-form details (reason, gate agreement, previous version, …), stored as JSON. */
  details?: Record<string, unknown>;
}

export interface AccuracyRecord {
  at: number;
  model: string;
  version: string;
  /** 'gate': eval set agreement before a swap; 'shadow': agreement with the previous version on live traffic. */
  kind: 'gate' | 'shadow';
  /** Fraction in [0, 1] of compared outputs that agree. */
  agreement: number;
  samples: number;
  /** The version compared against (shadow runs). */
  baselineVersion?: string;
}

export interface TelemetrySink {
  recordRequest(record: RequestRecord): void;
  recordEvent(event: LifecycleEvent): void;
  recordAccuracy(record: AccuracyRecord): void;
}
