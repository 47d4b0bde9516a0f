/** The telemetry summary: what `edgerun telemetry --json`, GET /v2/telemetry/summary and the dashboard show. */

export interface LatencySummary {
  /** Percentiles of total latency (arrival to reply) from the rollup histograms: within ±1.1 % of a recorded value. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mean: number | null;
  max: number | null;
}

export interface GateSummary {
  at: number;
  agreement: number;
  samples: number;
}

export interface ShadowSummary {
  /** Agreement over all shadow samples in the window (weighted by samples). */
  agreement: number;
  samples: number;
  /** Shadow comparison records in the window. */
  records: number;
  /** The version compared against in the latest record. */
  baselineVersion: string | null;
}

export interface EnergySummary {
  /** Energy attributed to this version in the window. */
  joules: number;
  /** Inferences (batch items) the energy was divided among. */
  inferences: number;
  perInferenceJ: number | null;
}

export interface VersionSummary {
  model: string;
  version: string;
  engine: string;
  requests: number;
  errors: number;
  errorRate: number | null;
  /** Batch items served (a request of batch 8 counts 8). */
  items: number;
  /** Requests per second over the whole window. */
  throughputPerS: number;
  latencyMs: LatencySummary;
  queueMsMean: number | null;
  computeMsMean: number | null;
  /** Error codes of failed requests still held as raw rows (retention removes old ones). */
  errorCodes: { code: string; count: number }[];
  energy: EnergySummary | null;
  accuracy: { gate: GateSummary | null; shadow: ShadowSummary | null };
}

export interface PowerSourceSummary {
  source: string;
  /** True when at least one reading in the window had a value. */
  available: boolean;
  /** Energy-weighted mean over the readings that had a value. */
  meanWatts: number | null;
  energyJ: number | null;
  latestWatts: number | null;
  samples: number;
  unavailableSamples: number;
  /** Why the latest unavailable reading had no value. */
  reason: string | null;
}

export interface PowerSummary {
  available: boolean;
  /** Why no power is known, when none is. */
  reason: string | null;
  sources: PowerSourceSummary[];
}

export interface LatencyPoint {
  at: number;
  count: number;
  errors: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface TelemetrySummary {
  generatedAt: number;
  since: number;
  until: number;
  /** Width of one time-series point. Windows are widened to whole rollup buckets. */
  bucketMs: number;
  model: string | null;
  versions: VersionSummary[];
  power: PowerSummary;
  series: {
    latency: { model: string; version: string; points: LatencyPoint[] }[];
    power: { source: string; points: { at: number; watts: number }[] }[];
    shadow: { model: string; version: string; points: { at: number; agreement: number; samples: number }[] }[];
  };
  /** Lifecycle events in the window, newest first (at most 200). */
  events: { at: number; kind: string; model: string | null; version: string | null; details: Record<string, unknown> | null }[];
}
