/**
 * The contract between the graph compiler and the operator implementations.
 *
 * Each op family lives in one file under daemon/kernels/ and exports `ops: OpDefinition[]`.
 * An OpDefinition validates a node and infers its output types (`infer`), optionally evaluates it on the
 * CPU when all inputs are constant (`fold`, used by constant folding of shape subgraphs and weights), and
 * generates the WGSL programs that run it on the GPU (`build`). WGSL generation happens on the main
 * thread at load time; the GPU thread only compiles and dispatches what it is given.
 */
import type { DType, Node, Tensor, TensorType } from '../graph/ir.ts';

export interface DeviceCaps {
  vendor: string;
  architecture: string;
  /** true for CPU/software adapters (lavapipe, SwiftShader): kernels may pick other tilings. */
  isCpu: boolean;
  features: ReadonlySet<string>;
  limits: {
    maxComputeWorkgroupSizeX: number;
    maxComputeWorkgroupSizeY: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBufferBindingSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxBufferSize: number;
  };
}

export interface OpContext {
  node: Node;
  /** The opset version in force for the node's domain. */
  opset: number;
  /** One entry per node input; null where the optional input is omitted. */
  inputs: (TensorType | null)[];
  /** The constant value of each input when known at compile time (initializer or folded), else null. */
  constants: (Tensor | null)[];
}

/**
 * An elementwise computation over f32/i32/u32 values, as a tiny SSA program. Used for
 *  - `edgerun.FusedElementwise` nodes made by the elementwise fusion pass, and
 *  - epilogues fused into Conv / ConvTranspose / MatMul / Gemm outputs (activation chains).
 * Arguments refer to program inputs ({ input: i }), earlier steps ({ step: j }) or literals.
 */
export type ElementwiseArg = { input: number } | { step: number } | { literal: number };

export interface ElementwiseStep {
  /** An ONNX elementwise opType (Add, Mul, Relu, Clip, HardSigmoid, Where, Cast, …). */
  opType: string;
  args: ElementwiseArg[];
  /** The attributes of the original node (alpha, beta, min, max, to, …), already resolved to numbers. */
  attributes: Record<string, number>;
  /** The dtype this step produces. */
  dtype: DType;
}

export interface ElementwiseProgram {
  steps: ElementwiseStep[];
  /** The step whose value is the program's result (usually the last). */
  result: number;
}

/**
 * An epilogue fused onto a producer (Conv, MatMul, Gemm, …). In the program, { input: 0 } is the
 * producer's output value at the current element; no other tensor inputs are allowed (scalar constants
 * are inlined as literals).
 */
export type Epilogue = ElementwiseProgram;

export interface BuildContext extends OpContext {
  outputs: TensorType[];
  device: DeviceCaps;
  /** Present when the fusion pass attached an activation chain to this node; build must apply it. */
  epilogue?: Epilogue;
}

export type Binding =
  /** The node's i-th input tensor (a constant input resolves to its uploaded buffer). */
  | { kind: 'input'; index: number }
  /** The node's i-th output tensor. */
  | { kind: 'output'; index: number }
  /** A temporary owned by this node, shared by its programs through the same id; contents undefined at start. */
  | { kind: 'scratch'; id: number; bytes: number }
  /** Data prepared at build time (repacked or folded weights), uploaded once at load. */
  | { kind: 'constant'; data: Float32Array | Int32Array | Uint32Array };

export interface KernelProgram {
  /** A readable label for errors and debug dumps, e.g. `Conv 3x3 s1 (conv_12)`. */
  label: string;
  /**
   * The specialisation key: it names everything the WGSL depends on (op, dtypes, tile, baked shapes,
   * device features). Equal keys must mean byte-identical code: the pipeline cache relies on it.
   */
  key: string;
  /** A complete WGSL module with `@compute fn main`. Bindings are `@group(0) @binding(i)` in the order below. */
  code: string;
  workgroups: [number, number, number];
  bindings: Binding[];
}

export interface OpDefinition {
  opType: string;
  /** '' (ai.onnx, the default), 'com.microsoft' or 'edgerun'. */
  domain?: string;
  /** Lowest opset the implementation supports; older models are rejected as unsupported. */
  sinceVersion?: number;
  /** Validate attributes and input types and return the output types. Throws EdgerunError naming the node. */
  infer(ctx: OpContext): TensorType[];
  /** CPU evaluation when every (non-omitted) input is constant. Optional: ops without it are never folded. */
  fold?(ctx: OpContext, inputs: (Tensor | null)[]): Tensor[];
  /** When set, output 0 is a view of input 0 with a new shape (Reshape, Squeeze, …): no program runs. */
  aliasesInput0?: boolean;
  /** Present for simple elementwise ops so that fusion can inline them: the WGSL expression of one element. */
  elementwise?: ElementwiseOpInfo;
  /** Generate the GPU programs. Not called for ops with aliasesInput0. */
  build?(ctx: BuildContext): KernelProgram[];
}

export interface ElementwiseOpInfo {
  /** Number of tensor arguments (Relu 1, Add 2, Where 3, Clip 1 with min/max taken from constant inputs). */
  arity: number;
  /**
   * The attributes (as numbers) fusion must capture from the node; Clip's min/max inputs are turned into
   * attributes `min`/`max` by the op itself in `fusionAttributes`.
   */
  fusionAttributes?(ctx: OpContext): Record<string, number> | null;
}
