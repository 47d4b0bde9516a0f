/** Records the power sampler adds to those of the TelemetrySink contract (sink.ts). */

/** One source's reading over one sampling interval ending at `at`. */
export interface PowerSampleRecord {
  at: number;
  /** The source id, e.g. 'rapl:package-0', 'nvidia:gpu', 'ina3221:VDD_IN', 'none'. */
  source: string;
  /** Mean power over the interval; null when the source gave no reading. */
  watts: number | null;
  /** Why watts is null (no sensor, permission denied, counter reset, …); absent when watts is a number. */
  reason?: string;
  /** Energy over the interval; null when unavailable. */
  energyJ: number | null;
  intervalMs: number;
}

/** Energy attributed to one model version over one sampling interval ending at `at`. */
export interface EnergyRecord {
  at: number;
  intervalMs: number;
  model: string;
  version: string;
  /** Inferences (batch items) of this version that finished in the interval. */
  inferences: number;
  energyJ: number;
}

/** What a version did since the sampler last asked: the basis of energy attribution. */
export interface VersionActivity {
  model: string;
  version: string;
  inferences: number;
  computeMs: number;
}
