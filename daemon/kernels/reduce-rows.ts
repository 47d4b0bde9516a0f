/**
 * Row reductions: the shared engine of Reduce*, Softmax, LayerNormalization and InstanceNormalization.
 *
 * A tensor and a set of reduced axes define `rows` independent rows of `length` elements each (the row
 * index runs over the kept axes in row-major order, so it is also the flat index of a keepdims output).
 * A row kernel runs one or more reductions over each row in sequence (a later one may use an earlier
 * one's result: softmax's sum of exp(x - max)), then optional per-row and per-element statements.
 *
 * Two strategies, picked by sizes and adapter:
 *  - one invocation per row, looping over the row (many rows, or short rows; CPU adapters favour it);
 *  - one workgroup per row: strided partial reductions, then a tree reduction in workgroup memory
 *    (few long rows, where one invocation per row would leave the machine idle).
 */
import { elementCount } from '../graph/ir.ts';
import type { WgslScalar } from './elementwise-expr.ts';
import { stridesOf } from './shader-util.ts';
import type { Binding, DeviceCaps, KernelProgram } from './types.ts';

interface DimGroup {
  size: number;
  /** Element stride of the group's innermost dim (the group is contiguous over its dims). */
  stride: number;
}

export interface RowLayout {
  rows: number;
  length: number;
  /** The kept and reduced dims after dropping size-1 dims and merging adjacent dims of the same kind. */
  kept: DimGroup[];
  reduced: DimGroup[];
}

/** Rows of `shape` when `axes` (non-negative, any order) are reduced. */
export function rowLayout(shape: readonly number[], axes: readonly number[]): RowLayout {
  const reducedSet = new Set(axes);
  const strides = stridesOf(shape);
  const kept: DimGroup[] = [];
  const reduced: DimGroup[] = [];
  let previous: boolean | null = null;
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const isReduced = reducedSet.has(d);
    const groups = isReduced ? reduced : kept;
    if (previous === isReduced) {
      const last = groups[groups.length - 1];
      last.size *= shape[d];
      last.stride = strides[d];
    } else {
      groups.push({ size: shape[d], stride: strides[d] });
    }
    previous = isReduced;
  }
  return {
    rows: elementCount(kept.map((g) => g.size)),
    length: elementCount(reduced.map((g) => g.size)),
    kept,
    reduced,
  };
}

/** WGSL u32 expression of the offset of flat index `index` decomposed over `groups` (outer to inner). */
function groupOffset(groups: DimGroup[], index: string): string {
  if (groups.length === 0) return '0u';
  const terms: string[] = [];
  let inner = 1;
  for (let g = groups.length - 1; g >= 0; g--) {
    const { size, stride } = groups[g];
    let coordinate = inner === 1 ? index : `(${index} / ${inner}u)`;
    if (g > 0) coordinate = `(${coordinate} % ${size}u)`;
    terms.unshift(stride === 1 ? coordinate : `${coordinate} * ${stride}u`);
    inner *= size;
  }
  return terms.join(' + ');
}

export function rowBase(layout: RowLayout, row: string): string {
  return groupOffset(layout.kept, row);
}

export function elementOffset(layout: RowLayout, j: string): string {
  return groupOffset(layout.reduced, j);
}

export function layoutKey(layout: RowLayout): string {
  const groups = (gs: DimGroup[]) => gs.map((g) => `${g.size}@${g.stride}`).join(',');
  return `rows[${groups(layout.kept)}] red[${groups(layout.reduced)}]`;
}

export interface RowReduction {
  /** The WGSL name under which the finished result is visible to later reductions and statements. */
  name: string;
  init: string;
  /** The new accumulator from accumulator `acc` and element value `x`. */
  step: (acc: string, x: string) => string;
  /** Combines two partial accumulators (workgroup strategy). */
  combine: (a: string, b: string) => string;
  /** The result from the final accumulator (default: the accumulator). */
  finish?: (acc: string) => string;
}

