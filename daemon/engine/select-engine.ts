/**
 * Which engine serves: WebGPU (edgerun's kernels) where a hardware adapter exists, onnxruntime on the CPU
 * where the only adapters are software ones or there is none: on lavapipe (2 cores) PP-OCR's classifier takes
 * about 190 ms through WebGPU and under 2 ms through onnxruntime's native CPU kernels.
 */
import type { AdapterReport, GpuRuntimeOptions } from '../gpu/gpu-runtime.ts';
import { listAdapters } from '../gpu/gpu-runtime.ts';
import { logger } from '../log.ts';
import { OrtCpuEngine, type OrtCpuEngineOptions } from './ort-cpu-engine.ts';
import type { Engine } from './types.ts';
import { WebGpuEngine } from './webgpu-engine.ts';

const log = logger.child({ component: 'select-engine' });

export type EnginePreference = 'auto' | 'webgpu' | 'cpu';

export interface SelectEngineOptions {
  cpu?: OrtCpuEngineOptions;
  /** Runtime options for WebGPU; with 'auto', adapterIndex defaults to the first hardware adapter. */
  webgpu?: GpuRuntimeOptions;
  /** The adapters to decide from (default: listAdapters(), which starts a short-lived GPU thread). */
  adapters?: () => Promise<AdapterReport[]>;
}

/** The first non-CPU adapter, or undefined when there is none (or WebGPU cannot start at all). */
export async function findHardwareAdapter(adapters: () => Promise<AdapterReport[]> = listAdapters): Promise<AdapterReport | undefined> {
  try {
    return (await adapters()).find((adapter) => !adapter.isCpu);
  } catch (error) {
    log.info({ err: (error as Error).message }, 'no WebGPU adapter could be listed');
    return undefined;
  }
}

export async function selectEngine(preference: EnginePreference, options: SelectEngineOptions = {}): Promise<Engine> {
  if (preference === 'cpu') return OrtCpuEngine.create(options.cpu);
  if (preference === 'webgpu') return WebGpuEngine.create(options.webgpu);
  const hardware = await findHardwareAdapter(options.adapters);
  if (!hardware) {
    log.info('no hardware WebGPU adapter: serving with onnxruntime on the CPU');
    return OrtCpuEngine.create(options.cpu);
  }
  log.info({ adapter: hardware.name, backend: hardware.backend }, 'serving with WebGPU on a hardware adapter');
  return WebGpuEngine.create({ adapterIndex: hardware.index >= 0 ? hardware.index : undefined, ...options.webgpu });
}
