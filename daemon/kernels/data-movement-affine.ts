/**
 * Affine views: output element c (coordinates c_0 … c_{r-1}) reads input element base + Σ c_d · strides[d].
 * Transpose (permuted strides), Slice (offset start, stride step·stride, negative for negative steps) and
 * Expand (stride 0 on broadcast dims) are all affine views, so they share one CPU fold, one dim-coalescing
 * step and one pair of kernels: a plain gather, and a shared-memory tiled one for views whose
 * second-to-last output dim is the input's contiguous one (2-D transposes, NCHW ↔ NHWC), where the plain
 * gather would read with a large stride.
 */
import { elementCount, type DType, type Tensor } from '../graph/ir.ts';
import { CPU_ELEMENTS_PER_INVOCATION, readBinding, requiredInput, WORKGROUP_SIZE, writeBinding } from './data-movement-common.ts';
import { allocateHost } from './elementwise-program.ts';
import { linearDispatch, ShapeValues, stridesOf, walkCoordinates } from './shader-util.ts';
import type { DeviceCaps, KernelProgram, OpContext, OpDefinition } from './types.ts';

export interface AffineView {
  outShape: number[];
  /** Flat input index of output element 0. */
  base: number;
  /** Input index step per unit of each output coordinate (may be 0 or negative). */
  strides: number[];
}

/** Drops size-1 dims and merges neighbours d, d+1 when strides[d] = strides[d+1] · outShape[d+1]. */
export function coalesceView(view: AffineView): AffineView {
  const shape: number[] = [];
  const strides: number[] = [];
  view.outShape.forEach((size, d) => {
    if (size === 1) return;
    const last = shape.length - 1;
    if (last >= 0 && strides[last] === view.strides[d] * size) {
      shape[last] *= size;
      strides[last] = view.strides[d];
    } else {
      shape.push(size);
      strides.push(view.strides[d]);
    }
  });
  return { outShape: shape, base: view.base, strides };
}

/** Evaluates the view on the CPU. */
export function foldView(input: Tensor, view: AffineView, dims: number[], dtype: DType = input.dtype): Tensor {
  const total = elementCount(view.outShape);
  const out = allocateHost(dtype, total);
  const { outShape, strides } = coalesceView(view);
  const rank = outShape.length;
  const coord = new Array<number>(rank).fill(0);
  let offset = view.base;
  for (let i = 0; i < total; i++) {
    out[i] = input.data[offset];
    for (let d = rank - 1; d >= 0; d--) {
      coord[d]++;
      offset += strides[d];
      if (coord[d] < outShape[d]) break;
      offset -= strides[d] * coord[d];
      coord[d] = 0;
    }
  }
  return { dtype, dims, data: out };
}

/** WGSL for `input index = base + Σ coordinate · stride` with coordinates unravelled from `index`. */
function affineIndex(shape: number[], strides: number[], base: number, index: string, prefix: string): { statements: string[]; expr: string } {
  const statements: string[] = [];
  const terms: string[] = base ? [`${base}`] : [];
  const outStrides = stridesOf(shape);
  if (shape.length) statements.push(`var ${prefix}_rem = i32(${index});`);
  shape.forEach((_, d) => {
    const coord = `${prefix}${d}`;
    if (d === shape.length - 1) statements.push(`let ${coord} = ${prefix}_rem;`);
    else statements.push(`let ${coord} = ${prefix}_rem / ${outStrides[d]};`, `${prefix}_rem = ${prefix}_rem - ${coord} * ${outStrides[d]};`);
    if (strides[d] !== 0) terms.push(strides[d] === 1 ? coord : `${coord} * ${strides[d]}`);
  });
  return { statements, expr: terms.length ? terms.join(' + ') : '0' };
}

const TILE = 16;

const allDivisible = (values: number[], by: number) => values.every((value) => value % by === 0);

/**
 * One program that writes output `outputIndex` from node input `inputIndex` through the view; null when the
 * output is empty. Views whose inner output dim is contiguous in the input move vec4s. Transposes of the
 * last two dims go through a workgroup-memory tile on GPUs; on CPU adapters they stay plain gathers, which
 * measured fastest on lavapipe (NCHW→NHWC of 64×112×112: tiled 22–31 ms, 4×4 register blocks 6–8 ms,
 * plain gather 6–8 ms: workgroup barriers are costly there and the strided reads bound both others).
 */