export interface RowKernelSpec {
  label: string;
  /** Names everything the statements depend on; the layout, strategy and sizes are added here. */
  key: string;
  layout: RowLayout;
  /** Scalar type of the elements and accumulators. */
  type: WgslScalar;
  /** Binding declarations; the input array must be named `x`. */
  declarations: string;
  bindings: Binding[];
  /** Module-scope helper functions. */
  helpers?: string;
  reductions: RowReduction[];
  /** Statements run once per row after the reductions (sees `row` and the reduction names). */
  perRow?: string;
  /** Statements run for every element after the reductions (sees `row`, `j`, `offset` (flat index), `v` (x[offset])). */
  perElement?: string;
  device: DeviceCaps;
}

export type RowStrategy = { kind: 'invocation'; workgroupSize: number } | { kind: 'workgroup'; workgroupSize: number };

/** One invocation per row unless there are few, long rows. */
export function chooseRowStrategy(rows: number, length: number, device: DeviceCaps): RowStrategy {
  // measured on lavapipe: one invocation per row wins unless a handful of very long rows would leave cores idle
  const perInvocation = device.isCpu ? rows >= 16 || length < 4096 : (rows >= 8192 && length <= 256) || length < 32;
  if (perInvocation) {
    // CPU adapters spread workgroups over cores and run 8 invocations per SIMD step: keep several
    // workgroups of at least 8 even for few rows
    let size = 64;
    if (device.isCpu) while (size > 8 && Math.ceil(rows / size) < 8) size /= 2;
    return { kind: 'invocation', workgroupSize: size };
  }
  let size = device.isCpu ? 64 : 256;
  while (size > 32 && size / 2 >= length) size /= 2;
  return { kind: 'workgroup', workgroupSize: size };
}

function rowDispatch(count: number, maxPerDimension: number): { workgroups: [number, number, number]; x: number } {
  const groups = Math.max(1, count);
  const x = Math.min(groups, maxPerDimension);
  return { workgroups: [x, Math.ceil(groups / x), 1], x };
}

function invocationBody(spec: RowKernelSpec): string {
  const { layout } = spec;
  const lines: string[] = [];
  const load = (j: string) => `x[base + ${elementOffset(layout, j)}]`;
  for (const r of spec.reductions) {
    lines.push(`var ${r.name}_acc: ${spec.type} = ${r.init};`);
    if (layout.length > 0) {
      lines.push(`for (var j = 0u; j < ${layout.length}u; j = j + 1u) {\n    ${r.name}_acc = ${r.step(`${r.name}_acc`, load('j'))};\n  }`);
    }
    lines.push(`let ${r.name} = ${r.finish ? r.finish(`${r.name}_acc`) : `${r.name}_acc`};`);
  }
  if (spec.perRow) lines.push(spec.perRow);
  if (spec.perElement && layout.length > 0) {
    lines.push(`for (var j = 0u; j < ${layout.length}u; j = j + 1u) {
    let offset = base + ${elementOffset(layout, 'j')};
    let v = x[offset];
    ${spec.perElement}
  }`);
  }
  return lines.join('\n  ');
}

function workgroupBody(spec: RowKernelSpec, size: number): string {
  const { layout } = spec;
  const lines: string[] = [];
  for (const r of spec.reductions) {
    lines.push(`var ${r.name}_acc: ${spec.type} = ${r.init};`);
    lines.push(`for (var j = lid; j < ${layout.length}u; j = j + ${size}u) {
    ${r.name}_acc = ${r.step(`${r.name}_acc`, `x[base + ${elementOffset(layout, 'j')}]`)};
  }`);
    lines.push(`partial[lid] = ${r.name}_acc;`);
    lines.push('workgroupBarrier();');
    for (let s = size / 2; s >= 1; s /= 2) {
      lines.push(`if (lid < ${s}u) { partial[lid] = ${r.combine('partial[lid]', `partial[lid + ${s}u]`)}; }`);
      lines.push('workgroupBarrier();');
    }
    lines.push(`let ${r.name} = ${r.finish ? r.finish('partial[0]') : 'partial[0]'};`);
    // every invocation has read partial[0] before the next reduction overwrites it
    lines.push('workgroupBarrier();');
  }
  if (spec.perRow) lines.push(`if (lid == 0u) {\n    ${spec.perRow}\n  }`);
  if (spec.perElement) {
    lines.push(`for (var j = lid; j < ${layout.length}u; j = j + ${size}u) {
    let offset = base + ${elementOffset(layout, 'j')};
    let v = x[offset];
    ${spec.perElement}
  }`);
  }
  return lines.join('\n  ');
}

