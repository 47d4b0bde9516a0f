/**
 * Resize (opset 10–19) and Upsample (opset 7–9): nearest (every nearest_mode) and linear (N-linear over the
 * resized axes), with the coordinate transformation modes except tf_crop_and_resize. scales / sizes must be
 * constant at build time: shapes are static, and the per-axis mappings are precomputed on the host
 * (resize-coordinates.ts).
 *
 * Kernels: integer nearest upsampling (the common ×2 / ×4 of detection necks) runs without tables, writing
 * a vec4 to every output row that shares an input row; everything else looks up per-axis tables holding
 * input offsets (pre-multiplied by the input strides) and linear weights.
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type Node, type TensorType } from '../graph/ir.ts';
import type { BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';
import { wgslType } from './elementwise-expr.ts';
import { invalidError, shapeError, unsupportedError } from './conv-geometry.ts';
import { linearDispatch, stridesOf } from './shader-util.ts';
import {
  COORDINATE_MODES, NEAREST_MODES, integerUpsampleFactor, linearMap, nearestMap, outputFromScales, scalesFromSizes,
  type AspectPolicy, type CoordinateMode, type NearestMode,
} from './resize-coordinates.ts';

interface ResizePlan {
  x: TensorType;
  mode: 'nearest' | 'linear';
  coordinate: CoordinateMode;
  nearest: NearestMode;
  scales: number[];
  output: number[];
}

function constantFloats(ctx: OpContext, index: number, what: string): number[] | null {
  const { node } = ctx;
  if (index >= ctx.inputs.length || !ctx.inputs[index]) return null;
  const value = ctx.constants[index];
  if (!value) {
    throw unsupportedError(node, `input '${node.inputs[index]}' (${what}) must be a constant: shapes are fixed at build time`, { input: node.inputs[index] });
  }
  return value.data.length ? Array.from(value.data) : null;
}

/** Expands values given for `axes` (opset 18) to every axis, filling the others. */
function expandAxes(node: Node, values: number[], rank: number, axes: number[] | null, fill: (axis: number) => number, what: string): number[] {
  if (!axes) {
    if (values.length !== rank) throw shapeError(node, `${what} has ${values.length} entries, the input has rank ${rank}`, { input: node.inputs[0] });
    return values;
  }
  if (values.length !== axes.length) throw shapeError(node, `${what} has ${values.length} entries for ${axes.length} axes`, { attribute: 'axes' });
  const full = Array.from({ length: rank }, (_, a) => fill(a));
  axes.forEach((axis, i) => { full[axis] = values[i]; });
  return full;
}

function resizePlan(ctx: OpContext): ResizePlan {
  const { node, opset } = ctx;
  const x = ctx.inputs[0];
  if (!x) throw invalidError(node, 'needs input X');
  const rank = x.shape.length;
  if (rank < 1) throw shapeError(node, 'input X is a scalar', { input: node.inputs[0] });
  const attributes = new Attributes(node);
  const upsample = node.opType === 'Upsample';
  const rawMode = attributes.string('mode', 'nearest');
  const mode = rawMode === 'bilinear' ? 'linear' : rawMode;
  if (mode === 'cubic') throw unsupportedError(node, "mode 'cubic' is not supported (nearest and linear are)", { attribute: 'mode' });
  if (mode !== 'nearest' && mode !== 'linear') throw invalidError(node, `mode '${rawMode}' is not nearest, linear or cubic`, { attribute: 'mode' });
  if (mode === 'linear' && !isFloatDType(x.dtype)) throw unsupportedError(node, `linear resize of dtype ${x.dtype} is not supported`, { input: node.inputs[0] });
  const modern = !upsample && opset >= 11;
  const coordinate = modern ? attributes.string('coordinate_transformation_mode', 'half_pixel') : 'asymmetric';
  if (coordinate === 'tf_crop_and_resize') throw unsupportedError(node, "coordinate_transformation_mode 'tf_crop_and_resize' is not supported", { attribute: 'coordinate_transformation_mode' });
  if (!COORDINATE_MODES.includes(coordinate)) throw invalidError(node, `coordinate_transformation_mode '${coordinate}' is unknown`, { attribute: 'coordinate_transformation_mode' });
  const nearest = modern ? attributes.string('nearest_mode', 'round_prefer_floor') : 'simple';
  if (nearest !== 'simple' && !NEAREST_MODES.includes(nearest)) throw invalidError(node, `nearest_mode '${nearest}' is unknown`, { attribute: 'nearest_mode' });
  if (attributes.int('antialias', 0) !== 0) throw unsupportedError(node, 'antialias=1 is not supported', { attribute: 'antialias' });
  const policy = attributes.string('keep_aspect_ratio_policy', 'stretch');
  if (!['stretch', 'not_larger', 'not_smaller'].includes(policy)) throw invalidError(node, `keep_aspect_ratio_policy '${policy}' is unknown`, { attribute: 'keep_aspect_ratio_policy' });
  let axes: number[] | null = null;
  if (opset >= 18 && attributes.has('axes')) {
    axes = attributes.ints('axes').map((a) => (a < 0 ? a + rank : a));
    if (axes.some((a) => a < 0 || a >= rank) || new Set(axes).size !== axes.length) throw invalidError(node, `axes [${attributes.ints('axes')}] are out of range or repeated`, { attribute: 'axes' });
  }

  let scales: number[] | null = null;
  let sizes: number[] | null = null;
  if (upsample && opset < 9) {
    scales = attributes.floats('scales');
  } else if (upsample || opset === 10) {
    scales = constantFloats(ctx, 1, 'scales');
  } else {
    scales = constantFloats(ctx, 2, 'scales');
    sizes = constantFloats(ctx, 3, 'sizes');
  }
  let output: number[];
  if (scales) {
    if (sizes) throw invalidError(node, 'both scales and sizes are given', { input: node.inputs[3] });
    scales = expandAxes(node, scales, rank, axes, () => 1, 'scales');
    if (scales.some((s) => !(s > 0))) throw invalidError(node, `scales [${scales}] must be positive`, { input: node.inputs[1] });
    output = outputFromScales(x.shape, scales);
  } else if (sizes) {
    const full = expandAxes(node, sizes, rank, axes, (a) => x.shape[a], 'sizes');
    const resized = x.shape.map((_, a) => !axes || axes.includes(a));
    ({ scales, output } = scalesFromSizes(x.shape, full, resized, policy as AspectPolicy));
  } else {
    throw invalidError(node, 'needs scales or sizes', { input: node.inputs[0] });
  }
  if (output.some((d) => d < 1)) throw shapeError(node, `output shape [${output}] has an empty axis`, { input: node.inputs[0] });
  return { x, mode, coordinate: coordinate as CoordinateMode, nearest: nearest as NearestMode, scales, output };
}

