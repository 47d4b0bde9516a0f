/**
 * hwmon: /sys/class/hwmon/hwmonN/{name, powerK_input (µW), energyK_input (µJ counter), powerK_label}. A channel
 * with an energy counter is read through it (exact energy between samples); otherwise its power input (or
 * powerK_average, which amdgpu exposes instead) is sampled. Older drivers put the attributes under hwmonN/device/.
 * Chips named ina3221 are left to the INA3221 source, which reads their voltage and current channels.
 */
import { EnergyCounter } from './energy-counter.ts';
import { exists, join, list, readInteger, readText } from './sysfs.ts';
import type { PowerReading, PowerSource } from './types.ts';

export class HwmonPowerSource implements PowerSource {
  readonly kind = 'hwmon' as const;
  constructor(readonly id: string, private readonly file: string) {}

  async read(): Promise<PowerReading> {
    const value = await readInteger(this.file);
    if (!value.ok) return { watts: null, reason: value.reason };
    if (value.value < 0) return { watts: null, reason: `${this.file} holds a negative power (${value.value} µW)` };
    return { watts: value.value / 1e6 };
  }
}

export class HwmonEnergySource implements PowerSource {
  readonly kind = 'hwmon' as const;
  private readonly counter: EnergyCounter;
  constructor(readonly id: string, private readonly file: string) {
    this.counter = new EnergyCounter(file);
  }

  async read(monotonicMs: number): Promise<PowerReading> {
    const value = await readInteger(this.file);
    if (!value.ok) {
      this.counter.reset();
      return { watts: null, reason: value.reason };
    }
    return this.counter.update(value.value, monotonicMs);
  }
}

/** The directory holding a hwmon device's attribute files. */
export async function hwmonAttributeDir(dir: string): Promise<string> {
  return (await exists(join(dir, 'name'))) ? dir : join(dir, 'device');
}

export async function detectHwmon(sysfsRoot: string): Promise<{ sources: PowerSource[]; missing?: string }> {
  const base = join(sysfsRoot, 'class', 'hwmon');
  const devices = (await list(base)).filter((name) => /^hwmon\d+$/.test(name));
  const sources: PowerSource[] = [];
  const ids = new Set<string>();
  for (const device of devices) {
    const dir = await hwmonAttributeDir(join(base, device));
    const nameRead = await readText(join(dir, 'name'));
    const chip = nameRead.ok && nameRead.value ? nameRead.value : device;
    if (chip === 'ina3221') continue;
    const files = await list(dir);
    const channels = new Set<string>();
    for (const f of files) {
      const m = /^(power|energy)(\d+)_(input|average)$/.exec(f);
      if (m) channels.add(m[2]);
    }
    for (const channel of [...channels].sort((a, b) => Number(a) - Number(b))) {
      const label = await readText(join(dir, `power${channel}_label`));
      const energyLabel = await readText(join(dir, `energy${channel}_label`));
      const channelName = label.ok && label.value ? label.value : energyLabel.ok && energyLabel.value ? energyLabel.value : `power${channel}`;
      let id = `hwmon:${chip}/${channelName}`;
      if (ids.has(id)) id = `hwmon:${chip}@${device}/${channelName}`;
      ids.add(id);
      if (files.includes(`energy${channel}_input`)) sources.push(new HwmonEnergySource(id, join(dir, `energy${channel}_input`)));
      else if (files.includes(`power${channel}_input`)) sources.push(new HwmonPowerSource(id, join(dir, `power${channel}_input`)));
      else if (files.includes(`power${channel}_average`)) sources.push(new HwmonPowerSource(id, join(dir, `power${channel}_average`)));
    }
  }
  if (sources.length > 0) return { sources };
  return { sources, missing: devices.length === 0 ? `hwmon: no ${base}/hwmonN devices` : `hwmon: none of ${devices.length} hwmon devices has power or energy inputs` };
}
