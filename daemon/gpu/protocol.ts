/**
 * The messages between the main thread (gpu-runtime.ts) and the GPU thread (gpu-thread.ts).
 * Plain data only: everything crosses by structured clone, ArrayBuffers by transfer where the sender allows it.
 */
import type { ErrorCode } from '../errors.ts';
import type { DeviceCaps } from '../kernels/types.ts';
import type { ExecutionPlan } from './plan.ts';

export interface RuntimeOptions {
  powerPreference?: 'low-power' | 'high-performance';
  /** Index into listAdapters(); when omitted, the adapter WebGPU picks for powerPreference. */
  adapterIndex?: number;
  /**
   * Dawn instance flags such as `enable-dawn-features=allow_unsafe_apis,disable_robustness`.
   * Omitted: CPU_ADAPTER_TOGGLES on CPU adapters (lavapipe, SwiftShader), none on hardware. `[]` forces none.
   */
  dawnToggles?: string[];
  /** Bytes of freed GPU buffers the pool keeps for reuse before destroying them (default 64 MiB). */
  poolIdleBytes?: number;
  /** Pipelines no session uses that the cache keeps for a later load (default 256). */
  idlePipelines?: number;
}

/** Measured on lavapipe: about 15 % faster kernels (see ENVIRONMENT.md). */
export const CPU_ADAPTER_TOGGLES: readonly string[] = ['enable-dawn-features=allow_unsafe_apis,disable_robustness'];

export interface AdapterReport {
  /** Position in listAdapters(), usable as RuntimeOptions.adapterIndex; -1 when the adapter was not enumerated. */
  index: number;
  /** The driver's adapter name as Dawn lists it (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`). */
  name: string;
  /** Dawn backend (vulkan, metal, d3d12, …); '' when unknown. */
  backend: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** A software adapter running on the CPU (lavapipe/llvmpipe, SwiftShader, WARP). */
  isCpu: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  features: string[];
  limits: Record<string, number>;
}

/** DeviceCaps as it crosses the thread boundary (features as an array instead of a Set). */
export interface SerializedDeviceCaps extends Omit<DeviceCaps, 'features'> {
  features: string[];
}

export interface RuntimeInfo {
  adapter: AdapterReport;
  caps: SerializedDeviceCaps;
  minStorageBufferOffsetAlignment: number;
  /** The Dawn flags the instance was created with. */
  dawnToggles: string[];
  /** Profiling uses timestamp queries (else wall time). */
  timestampQuery: boolean;
}

export interface SessionStats {
  /** Distinct pipelines the plan uses. */
  pipelines: number;
  /** Pipelines this load compiled (the others came from the cache). */
  compiledPipelines: number;
  /** Bytes of GPU buffers the session holds (after size-class rounding). */
  bufferBytes: number;
  constantBytes: number;
  /** Wall time of compiling (or awaiting) every pipeline, in parallel. */
  compileMs: number;
}

export interface RuntimeStats {
  sessions: number;
  cachedPipelines: number;
  idlePipelines: number;
  pipelinesCompiled: number;
  pipelineCacheHits: number;
  pooledBuffers: number;
  pooledBytes: number;
  liveBufferBytes: number;
  buffersCreated: number;
  buffersReused: number;
  submitted: number;
  completed: number;
}

export interface ThreadRunResult {
  outputs: Map<string, ArrayBuffer>;
  gpuMs?: number;
  perNodeMs?: Map<string, number>;
  timing?: 'timestamp-query' | 'wall-clock';
}

export type Request =
  | { op: 'init'; options: RuntimeOptions }
  | { op: 'listAdapters' }
  | { op: 'load'; plan: ExecutionPlan }
  | { op: 'run'; session: number; inputs: Map<string, ArrayBuffer>; profile: boolean }
  | { op: 'dispose'; session: number }
  | { op: 'stats' }
  | { op: 'close' }
  | { op: 'destroyDevice' }
  /** Diagnostics: an uncaught exception on the GPU thread. */
  | { op: 'crash' };

export type RequestMessage = Request & { id: number };

export interface SerializedError {
  code?: ErrorCode;
  message: string;
  context?: Record<string, unknown>;
  stack?: string;
}

export type ResponseMessage =
  | { kind: 'response'; id: number; ok: true; value: unknown }
  | { kind: 'response'; id: number; ok: false; error: SerializedError };

export type EventMessage =
  | { kind: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; context?: Record<string, unknown> }
  | { kind: 'lost'; reason: string; message: string };

export type ThreadMessage = ResponseMessage | EventMessage;