/** Nearest upsampling by integer factors on every axis: exact integer arithmetic, vec4 stores. */
function integerNearestProgram(plan: ResizePlan, factors: number[], title: string, label: string): KernelProgram | null {
  const { x, output } = plan;
  const rank = output.length;
  const outW = output[rank - 1];
  const kx = factors[rank - 1];
  const vec = outW % 4 === 0 && (4 % kx === 0 || kx % 4 === 0);
  if (!vec) return null;
  const ky = rank >= 2 ? factors[rank - 2] : 1;
  const rows = ky >= 2 && ky <= 4 ? ky : 1;
  const outer = output.slice(0, rank - 1);
  outer[outer.length - 1] = (outer[outer.length - 1] ?? 1) / rows;
  const invocationShape = [...(rank >= 2 ? outer : []), outW / 4];
  const total = invocationShape.reduce((a, b) => a * b, 1);
  const dispatch = linearDispatch(total, 64);
  const inStrides = stridesOf(x.shape);
  const outStrides = stridesOf(output);
  const type = wgslType(x.dtype);
  const lines: string[] = [];
  lines.push('var rem = idx;');
  const inTerms: string[] = [];
  const outTerms: string[] = [];
  for (let a = invocationShape.length - 1; a >= 0; a--) {
    const axis = a === invocationShape.length - 1 ? rank - 1 : a;
    lines.push(`let c${a} = rem % ${invocationShape[a]}u;`, `rem = rem / ${invocationShape[a]}u;`);
    const isRowAxis = rank >= 2 && axis === rank - 2;
    const isColAxis = axis === rank - 1;
    const outCoord = isColAxis ? `c${a} * 4u` : isRowAxis ? `c${a} * ${rows}u` : `c${a}`;
    outTerms.push(`${outCoord} * ${outStrides[axis]}u`);
    const inCoord = factors[axis] === 1 ? outCoord : `(${outCoord}) / ${factors[axis]}u`;
    if (!isColAxis) inTerms.push(`${inCoord} * ${inStrides[axis]}u`);
    else lines.push(`let ix = ${inCoord};`);
  }
  lines.push(`let ib = ${inTerms.length ? inTerms.join(' + ') : '0u'} + ix;`);
  lines.push(`let ob = (${outTerms.join(' + ')}) / 4u;`);
  const distinct = Math.ceil(4 / kx);
  for (let d = 0; d < distinct; d++) lines.push(`let v${d} = x[ib + ${d}u];`);
  const parts = [0, 1, 2, 3].map((j) => `v${Math.floor(j / kx)}`);
  lines.push(`let value = vec4<${type}>(${parts.join(', ')});`);
  for (let r = 0; r < rows; r++) lines.push(`y[ob + ${(r * outW) / 4}u] = value;`);
  const code = `// ${title}: integer nearest upsampling x${factors.join('x')}, ${rows} row(s) x 4 columns per invocation
@group(0) @binding(0) var<storage, read> x: array<${type}>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<${type}>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  ${lines.join('\n  ')}
}
`;
  return {
    label, code, workgroups: dispatch.workgroups,
    key: `resize-int:${type}:in${x.shape.join('x')}:k${factors.join('x')}:${title}`,
    bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
  };
}

