/**
 * Adapter enumeration, selection and device creation. GPU thread only (it loads dawn.node).
 *
 * WebGPU's requestAdapter() returns one adapter; to list them all we use a dawn.node quirk: asking for an
 * adapter name that matches none makes requestAdapter reject with the list of available adapters.
 * Each listed adapter is then opened with the `adapter=<name>` flag (a substring match on the name).
 */
import os from 'node:os';
import { create } from 'webgpu';
import { EdgerunError } from '../errors.ts';
import { dawnPromise } from './dawn-promises.ts';
import { CPU_ADAPTER_TOGGLES, type AdapterReport, type RuntimeOptions, type SerializedDeviceCaps } from './protocol.ts';

process.env.XDG_RUNTIME_DIR ??= os.tmpdir();

const NO_SUCH_ADAPTER = 'edgerun-enumerate-adapters-no-such-name';

/** Features the kernels can use when present. */
const WANTED_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;

/** Limits raised to the adapter's maximum (the defaults are far below what kernels and weights need). */
const RAISED_LIMITS = [
  // Alignments are "better" when lower: take the adapter's (16 on lavapipe instead of the default 256).
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** The limits `edgerun devices` shows and AdapterReport carries. */
const REPORTED_LIMITS = [
  ...RAISED_LIMITS,
  'maxUniformBufferBindingSize',
  'maxBindGroups',
] as const;

interface ListedAdapter {
  backend: string;
  name: string;
}

async function enumerateAdapterNames(): Promise<ListedAdapter[] | null> {
  try {
    await dawnPromise(create([`adapter=${NO_SUCH_ADAPTER}`]).requestAdapter());
  } catch (error) {
    const listed: ListedAdapter[] = [];
    for (const line of String((error as Error).message).split('\n')) {
      const match = /backend:\s*'([^']*)',\s*name:\s*'(.*)'\s*$/.exec(line);
      if (match) listed.push({ backend: match[1], name: match[2] });
    }
    return listed;
  }
  return null;
}

const CPU_ADAPTER_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

function describeAdapter(adapter: GPUAdapter, listed: ListedAdapter | null, index: number): AdapterReport {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number };
  const isFallbackAdapter = info.isFallbackAdapter === true;
  const limits: Record<string, number> = {};
  for (const name of REPORTED_LIMITS) limits[name] = Number((adapter.limits as unknown as Record<string, number>)[name]);
  const report: AdapterReport = {
    index,
    name: listed?.name ?? info.device,
    backend: listed?.backend ?? '',
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallbackAdapter,
    isCpu: isFallbackAdapter || info.architecture === 'software' ||
      CPU_ADAPTER_NAMES.test(`${listed?.name ?? ''} ${info.device} ${info.description}`),
    features: [...adapter.features].sort(),
    limits,
  };
  if (typeof info.subgroupMinSize === 'number') report.subgroupMinSize = info.subgroupMinSize;
  if (typeof info.subgroupMaxSize === 'number') report.subgroupMaxSize = info.subgroupMaxSize;
  return report;
}

export async function listAdapterReports(): Promise<AdapterReport[]> {
  const listed = await enumerateAdapterNames();
  if (listed === null) {
    const adapter = await dawnPromise(create([]).requestAdapter());
    return adapter ? [describeAdapter(adapter, null, 0)] : [];
  }
  const reports: AdapterReport[] = [];
  for (const [index, entry] of listed.entries()) {
    const adapter = await dawnPromise(create([`backend=${entry.backend}`, `adapter=${entry.name}`]).requestAdapter()).catch(() => null);
    if (adapter) reports.push(describeAdapter(adapter, entry, index));
  }
  return reports;
}

/** Dawn's info.device is the driver's name made slug-like; match it back to the enumerated name. */
const slug = (name: string): string => name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

