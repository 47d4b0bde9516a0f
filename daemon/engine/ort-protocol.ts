/** Messages between OrtCpuEngine (serving thread) and an onnxruntime thread (one per session). */
import type { ErrorCode } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import type { TensorInfo } from './types.ts';

export interface OrtSessionOptions {
  /** Threads onnxruntime uses inside one operator (default: onnxruntime's choice, the number of cores). */
  intraOpNumThreads?: number;
  /**
   * Let idle pool threads spin between runs (onnxruntime's default). Off by default here: measured on 2 cores,
   * spinning used 5.5x the CPU time for a 1.5 ms model run every 20 ms, CPU the serving thread and the rest of
   * an edge box need (and power telemetry would charge to the model), for about 0.8 ms lower latency.
   */
  allowSpinning?: boolean;
}

export type OrtRequest =
  | { op: 'load'; modelPath: string; options: OrtSessionOptions }
  | { op: 'run'; feeds: [string, Tensor][] }
  | { op: 'close' };

export interface OrtLoaded {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export interface OrtRunResult {
  outputs: [string, Tensor][];
  /** Time inside onnxruntime's run on the thread, conversions excluded. */
  computeMs: number;
}

export interface SerializedError {
  message: string;
  code?: ErrorCode;
  context?: Record<string, unknown>;
}

export type OrtReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: SerializedError };

export type OrtRequestMessage = OrtRequest & { id: number };