/** Table-driven nearest or N-linear resize, one output per invocation. */
function tableProgram(plan: ResizePlan, title: string, label: string): KernelProgram {
  const { x, output, mode } = plan;
  const rank = output.length;
  const inStrides = stridesOf(x.shape);
  const type = wgslType(x.dtype);
  const table: number[] = [];
  const bases: number[] = [];
  const interpolated: number[] = [];
  for (let a = 0; a < rank; a++) {
    bases.push(table.length);
    const identity = output[a] === x.shape[a] && Math.fround(plan.scales[a]) === 1;
    if (mode === 'nearest') {
      const map = nearestMap(plan.coordinate, plan.nearest, plan.scales[a], x.shape[a], output[a]);
      for (const v of map) table.push(v * inStrides[a]);
    } else if (identity) {
      for (let o = 0; o < output[a]; o++) table.push(o * inStrides[a]);
    } else {
      interpolated.push(a);
      for (const t of linearMap(plan.coordinate, plan.scales[a], x.shape[a], output[a])) {
        table.push(t.i0 * inStrides[a], t.i1 * inStrides[a], floatBits(t.w0), floatBits(t.w1));
      }
    }
  }
  const total = output.reduce((a, b) => a * b, 1);
  const dispatch = linearDispatch(total, 64);
  const lines: string[] = ['var rem = idx;'];
  for (let a = rank - 1; a >= 0; a--) lines.push(`let c${a} = rem % ${output[a]}u;`, `rem = rem / ${output[a]}u;`);
  const fixed = [...Array(rank).keys()].filter((a) => !interpolated.includes(a)).map((a) => `tab[${bases[a]}u + c${a}]`);
  lines.push(`let base = ${fixed.length ? fixed.join(' + ') : '0u'};`);
  if (mode === 'nearest') {
    lines.push('y[idx] = x[base];');
  } else {
    for (const a of interpolated) {
      lines.push(`let t${a} = ${bases[a]}u + c${a} * 4u;`);
      lines.push(`let o${a} = vec2<u32>(tab[t${a}], tab[t${a} + 1u]);`);
      lines.push(`let w${a} = vec2<f32>(bitcast<f32>(tab[t${a} + 2u]), bitcast<f32>(tab[t${a} + 3u]));`);
    }
    const terms: string[] = [];
    for (let corner = 0; corner < 1 << interpolated.length; corner++) {
      const pick = interpolated.map((a, i) => ({ a, bit: (corner >> (interpolated.length - 1 - i)) & 1 }));
      const weight = [...pick].reverse().map(({ a, bit }) => `w${a}[${bit}]`).join(' * ');
      const offset = pick.map(({ a, bit }) => `o${a}[${bit}]`).join(' + ');
      terms.push(`(${weight}) * x[base + ${offset}]`);
    }
    lines.push(`y[idx] = ${terms.join(' + ')};`);
  }
  const code = `// ${title}: ${mode} resize via per-axis tables
@group(0) @binding(0) var<storage, read> x: array<${type}>;
@group(0) @binding(1) var<storage, read> tab: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<${type}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  ${lines.join('\n  ')}
}
`;
  return {
    label, code, workgroups: dispatch.workgroups,
    key: `resize-table:${mode}:${type}:in${x.shape.join('x')}:out${output.join('x')}:lerp${interpolated.join(',')}:${title}`,
    bindings: [{ kind: 'input', index: 0 }, { kind: 'constant', data: Uint32Array.from(table) }, { kind: 'output', index: 0 }],
  };
}

const bitsView = new DataView(new ArrayBuffer(4));
function floatBits(value: number): number {
  bitsView.setFloat32(0, value, true);
  return bitsView.getUint32(0, true);
}

function buildResize(ctx: BuildContext): KernelProgram[] {
  const plan = resizePlan(ctx);
  // the WGSL carries only the title: equal keys must mean byte-identical code across nodes
  const title = `${ctx.node.opType} ${plan.mode} ${plan.x.shape.join('x')}->${plan.output.join('x')}`;
  const label = `${title} (${ctx.node.name})`;
  if (plan.output.every((d, a) => d === plan.x.shape[a]) && plan.mode === 'nearest' && plan.scales.every((s) => Math.fround(s) === 1)) {
    return [tableProgram(plan, title, label)];
  }
  if (plan.mode === 'nearest') {
    const factors = plan.output.map((d, a) => integerUpsampleFactor(nearestMap(plan.coordinate, plan.nearest, plan.scales[a], plan.x.shape[a], d), plan.x.shape[a]));
    if (factors.every((k): k is number => k !== null)) {
      const program = integerNearestProgram(plan, factors, title, label);
      if (program) return [program];
    }
  }
  return [tableProgram(plan, title, label)];
}

function resizeOp(opType: string, sinceVersion: number): OpDefinition {
  return {
    opType,
    sinceVersion,
    infer(ctx) {
      const plan = resizePlan(ctx);
      return [{ dtype: plan.x.dtype, shape: plan.output }];
    },
    build: buildResize,
  };
}

export const ops: OpDefinition[] = [resizeOp('Resize', 10), resizeOp('Upsample', 7)];