async function findListed(adapter: GPUAdapter): Promise<{ listed: ListedAdapter | null; index: number }> {
  const all = await enumerateAdapterNames();
  const device = slug(adapter.info.device);
  const index = all?.findIndex((entry) => slug(entry.name) === device) ?? -1;
  return index >= 0 ? { listed: all![index], index } : { listed: null, index: -1 };
}

export interface SelectedAdapter {
  /** Keep referenced for the device's lifetime: dawn.node tears the instance down when it is collected. */
  gpu: GPU;
  adapter: GPUAdapter;
  report: AdapterReport;
  dawnToggles: string[];
}

export async function selectAdapter(options: RuntimeOptions): Promise<SelectedAdapter> {
  let flags: string[] = [];
  let listed: ListedAdapter | null = null;
  let index = -1;
  if (options.adapterIndex !== undefined) {
    const all = await enumerateAdapterNames();
    listed = all?.[options.adapterIndex] ?? null;
    if (!listed) {
      throw new EdgerunError('EDGERUN_ERR_GPU_UNAVAILABLE',
        `no WebGPU adapter at index ${options.adapterIndex} (found ${all?.length ?? 0}: see \`edgerun devices\`)`,
        { adapterIndex: options.adapterIndex });
    }
    index = options.adapterIndex;
    flags = [`backend=${listed.backend}`, `adapter=${listed.name}`];
  }
  const request: GPURequestAdapterOptions = options.powerPreference ? { powerPreference: options.powerPreference } : {};
  const open = async (extra: string[]): Promise<{ gpu: GPU; adapter: GPUAdapter }> => {
    const gpu = create([...flags, ...extra]);
    let adapter: GPUAdapter | null;
    try {
      adapter = await dawnPromise(gpu.requestAdapter(request));
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_GPU_UNAVAILABLE', `no WebGPU adapter: ${(error as Error).message}`, { flags }, { cause: error });
    }
    if (!adapter) {
      throw new EdgerunError('EDGERUN_ERR_GPU_UNAVAILABLE',
        'no WebGPU adapter (on machines without a GPU, install Mesa lavapipe: mesa-vulkan-drivers ≥ 23)', { flags });
    }
    return { gpu, adapter };
  };

  let opened = await open(options.dawnToggles ?? []);
  if (!listed) ({ listed, index } = await findListed(opened.adapter));
  let report = describeAdapter(opened.adapter, listed, index);
  const dawnToggles = options.dawnToggles ?? (report.isCpu ? [...CPU_ADAPTER_TOGGLES] : []);
  if (options.dawnToggles === undefined && dawnToggles.length > 0) {
    // Toggles are instance flags, and whether we want them depends on the adapter: reopen with them.
    opened = await open(dawnToggles);
    report = describeAdapter(opened.adapter, listed, index);
  }
  return { ...opened, report, dawnToggles };
}

export async function openDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredFeatures = WANTED_FEATURES.filter((feature) => adapter.features.has(feature)) as GPUFeatureName[];
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = Number((adapter.limits as unknown as Record<string, number>)[name]);
  try {
    return await dawnPromise(adapter.requestDevice({ label: 'edgerun', requiredFeatures, requiredLimits }));
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_GPU_UNAVAILABLE', `requestDevice failed: ${(error as Error).message}`, {}, { cause: error });
  }
}

/**
 * The device's capabilities for kernel generation. WGSL language features (gpu.wgslLanguageFeatures, e.g.
 * packed_4x8_integer_dot_product) join the device features with a `wgsl:` prefix.
 */
export function deviceCaps(device: GPUDevice, report: AdapterReport, languageFeatures: Iterable<string> = []): SerializedDeviceCaps {
  const limits = device.limits;
  return {
    vendor: report.vendor,
    architecture: report.architecture,
    isCpu: report.isCpu,
    features: [...device.features, ...[...languageFeatures].map((f) => `wgsl:${f}`)].sort(),
    limits: {
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      maxBufferSize: limits.maxBufferSize,
    },
  };
}
