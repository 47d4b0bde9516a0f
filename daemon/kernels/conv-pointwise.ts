/**
 * 1×1 convolution with unit strides and no padding (group 1): per image a GEMM
 *   Y[m, p] = bias[m] + Σ_c W[m, c] · X[c, p]     over the flattened pixels p.
 * Each invocation computes a register tile of `tm` output channels × `tp` consecutive pixels; the output
 * channel tile is the workgroup's y index, so its weights are the same for every lane (loaded once per
 * input channel, shared by subgroup broadcast where that pays) and each X element loaded feeds tm FMAs.
 * X and Y move as vec4 when the pixel count allows it.
 */
import type { Epilogue } from './types.ts';
import type { PackedWeightLayout } from './conv-packing.ts';
import { floatWeightReader, type ConvWeightReader } from './conv-weight-reader.ts';
import { epilogueFunction, epilogueKey, opaqueBound } from './conv-wgsl.ts';

export interface PointwiseSpec {
  batch: number;
  inChannels: number;
  outChannels: number;
  pixels: number;
  tm: number;
  tp: number;
  workgroup: number;
  subgroups: boolean;
  epilogue?: Epilogue;
  /** How weights are read; float weights in the layout of pointwiseLayout when absent. */
  weights?: ConvWeightReader;
}

function weightReader(spec: PointwiseSpec): ConvWeightReader {
  return spec.weights ?? floatWeightReader(pointwiseLayout(spec));
}

export function pointwiseLayout(spec: PointwiseSpec): PackedWeightLayout {
  return { groups: 1, mg: spec.outChannels, tm: spec.tm, cg: spec.inChannels, taps: [0] };
}

export function pointwiseKey(spec: PointwiseSpec): string {
  return `conv-pw:n${spec.batch}:c${spec.inChannels}:m${spec.outChannels}:p${spec.pixels}:t${spec.tm}x${spec.tp}:wg${spec.workgroup}:sg${spec.subgroups ? 1 : 0}:${epilogueKey(spec.epilogue)}`
    + (spec.weights?.key ? `:${spec.weights.key}` : '');
}

export function pointwiseDispatch(spec: PointwiseSpec): [number, number, number] {
  return [Math.ceil(spec.pixels / spec.tp / spec.workgroup), Math.ceil(spec.outChannels / spec.tm), spec.batch];
}

export function pointwiseCode(spec: PointwiseSpec, label: string): string {
  const { inChannels: C, outChannels: M, pixels: P, tm, tp } = spec;
  const vec = P % 4 === 0 && tp % 4 === 0;
  const unit = vec ? 4 : 1;
  const reader = weightReader(spec);
  const lane = spec.subgroups ? 'sg_lane' : null;
  const partialM = M % tm !== 0;
  const acc = (i: number, j: number) => `acc${i}_${j}`;

  const init: string[] = [];
  init.push(...reader.prologue(lane));
  for (let i = 0; i < tm; i++) for (let j = 0; j < tp; j++) init.push(`var ${acc(i, j)} = ${reader.initial(i)};`);

  const body: string[] = [];
  body.push(...reader.channel(lane));
  body.push(`let xc = xn + c * ${P / unit}u;`);
  if (vec) {
    for (let v = 0; v < tp / 4; v++) {
      body.push(`let xv${v} = x[xc + min(p4 + ${v}u, ${P / 4 - 1}u)];`);
      for (let q = 0; q < 4; q++) body.push(`let x${v * 4 + q} = xv${v}.${'xyzw'[q]};`);
    }
  } else {
    for (let j = 0; j < tp; j++) body.push(`let x${j} = x[xc + min(p0 + ${j}u, ${P - 1}u)];`);
  }
  for (let i = 0; i < tm; i++) {
    body.push(`let wm${i} = ${reader.weight(i)};`);
    for (let j = 0; j < tp; j++) body.push(`${acc(i, j)} = fma(wm${i}, x${j}, ${acc(i, j)});`);
  }

  const stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    const guardM = partialM ? `m0 + ${i}u < ${M}u && ` : '';
    const row = `yn + (m0 + ${i}u) * ${P / unit}u`;
    if (vec) {
      for (let v = 0; v < tp / 4; v++) {
        const values = [0, 1, 2, 3].map((q) => `epilogue(${reader.result(i, acc(i, v * 4 + q))})`).join(', ');
        stores.push(`if (${guardM}p4 + ${v}u < ${P / 4}u) { y[${row} + p4 + ${v}u] = vec4<f32>(${values}); }`);
      }
    } else {
      for (let j = 0; j < tp; j++) {
        stores.push(`if (${guardM}p0 + ${j}u < ${P}u) { y[${row} + p0 + ${j}u] = epilogue(${reader.result(i, acc(i, j))}); }`);
      }
    }
  }

  const elem = vec ? 'vec4<f32>' : 'f32';
  const params = ['@builtin(global_invocation_id) gid: vec3<u32>', '@builtin(workgroup_id) wid: vec3<u32>'];
  if (lane) params.push('@builtin(subgroup_invocation_id) sg_lane: u32');
  return `${spec.subgroups ? 'enable subgroups;\n' : ''}// ${label}: pointwise conv, ${tm} channels x ${tp} pixels per invocation
@group(0) @binding(0) var<storage, read> x: array<${elem}>;
@group(0) @binding(1) var<storage, read> w: array<${reader.elementType}>;
@group(0) @binding(2) var<storage, read_write> y: array<${elem}>;

${epilogueFunction(spec.epilogue)}

@compute @workgroup_size(${spec.workgroup})
fn main(${params.join(', ')}) {
  let n = wid.z;
  let m0 = wid.y * ${tm}u;
  let wt = wid.y * ${reader.tileStride}u;
  let p0 = gid.x * ${tp}u;
  let p4 = gid.x * ${tp / unit}u;
  let xn = n * ${(C * P) / unit}u;
  let yn = n * ${(M * P) / unit}u;
  ${init.join('\n  ')}
  for (var c = 0u; c < ${opaqueBound(C, 'n')}; c++) {
    ${body.join('\n    ')}
  }
  ${stores.join('\n  ')}
}
`;
}

