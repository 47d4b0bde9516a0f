/**
 * Shared pieces of the shape and data-movement ops: axis normalisation, reading constant int inputs, and
 * the skeleton of a kernel where each invocation writes one output element. Data movement never looks at
 * values, so every tensor is bound as `array<u32>` (all element types are 4 bytes on the GPU): one
 * pipeline serves float, int and bool tensors alike.
 */
import type { Node, Tensor, TensorType } from '../graph/ir.ts';
import { nodeError } from './elementwise-dtypes.ts';
import { linearDispatch } from './shader-util.ts';
import type { Binding, DeviceCaps, KernelProgram, OpContext } from './types.ts';

/** An axis in [-rank, rank) (or [-rank, rank] with `inclusive`) made non-negative, else EDGERUN_ERR_SHAPE. */
export function normalizeAxis(node: Node, axis: number, rank: number, what = 'axis', inclusive = false): number {
  const max = inclusive ? rank : rank - 1;
  if (!Number.isInteger(axis) || axis < -rank || axis > max) {
    throw nodeError('EDGERUN_ERR_SHAPE', node, `${what} ${axis} is out of range for rank ${rank}`, { axis, rank });
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalised, duplicate-free axes. */
export function normalizeAxes(node: Node, axes: number[], rank: number, what = 'axes'): number[] {
  const normalized = axes.map((axis) => normalizeAxis(node, axis, rank, what));
  if (new Set(normalized).size !== normalized.length) {
    throw nodeError('EDGERUN_ERR_SHAPE', node, `${what} [${axes}] repeat an axis`, { axes });
  }
  return normalized;
}

/** A required input's type, else EDGERUN_ERR_ONNX_INVALID naming the node. */
export function requiredInput(ctx: OpContext, index: number): TensorType {
  const type = ctx.inputs[index];
  if (!type) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `input ${index} is missing`);
  return type;
}

/**
 * The values of an input that must be known at compile time (shapes, axes, pads, …): shapes are static,
 * so a value computed at run time cannot decide an output shape.
 */
export function constantInput(ctx: OpContext, index: number, what: string): Tensor {
  const constant = ctx.constants[index];
  if (!constant) {
    throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node,
      `input ${index} ('${ctx.node.inputs[index]}', ${what}) must be known at compile time (an initializer or a folded value)`,
      { input: ctx.node.inputs[index] });
  }
  return constant;
}

/** An optional compile-time int list: from input `index` when present, else undefined. */
export function optionalConstantInts(ctx: OpContext, index: number, what: string): number[] | undefined {
  if (!ctx.inputs[index]) return undefined;
  return Array.from(constantInput(ctx, index, what).data);
}

export const WORKGROUP_SIZE = 64;
/**
 * Elements per invocation on CPU adapters, where a loop amortises each invocation's fixed cost. Measured on
 * lavapipe (best of 4 × 9 runs): NCHW→NHWC Transpose of 64×112×112 7.1 ms with 1 element per invocation,
 * 2.1 ms with 8; a strided Slice of [1,64,111,111] 6.6 → 1.8 ms; a vec4 Concat 1.7 → 1.0 ms.
 */
export const CPU_ELEMENTS_PER_INVOCATION = 8;

export interface ElementKernelSpec {
  label: string;
  /** Everything the code depends on besides what `total` and the workgroup count already say. */
  keyParts: string[];
  /** Elements (usually output elements); `body` handles element `idx`. */
  total: number;
  /** Module-scope declarations: bindings (in `bindings` order) and helper functions. */
  declarations: string[];
  /** Statements handling element `idx: u32` (already range-checked); may `return` to skip the rest. */
  body: string[];
  bindings: Binding[];
  device: DeviceCaps;
}

/** Assembles a kernel handling `total` elements; null when there is nothing to do. */
export function elementKernel(spec: ElementKernelSpec): KernelProgram | null {
  if (spec.total === 0) return null;
  const perInvocation = spec.device.isCpu ? Math.min(CPU_ELEMENTS_PER_INVOCATION, spec.total) : 1;
  const invocations = Math.ceil(spec.total / perInvocation);
  const dispatch = linearDispatch(invocations, WORKGROUP_SIZE, spec.device.limits.maxComputeWorkgroupsPerDimension);
  const code = [
    ...spec.declarations,
    'fn element(idx: u32) {',
    ...spec.body.flatMap((block) => block.split('\n')).map((line) => `  ${line.trim()}`),
    '}',
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    `  ${dispatch.prologue}`,
    ...(perInvocation === 1
      ? ['  element(idx);']
      : [
        // a lane-dependent trip count keeps the loop a loop: lavapipe fully unrolls constant-count loops,
        // and every unrolled copy of a load or store costs ~10-50 ms of first-dispatch compile time
        `  let first = idx * ${perInvocation}u;`,
        `  let end = min(first + ${perInvocation}u, ${spec.total}u);`,
        '  for (var e = first; e < end; e++) {',
        '    element(e);',
        '  }',
      ]),
    '}',
    '',
  ].join('\n');
  return {
    label: spec.label,
    key: [...spec.keyParts, `n${spec.total}`, `wg${WORKGROUP_SIZE}x${dispatch.workgroups.join('x')}u${perInvocation}`].join('|'),
    code,
    workgroups: dispatch.workgroups,
    bindings: spec.bindings,
  };
}

export function readBinding(binding: number, name: string, type = 'u32'): string {
  return `@group(0) @binding(${binding}) var<storage, read> ${name}: array<${type}>;`;
}

export function writeBinding(binding: number, name: string, type = 'u32'): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<${type}>;`;
}

/** Writes data known at build time (a folded value) to output `outputIndex` by copying a constant buffer. */
export function constantOutputProgram(label: string, value: Tensor, outputIndex: number, device: DeviceCaps): KernelProgram[] {
  const program = elementKernel({
    label,
    keyParts: ['copy-constant'],
    total: value.data.length,
    declarations: [readBinding(0, 'source'), writeBinding(1, 'destination')],
    body: ['destination[idx] = source[idx];'],
    bindings: [{ kind: 'constant', data: value.data }, { kind: 'output', index: outputIndex }],
    device,
  });
  return program ? [program] : [];
}

/** The product of dims [from, to). */
export function product(dims: readonly number[], from = 0, to = dims.length): number {
  let result = 1;
  for (let i = from; i < to; i++) result *= dims[i];
  return result;
}
