/** Pluggable power sources. Each wraps one sensor; none ever makes a number up: no reading → a reason. */

export type PowerSourceKind = 'rapl' | 'hwmon' | 'nvidia' | 'ina3221' | 'battery';

export type PowerReading =
  /** energyJ: energy since this source's previous reading, for sensors with an energy counter. */
  | { watts: number; energyJ?: number }
  | { watts: null; reason: string };

export interface PowerSource {
  /** Stable id stored with every sample, e.g. 'rapl:package-0', 'hwmon:amdgpu/power1', 'nvidia:gpu0', 'ina3221:VDD_IN'. */
  readonly id: string;
  readonly kind: PowerSourceKind;
  /**
   * Reads the sensor. `monotonicMs` (performance.now()) times energy counters; a counter source's first read only
   * primes it and reports no value.
   */
  read(monotonicMs: number): Promise<PowerReading>;
}

export interface DetectOptions {
  /** Root of the sysfs tree (default '/sys'); tests point it at a fake tree. */
  sysfsRoot?: string;
  /** nvidia-smi command (default 'nvidia-smi' on PATH); null skips NVIDIA. */
  nvidiaSmi?: string | null;
  /** Only these kinds (default all). */
  kinds?: PowerSourceKind[];
}

export interface DetectResult {
  sources: PowerSource[];
  /** For each kind that found nothing: what was looked for and why it is absent. */
  missing: string[];
}
