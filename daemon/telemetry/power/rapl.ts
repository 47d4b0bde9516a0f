/**
 * Linux powercap / RAPL: /sys/class/powercap/intel-rapl:N/energy_uj, a µJ counter that wraps at
 * max_energy_range_uj (AMD CPUs expose the same tree). Only top-level zones are read: subzones (core, uncore,
 * dram under a package: intel-rapl:N:M) are parts of their package and would count twice. When a 'psys' zone
 * (the whole platform) exists it alone is used, since it includes the packages.
 */
import { EnergyCounter } from './energy-counter.ts';
import { join, list, readInteger, readText } from './sysfs.ts';
import type { PowerReading, PowerSource } from './types.ts';

export class RaplSource implements PowerSource {
  readonly kind = 'rapl' as const;
  private readonly counter: EnergyCounter;
  private readonly energyFile: string;

  constructor(readonly id: string, zoneDir: string, maxRangeMicroJoules: number | undefined) {
    this.energyFile = join(zoneDir, 'energy_uj');
    this.counter = new EnergyCounter(this.energyFile, maxRangeMicroJoules);
  }

  async read(monotonicMs: number): Promise<PowerReading> {
    const value = await readInteger(this.energyFile);
    if (!value.ok) {
      this.counter.reset();
      return { watts: null, reason: value.reason.startsWith('permission denied') ? `${value.reason} (root-only since Linux 5.10: grant read access to the daemon's user)` : value.reason };
    }
    return this.counter.update(value.value, monotonicMs);
  }
}

export async function detectRapl(sysfsRoot: string): Promise<{ sources: RaplSource[]; missing?: string }> {
  const base = join(sysfsRoot, 'class', 'powercap');
  const zones = (await list(base)).filter((name) => /^intel-rapl:\d+$/.test(name));
  const found: { name: string; dir: string; maxRange: number | undefined }[] = [];
  for (const zone of zones) {
    const dir = join(base, zone);
    const name = await readText(join(dir, 'name'));
    const maxRange = await readInteger(join(dir, 'max_energy_range_uj'));
    found.push({ name: name.ok && name.value ? name.value : zone, dir, maxRange: maxRange.ok && maxRange.value > 0 ? maxRange.value : undefined });
  }
  if (found.length === 0) return { sources: [], missing: `RAPL: no ${base}/intel-rapl:N zones` };
  const psys = found.filter((z) => z.name === 'psys');
  const chosen = psys.length > 0 ? psys : found;
  const ids = new Set<string>();
  const sources = chosen.map((z) => {
    let id = `rapl:${z.name}`;
    if (ids.has(id)) id = `rapl:${z.name}@${z.dir.split('/').pop()}`;
    ids.add(id);
    return new RaplSource(id, z.dir, z.maxRange);
  });
  return { sources };
}
