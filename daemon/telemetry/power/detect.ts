/** Finds the power sensors this machine has. Reports none, with what was looked for, when there are none. */
import { detectBatteries } from './battery.ts';
import { detectHwmon } from './hwmon.ts';
import { detectIna3221 } from './ina3221.ts';
import { detectNvidia } from './nvidia.ts';
import { detectRapl } from './rapl.ts';
import type { DetectOptions, DetectResult, PowerSourceKind } from './types.ts';

export const ALL_POWER_SOURCE_KINDS: readonly PowerSourceKind[] = ['rapl', 'hwmon', 'nvidia', 'ina3221', 'battery'];

export async function detectPowerSources(options: DetectOptions = {}): Promise<DetectResult> {
  const root = options.sysfsRoot ?? '/sys';
  const kinds = new Set(options.kinds ?? ALL_POWER_SOURCE_KINDS);
  const nvidiaSmi = options.nvidiaSmi === undefined ? 'nvidia-smi' : options.nvidiaSmi;
  const probes: Promise<{ sources: DetectResult['sources']; missing?: string }>[] = [];
  if (kinds.has('rapl')) probes.push(detectRapl(root));
  if (kinds.has('hwmon')) probes.push(detectHwmon(root));
  if (kinds.has('nvidia')) probes.push(nvidiaSmi === null ? Promise.resolve({ sources: [], missing: 'NVIDIA: disabled' }) : detectNvidia(nvidiaSmi));
  if (kinds.has('ina3221')) probes.push(detectIna3221(root));
  if (kinds.has('battery')) probes.push(detectBatteries(root));
  const results = await Promise.all(probes);
  return {
    sources: results.flatMap((r) => r.sources),
    missing: results.flatMap((r) => (r.missing ? [r.missing] : [])),
  };
}

/** The reason recorded when no source exists. */
export function noSourceReason(result: DetectResult): string {
  return `no power sensor found (${result.missing.join('; ')})`;
}