export function viewProgram(label: string, view: AffineView, device: DeviceCaps, inputIndex = 0, outputIndex = 0): KernelProgram | null {
  const total = elementCount(view.outShape);
  if (total === 0) return null;
  const v = coalesceView(view);
  const rank = v.outShape.length;
  const bindings = [{ kind: 'input' as const, index: inputIndex }, { kind: 'output' as const, index: outputIndex }];
  const last = rank - 1;
  const aligned = rank >= 1 && allDivisible([v.base, ...v.strides.slice(0, last)], 4) && v.outShape[last] % 4 === 0;
  if (aligned && v.strides[last] === 1) return copyProgram(label, inVec4(v), device, bindings, true, 'gather');
  const transposesLastTwo = rank >= 2 && v.strides[rank - 2] === 1 && v.strides[last] !== 1;
  const declarations = [readBinding(0, 'source'), writeBinding(1, 'destination')];
  if (transposesLastTwo && !device.isCpu && v.outShape[last] >= 4 && v.outShape[rank - 2] >= 4) {
    return tiledProgram(label, v, device, declarations, bindings);
  }
  return copyProgram(label, v, device, bindings, false, 'gather');
}

/**
 * The reverse of a view: input element e (the input is contiguous, of the view's shape) is written to output
 * element base + Σ c_d · strides[d]. Concat writes each of its inputs into its slab of the output this way.
 */
export function scatterProgram(label: string, view: AffineView, device: DeviceCaps, inputIndex: number, outputIndex = 0): KernelProgram | null {
  if (elementCount(view.outShape) === 0) return null;
  const v = coalesceView(view);
  const rank = v.outShape.length;
  const bindings = [{ kind: 'input' as const, index: inputIndex }, { kind: 'output' as const, index: outputIndex }];
  const last = rank - 1;
  const aligned = rank >= 1 && allDivisible([v.base, ...v.strides.slice(0, last)], 4) && v.outShape[last] % 4 === 0 && v.strides[last] === 1;
  return copyProgram(label, aligned ? inVec4(v) : v, device, bindings, aligned, 'scatter');
}

/**
 * The plain copy through a view: a gather reads input element base + Σ c_d · strides[d] for each output
 * element (in order), a scatter writes each input element (in order) there. CPU adapters read
 * the shape, strides and base from a params buffer, so views of the same rank share one pipeline (the
 * three Slices of a QKV split, transposes of different sizes), and walk CPU_ELEMENTS_PER_INVOCATION
 * consecutive elements per invocation with one division per dim; GPUs bake them, one element each.
 * `vec4`: the view is in units of vec4 (inner dim contiguous, everything else a multiple of 4).
 */
function copyProgram(label: string, v: AffineView, device: DeviceCaps, bindings: KernelProgram['bindings'], vec4: boolean, direction: 'gather' | 'scatter'): KernelProgram {
  const rank = v.outShape.length;
  const values = new ShapeValues(device.isCpu);
  const dim = (d: number) => values.value(v.outShape[d], `dim${d}`);
  const total = values.value(elementCount(v.outShape), 'total');
  const perInvocation = device.isCpu ? CPU_ELEMENTS_PER_INVOCATION : 1;
  const dispatch = linearDispatch(Math.ceil(elementCount(v.outShape) / perInvocation), WORKGROUP_SIZE, device.limits.maxComputeWorkgroupsPerDimension);
  const invocation = dispatch.workgroups[1] > 1 ? `gid.x + gid.y * ${values.value(dispatch.workgroups[0] * WORKGROUP_SIZE, 'row_stride')}` : 'gid.x';
  const terms = v.strides.flatMap((stride, d) => (stride === 0 && !values.fromParams ? [] : [`i32(c${d}) * ${values.signed(stride, `stride${d}`)}`]));
  const index = [...(v.base || values.fromParams ? [values.signed(v.base, 'base')] : []), ...terms].join(' + ') || '0';
  const walk = walkCoordinates(rank, perInvocation === 1 ? 'e' : 'first', dim);
  const copy = direction === 'gather' ? `destination[e] = source[${index}];` : `destination[${index}] = source[e];`;
  const main = perInvocation === 1
    ? [`let e = ${invocation};`, `if (e >= ${total}) { return; }`, ...walk.init, copy]
    : [
      // lane-dependent trip count: the loop stays a loop (see elementKernel in data-movement-common.ts)
      `let first = (${invocation}) * ${perInvocation}u;`,
      `if (first >= ${total}) { return; }`,
      `let end = min(first + ${perInvocation}u, ${total});`,
      ...walk.init,
      'for (var e = first; e < end; e++) {',
      `  ${copy}`,
      ...walk.advance.map((line) => `  ${line}`),
      '}',
    ];
  const unit = vec4 ? 'vec4<u32>' : 'u32';
  const paramsDeclaration = values.declaration(2);
  const code = [
    readBinding(0, 'source', unit),
    writeBinding(1, 'destination', unit),
    ...(paramsDeclaration ? [paramsDeclaration] : []),
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    ...[...values.loads(), ...main].map((line) => `  ${line}`),
    '}',
    '',
  ].join('\n');
  const paramsBinding = values.binding();
  return {
    label,
    key: [`${direction === 'gather' ? 'view' : 'scatter'}${vec4 ? '-vec4' : ''}`, `rank${rank}`, `wg${WORKGROUP_SIZE}u${perInvocation}`, ...(values.fromParams ? [] : [`[${v.outShape}]s[${v.strides}]b${v.base}g${dispatch.workgroups.join('x')}`]), values.key()].join('|'),
    code,
    workgroups: dispatch.workgroups,
    bindings: paramsBinding ? [...bindings, paramsBinding] : bindings,
  };
}