/**
 * 1×1 convolution over very few pixels (squeeze-excitation blocks run on 1×1 maps): the pixel tile
 * above would leave almost every lane idle, so here lanes own output channels instead and each walks
 * the input channels four at a time (weights packed by gemvPackingMap).
 */
export interface GemvSpec {
  batch: number;
  inChannels: number;
  outChannels: number;
  pixels: number;
  epilogue?: Epilogue;
}

export function gemvKey(spec: GemvSpec): string {
  return `conv-gemv:n${spec.batch}:c${spec.inChannels}:m${spec.outChannels}:p${spec.pixels}:${epilogueKey(spec.epilogue)}`;
}

export function gemvCode(spec: GemvSpec, label: string): string {
  const { batch, inChannels: C, outChannels: M, pixels: P } = spec;
  const quads = Math.ceil(C / 4);
  const total = batch * M;
  const vecX = P === 1 && C % 4 === 0;
  const lines: string[] = [];
  lines.push(`let bias_index = ${quads * M * 4}u + m;`, 'let bias = w[bias_index / 4u][bias_index % 4u];');
  for (let p = 0; p < P; p++) lines.push(`var acc${p} = bias;`);
  const body: string[] = ['let wv = w[q * ' + M + 'u + m];'];
  if (vecX) {
    body.push('acc0 = acc0 + dot(wv, x[xn / 4u + q]);');
  } else {
    for (let p = 0; p < P; p++) {
      const xs = [0, 1, 2, 3].map((j) => `x[xn + min(q * 4u + ${j}u, ${C - 1}u) * ${P}u + ${p}u]`);
      body.push(`acc${p} = acc${p} + dot(wv, vec4<f32>(${xs.join(', ')}));`);
    }
  }
  const stores: string[] = [];
  for (let p = 0; p < P; p++) stores.push(`y[(n * ${M}u + m) * ${P}u + ${p}u] = epilogue(acc${p});`);
  return `// ${label}: 1x1 conv over ${P} pixel(s), one output channel per invocation
@group(0) @binding(0) var<storage, read> x: array<${vecX ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

${epilogueFunction(spec.epilogue)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = min(gid.x, ${total - 1}u);
  let m = idx % ${M}u;
  let n = idx / ${M}u;
  let xn = n * ${C * P}u;
  ${lines.join('\n  ')}
  for (var q = 0u; q < ${opaqueBound(quads, '(gid.y + gid.z)')}; q++) {
    ${body.join('\n    ')}
  }
  if (gid.x < ${total}u) {
    ${stores.join('\n    ')}
  }
}
`;
}

export function gemvDispatch(spec: GemvSpec): [number, number, number] {
  return [Math.ceil((spec.batch * spec.outChannels) / 64), 1, 1];
}
