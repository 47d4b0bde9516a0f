/**
 * Jetson INA3221 rail monitors, two driver generations:
 * - the downstream ina3221x IIO driver (JetPack ≤ 4): /sys/bus/i2c/drivers/ina3221x/<dev>/iio:deviceN/
 *   in_powerK_input in mW, rail_name_K;
 * - the mainline hwmon driver (JetPack 5+): a hwmon chip named ina3221 with inK_input (mV), currK_input (mA) and
 *   inK_label; power is P = V·I.
 * Rails overlap (VDD_IN is the whole module, the others are parts of it): choose the ones to attribute in config.
 */
import { hwmonAttributeDir } from './hwmon.ts';
import { join, list, readInteger, readText } from './sysfs.ts';
import type { PowerReading, PowerSource } from './types.ts';

export class Ina3221IioRail implements PowerSource {
  readonly kind = 'ina3221' as const;
  constructor(readonly id: string, private readonly powerFile: string) {}

  async read(): Promise<PowerReading> {
    const mw = await readInteger(this.powerFile);
    if (!mw.ok) return { watts: null, reason: mw.reason };
    return { watts: mw.value / 1000 };
  }
}

export class Ina3221HwmonRail implements PowerSource {
  readonly kind = 'ina3221' as const;
  constructor(readonly id: string, private readonly voltageFile: string, private readonly currentFile: string) {}

  async read(): Promise<PowerReading> {
    const [mv, ma] = await Promise.all([readInteger(this.voltageFile), readInteger(this.currentFile)]);
    if (!mv.ok) return { watts: null, reason: mv.reason };
    if (!ma.ok) return { watts: null, reason: ma.reason };
    // mV · mA = µW
    return { watts: (mv.value * ma.value) / 1e6 };
  }
}

export async function detectIna3221(sysfsRoot: string): Promise<{ sources: PowerSource[]; missing?: string }> {
  const sources: PowerSource[] = [];
  const ids = new Set<string>();
  const uniqueId = (rail: string, where: string) => {
    let id = `ina3221:${rail}`;
    if (ids.has(id)) id = `ina3221:${rail}@${where}`;
    ids.add(id);
    return id;
  };

  const iioBase = join(sysfsRoot, 'bus', 'i2c', 'drivers', 'ina3221x');
  for (const device of await list(iioBase)) {
    for (const iio of (await list(join(iioBase, device))).filter((n) => /^iio:device\d+$/.test(n))) {
      const dir = join(iioBase, device, iio);
      for (const f of await list(dir)) {
        const m = /^in_power(\d+)_input$/.exec(f);
        if (!m) continue;
        const rail = await readText(join(dir, `rail_name_${m[1]}`));
        sources.push(new Ina3221IioRail(uniqueId(rail.ok && rail.value ? rail.value : `${device}/channel${m[1]}`, device), join(dir, f)));
      }
    }
  }

  const hwmonBase = join(sysfsRoot, 'class', 'hwmon');
  for (const device of (await list(hwmonBase)).filter((n) => /^hwmon\d+$/.test(n))) {
    const dir = await hwmonAttributeDir(join(hwmonBase, device));
    const chip = await readText(join(dir, 'name'));
    if (!chip.ok || chip.value !== 'ina3221') continue;
    const files = await list(dir);
    for (const f of files) {
      const m = /^in(\d+)_input$/.exec(f);
      if (!m || !files.includes(`curr${m[1]}_input`)) continue;
      // A disabled channel (inK_enable = 0) reads zeros that would look like a real idle rail.
      const enabled = await readInteger(join(dir, `in${m[1]}_enable`));
      if (enabled.ok && enabled.value === 0) continue;
      const label = await readText(join(dir, `in${m[1]}_label`));
      sources.push(new Ina3221HwmonRail(uniqueId(label.ok && label.value ? label.value : `${device}/in${m[1]}`, device), join(dir, f), join(dir, `curr${m[1]}_input`)));
    }
  }
  if (sources.length > 0) return { sources };
  return { sources, missing: `INA3221: no ${iioBase}/*/iio:device*/in_power*_input and no hwmon chip named ina3221` };
}
