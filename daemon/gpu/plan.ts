/**
 * What the graph compiler hands to the GPU thread: everything is decided on the main thread
 * (WGSL text, buffer sizes and reuse, dispatch order), so the GPU thread only creates and dispatches.
 * Plain data only: the plan crosses a worker boundary by structured clone.
 */
export interface PlannedPipeline {
  /** The specialisation key (pipelines with equal keys are shared, also across sessions). */
  key: string;
  label: string;
  code: string;
}

export interface PlannedBuffer {
  id: number;
  /** Size in bytes (a multiple of 4, at least 4). */
  bytes: number;
}

export interface PlannedBinding {
  buffer: number;
  /** Byte offset and size inside the buffer (offset a multiple of the adapter's minStorageBufferOffsetAlignment). */
  offset: number;
  size: number;
}

export interface PlannedStep {
  pipeline: number;
  bindings: PlannedBinding[];
  workgroups: [number, number, number];
  /** The ONNX node this dispatch belongs to, for error messages and profiling. */
  node: string;
}

export interface PlannedIO {
  name: string;
  buffer: number;
  offset: number;
  bytes: number;
}

export interface ExecutionPlan {
  pipelines: PlannedPipeline[];
  buffers: PlannedBuffer[];
  /** Data written once at load (weights, repacked constants). */
  constants: { buffer: number; offset: number; data: ArrayBuffer }[];
  steps: PlannedStep[];
  inputs: PlannedIO[];
  outputs: PlannedIO[];
}
