/** `edgerun devices [--json]`: the WebGPU adapters this machine offers, with their features and limits. */
import { EdgerunError } from '../errors.ts';
import { listAdapters, type AdapterReport } from '../gpu/gpu-runtime.ts';
import { parseCommandArgs } from './args.ts';

const HELP = `usage: edgerun devices [--json]

Lists the WebGPU adapters (through Dawn): vendor, architecture, device, whether it is a CPU/fallback
adapter, its features and the limits that matter to kernels. The index is what --adapter / adapterIndex
selects. --json prints the full reports.
`;

/** Features the kernels use, shown first in the human listing. */
const KEY_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'];

export async function devicesCommand(args: string[], io: { stdout: NodeJS.WritableStream }): Promise<number> {
  const { values, positionals } = parseCommandArgs('devices', args, {
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun devices: unexpected argument '${positionals[0]}'`, { command: 'devices' });
  }
  const adapters = await listAdapters();
  if (values.json) {
    io.stdout.write(`${JSON.stringify(adapters, null, 2)}\n`);
    return adapters.length > 0 ? 0 : 1;
  }
  if (adapters.length === 0) {
    io.stdout.write('no WebGPU adapter found (on machines without a GPU, install Mesa lavapipe: mesa-vulkan-drivers ≥ 23)\n');
    return 1;
  }
  io.stdout.write(adapters.map(formatAdapter).join('\n'));
  return 0;
}

const bytes = (n: number): string => {
  for (const [unit, size] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= size) return `${+(n / size).toFixed(1)} ${unit}`;
  }
  return `${n} B`;
};

export function formatAdapter(a: AdapterReport): string {
  const kind = a.isCpu ? `CPU adapter${a.isFallbackAdapter ? ', fallback' : ''}` : a.isFallbackAdapter ? 'fallback adapter' : 'GPU';
  const key = KEY_FEATURES.map((f) => `${f} ${a.features.includes(f) ? 'yes' : 'no'}`).join(' · ');
  const others = a.features.filter((f) => !KEY_FEATURES.includes(f));
  const l = a.limits;
  const subgroups = a.subgroupMinSize !== undefined ? ` · subgroup size ${a.subgroupMinSize}–${a.subgroupMaxSize}` : '';
  return [
    `#${a.index}  ${a.name}${a.backend ? `  [${a.backend}]` : ''}  (${kind})`,
    `    vendor ${a.vendor || '?'} · architecture ${a.architecture || '?'} · device ${a.device || '?'}`,
    `    description ${a.description || '?'}`,
    `    ${key}${subgroups}`,
    `    other features: ${others.join(', ') || 'none'}`,
    `    limits: maxBufferSize ${bytes(l.maxBufferSize)} · maxStorageBufferBindingSize ${bytes(l.maxStorageBufferBindingSize)}` +
      ` · maxStorageBuffersPerShaderStage ${l.maxStorageBuffersPerShaderStage}`,
    `            maxComputeWorkgroupStorageSize ${bytes(l.maxComputeWorkgroupStorageSize)} · maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup}` +
      ` · maxComputeWorkgroupSize ${l.maxComputeWorkgroupSizeX}×${l.maxComputeWorkgroupSizeY}×${l.maxComputeWorkgroupSizeZ}`,
    `            maxComputeWorkgroupsPerDimension ${l.maxComputeWorkgroupsPerDimension} · minStorageBufferOffsetAlignment ${l.minStorageBufferOffsetAlignment}`,
    '',
  ].join('\n');
}