/** Empty rows read nothing, but the input binding must stay in the pipeline's (auto) layout. */
function touchInput(layout: RowLayout): string {
  return layout.length === 0 ? '_ = &x;\n  ' : '';
}

export function rowKernel(spec: RowKernelSpec, strategy = chooseRowStrategy(spec.layout.rows, spec.layout.length, spec.device)): KernelProgram {
  const { layout, device } = spec;
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const size = strategy.workgroupSize;
  let code: string;
  let workgroups: [number, number, number];
  if (strategy.kind === 'invocation') {
    const dispatch = rowDispatch(Math.ceil(layout.rows / size), max);
    workgroups = dispatch.workgroups;
    code = `${spec.declarations}
${spec.helpers ?? ''}
@compute @workgroup_size(${size}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x + gid.y * ${dispatch.x * size}u;
  if (row >= ${layout.rows}u) { return; }
  let base = ${rowBase(layout, 'row')};
  ${touchInput(layout)}${invocationBody(spec)}
}
`;
  } else {
    const dispatch = rowDispatch(layout.rows, max);
    workgroups = dispatch.workgroups;
    code = `${spec.declarations}
${spec.helpers ?? ''}
var<workgroup> partial: array<${spec.type}, ${size}>;

@compute @workgroup_size(${size}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * ${dispatch.x}u;
  if (row >= ${layout.rows}u) { return; }
  let base = ${rowBase(layout, 'row')};
  ${touchInput(layout)}${workgroupBody(spec, size)}
}
`;
  }
  if (code.includes('row_inf_bits')) code = `${INFINITY_DECLARATION}\n${code}`;
  return {
    label: spec.label,
    key: `${spec.key} ${layoutKey(layout)} ${strategy.kind}${size}`,
    code,
    workgroups,
    bindings: spec.bindings,
  };
}

/**
 * +infinity for WGSL code. A literal infinity (even as a bitcast) is a const-expression WGSL rejects, so it is
 * read from a module-scope private variable that rowKernel declares when the code uses it.
 */
export const WGSL_INFINITY = 'bitcast<f32>(row_inf_bits)';
const INFINITY_DECLARATION = 'var<private> row_inf_bits: u32 = 0x7f800000u;';

/** Common reductions, for f32 or i32 accumulators. */
export const ROW_REDUCTIONS = {
  sum: (name: string, type: WgslScalar, of: (x: string) => string = (x) => x): RowReduction => ({
    name, init: type === 'f32' ? '0.0' : '0', step: (acc, x) => `${acc} + ${of(x)}`, combine: (a, b) => `${a} + ${b}`,
  }),
  max: (name: string, type: WgslScalar): RowReduction => ({
    name, init: type === 'f32' ? `-${WGSL_INFINITY}` : 'i32(-2147483647 - 1)', step: (acc, x) => `max(${acc}, ${x})`, combine: (a, b) => `max(${a}, ${b})`,
  }),
  min: (name: string, type: WgslScalar): RowReduction => ({
    name, init: type === 'f32' ? WGSL_INFINITY : 'i32(2147483647)', step: (acc, x) => `min(${acc}, ${x})`, combine: (a, b) => `min(${a}, ${b})`,
  }),
  prod: (name: string, type: WgslScalar): RowReduction => ({
    name, init: type === 'f32' ? '1.0' : '1', step: (acc, x) => `${acc} * ${x}`, combine: (a, b) => `${a} * ${b}`,
  }),
};

function hostGroupOffsets(groups: DimGroup[]): number[] {
  let offsets = [0];
  for (const { size, stride } of groups) {
    const next: number[] = [];
    for (const base of offsets) for (let i = 0; i < size; i++) next.push(base + i * stride);
    offsets = next;
  }
  return offsets;
}

/** The flat offsets of every row's first element and of every element within a row, for CPU folding. */
export function hostRowOffsets(layout: RowLayout): { bases: number[]; offsets: number[] } {
  return { bases: hostGroupOffsets(layout.kept), offsets: hostGroupOffsets(layout.reduced) };
}
