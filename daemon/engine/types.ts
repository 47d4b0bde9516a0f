/**
 * The one engine interface: serving, hot-swap, telemetry and the CLI talk only to this.
 * WebGPU (edgerun's own kernels) and onnxruntime-node on the CPU are two implementations.
 */
import type { DType, Tensor } from '../graph/ir.ts';

export interface TensorInfo {
  name: string;
  dtype: DType;
  /** Declared dims: numbers, symbolic names, or null when unknown. */
  dims: (number | string | null)[] | null;
}

export interface LoadOptions {
  /**
   * Concrete input shapes to compile for at load (all pipelines are built before load returns).
   * Without it, models whose inputs are fully static are compiled at load; others on first use of a shape.
   */
  inputShapes?: Map<string, number[]>;
}

export interface RunTimings {
  /** Wall time of the whole run, input conversion and readback included. */
  totalMs: number;
  /** Time spent compiling a new shape signature during this run (0 when it was prepared). */
  compileMs: number;
  /** GPU time from timestamp queries, when the adapter has them and profiling was asked for. */
  gpuMs?: number;
}

export interface RunResult {
  outputs: Map<string, Tensor>;
  timings: RunTimings;
}

export interface PrepareReport {
  /** Graph compile (analysis, fusion, WGSL generation, planning) on the main thread. */
  compileMs: number;
  /** Pipeline creation, buffer allocation and constant upload on the GPU thread. */
  gpuLoadMs: number;
  pipelines: number;
  dispatches: number;
  flops: number;
  activationBytes: number;
  constantBytes: number;
}

export interface Session {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  /** Compiles (and loads onto the device) everything needed for these input shapes. */
  prepare(inputShapes: Map<string, number[]>): Promise<PrepareReport>;
  run(feeds: Map<string, Tensor>, options?: { profile?: boolean }): Promise<RunResult>;
  close(): Promise<void>;
}

export interface Engine {
  readonly name: string;
  load(modelPath: string, options?: LoadOptions): Promise<Session>;
  close(): Promise<void>;
}
