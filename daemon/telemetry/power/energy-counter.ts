/** Turns a cumulative energy counter (µJ) into energy and mean power per reading, handling wraparound. */
import type { PowerReading } from './types.ts';

export class EnergyCounter {
  private previous: { microJoules: number; monotonicMs: number } | undefined;

  /**
   * @param maxRangeMicroJoules the counter wraps to 0 after this value (RAPL's max_energy_range_uj); without it a
   *   decrease means the counter was reset (driver reload, suspend) and the interval has no value.
   */
  constructor(private readonly file: string, private readonly maxRangeMicroJoules?: number) {}

  update(microJoules: number, monotonicMs: number): PowerReading {
    const previous = this.previous;
    this.previous = { microJoules, monotonicMs };
    if (!previous) return { watts: null, reason: `first reading of ${this.file} (energy counter primed)` };
    const dtS = (monotonicMs - previous.monotonicMs) / 1000;
    if (!(dtS > 0)) return { watts: null, reason: `no time passed since the previous reading of ${this.file}` };
    let delta = microJoules - previous.microJoules;
    if (delta < 0) {
      if (this.maxRangeMicroJoules === undefined) return { watts: null, reason: `${this.file} went backwards (counter reset)` };
      delta += this.maxRangeMicroJoules;
      // More than one wrap in an interval cannot be told apart from one: refuse readings that could be wrong.
      if (delta < 0) return { watts: null, reason: `${this.file} is above its max_energy_range_uj (${this.maxRangeMicroJoules})` };
    }
    const energyJ = delta / 1e6;
    return { watts: energyJ / dtS, energyJ };
  }

  reset(): void {
    this.previous = undefined;
  }
}