/** The view in units of vec4 (inner dim contiguous, everything else a multiple of 4). */
function inVec4(v: AffineView): AffineView {
  const rank = v.outShape.length;
  return {
    outShape: [...v.outShape.slice(0, -1), v.outShape[rank - 1] / 4],
    strides: [...v.strides.slice(0, -1).map((stride) => stride / 4), 1],
    base: v.base / 4,
  };
}

/**
 * Tiled copy for views whose output dim r-2 is contiguous in the input: a 16×16 workgroup reads a tile with
 * consecutive invocations walking dim r-2 (consecutive input addresses), stores it transposed in workgroup
 * memory and writes it with consecutive invocations walking dim r-1 (consecutive output addresses).
 */
function tiledProgram(label: string, v: AffineView, device: DeviceCaps, declarations: string[], bindings: KernelProgram['bindings']): KernelProgram {
  const rank = v.outShape.length;
  const rows = v.outShape[rank - 2];
  const cols = v.outShape[rank - 1];
  const colStride = v.strides[rank - 1];
  const batchShape = v.outShape.slice(0, rank - 2);
  const batches = elementCount(batchShape);
  const tileRows = Math.ceil(rows / TILE);
  const tileCols = Math.ceil(cols / TILE);
  const groups = batches * tileRows * tileCols;
  const dispatch = linearDispatch(groups, 1, device.limits.maxComputeWorkgroupsPerDimension);
  const batchIndex = affineIndex(batchShape, v.strides.slice(0, rank - 2), v.base, 'batch', 'b');
  const code = [
    ...declarations,
    `var<workgroup> tile: array<array<u32, ${TILE + 1}>, ${TILE}>;`,
    `@compute @workgroup_size(${TILE}, ${TILE})`,
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {',
    `  let group = wid.x + wid.y * ${dispatch.workgroups[0]}u;`,
    // whole workgroups past the end return together, so the barrier below stays in uniform control flow
    `  if (group >= ${groups}u) { return; }`,
    `  let tile_col = group % ${tileCols}u;`,
    `  let tile_row = (group / ${tileCols}u) % ${tileRows}u;`,
    `  let batch = group / ${tileCols * tileRows}u;`,
    ...batchIndex.statements.map((line) => `  ${line}`),
    `  let batch_base = ${batchIndex.expr};`,
    `  let read_row = tile_row * ${TILE}u + lid.x;`,
    `  let read_col = tile_col * ${TILE}u + lid.y;`,
    `  if (read_row < ${rows}u && read_col < ${cols}u) {`,
    `    tile[lid.y][lid.x] = source[batch_base + i32(read_row) + i32(read_col) * ${colStride}];`,
    '  }',
    '  workgroupBarrier();',
    `  let write_row = tile_row * ${TILE}u + lid.y;`,
    `  let write_col = tile_col * ${TILE}u + lid.x;`,
    `  if (write_row < ${rows}u && write_col < ${cols}u) {`,
    `    destination[(batch * ${rows}u + write_row) * ${cols}u + write_col] = tile[lid.x][lid.y];`,
    '  }',
    '}',
    '',
  ].join('\n');
  return {
    label,
    key: ['view-tiled', `t${TILE}`, `[${v.outShape}]`, `s[${v.strides}]`, `b${v.base}`, `g${dispatch.workgroups.join('x')}`].join('|'),
    code,
    workgroups: dispatch.workgroups,
    bindings,
  };
}

/** An op whose output (of shape `shape`) is an affine view of input 0. */
export function viewOp(opType: string, layout: (ctx: OpContext) => { view: AffineView; shape: number[] }): OpDefinition {
  return {
    opType,
    infer: (ctx) => [{ dtype: requiredInput(ctx, 0).dtype, shape: layout(ctx).shape }],
    fold: (ctx, inputs) => {
      const { view, shape } = layout(ctx);
      return [foldView(inputs[0]!, view, shape)];
    },
    build: (ctx) => {
      const program = viewProgram(`${opType} (${ctx.node.name})`, layout(ctx).view, ctx.device);
      return program ? [program] : [];
    },
  };
}
