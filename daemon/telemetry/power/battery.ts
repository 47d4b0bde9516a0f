/**
 * power_supply batteries: /sys/class/power_supply/<name>/ with type 'Battery', power_now (µW) or
 * voltage_now (µV) · current_now (µA). Only a discharging battery measures what the system draws; while charging
 * or full the reading is the charger's business and is reported as unavailable, with the status as the reason.
 */
import { join, list, readInteger, readText } from './sysfs.ts';
import type { PowerReading, PowerSource } from './types.ts';

export class BatterySource implements PowerSource {
  readonly kind = 'battery' as const;
  constructor(readonly id: string, private readonly dir: string) {}

  async read(): Promise<PowerReading> {
    const status = await readText(join(this.dir, 'status'));
    if (status.ok && status.value !== 'Discharging') {
      return { watts: null, reason: `battery ${this.id.slice('battery:'.length)} is ${status.value}: it measures charging, not the system's draw` };
    }
    const power = await readInteger(join(this.dir, 'power_now'));
    if (power.ok) return { watts: Math.abs(power.value) / 1e6 };
    const [voltage, current] = await Promise.all([readInteger(join(this.dir, 'voltage_now')), readInteger(join(this.dir, 'current_now'))]);
    if (!voltage.ok) return { watts: null, reason: `${power.reason}; ${voltage.reason}` };
    if (!current.ok) return { watts: null, reason: `${power.reason}; ${current.reason}` };
    // µV · µA = pW; some drivers report discharge current as negative.
    return { watts: Math.abs(voltage.value * current.value) / 1e12 };
  }
}

export async function detectBatteries(sysfsRoot: string): Promise<{ sources: PowerSource[]; missing?: string }> {
  const base = join(sysfsRoot, 'class', 'power_supply');
  const sources: PowerSource[] = [];
  for (const name of await list(base)) {
    const type = await readText(join(base, name, 'type'));
    if (type.ok && type.value === 'Battery') sources.push(new BatterySource(`battery:${name}`, join(base, name)));
  }
  if (sources.length > 0) return { sources };
  return { sources, missing: `battery: no ${base}/* with type Battery` };
}
