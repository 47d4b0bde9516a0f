/**
 * Quantized 1×1 convolution over very few pixels (squeeze-excitation blocks run on 1×1 maps): the pixel
 * tile of the pointwise kernel would leave almost every lane idle, so here, as in the FP32 GEMV path
 * (conv-pointwise.ts), lanes own output channels and each walks its row of packed weights.
 *
 * Layout (u32 words): M rows of packed values (ceil(C / perWord) words each, in the order of
 * daemon/quant/packing.ts; the padding past C holds the row's last zero point so that it contributes 0),
 * then per output channel: bias (f32 bits) and per block of C: scale (f32 bits) and zero point (i32) when
 * present. Per-tensor and per-channel scales are one block spanning C. A block's Σ (q − z)·x is scaled
 * once, when the block ends.
 */
import { bytesToWords, packInt4, packInt8 } from '../quant/packing.ts';
import type { Epilogue, KernelProgram } from './types.ts';
import { epilogueFunction, epilogueKey, opaqueBound } from './conv-wgsl.ts';
import type { QConvShape } from './quant-conv-shape.ts';

export interface QGemvSpec {
  batch: number;
  inChannels: number;
  outChannels: number;
  pixels: number;
  epilogue?: Epilogue;
}

function valuesPerWord(shape: QConvShape): number {
  return 32 / shape.bits;
}

/** Whether the GEMV layout fits: pointwise, and blocks (if any) made of whole words. */
export function quantGemvFits(shape: QConvShape): boolean {
  return shape.layout.kind !== 'block' || shape.layout.blockSize % valuesPerWord(shape) === 0;
}

interface GemvLayout {
  perWord: number;
  rowWords: number;
  blocks: number;
  blockWords: number;
  paramsBase: number;
  paramsPerChannel: number;
}

function gemvLayout(shape: QConvShape, spec: QGemvSpec): GemvLayout {
  const perWord = valuesPerWord(shape);
  const rowWords = Math.ceil(spec.inChannels / perWord);
  const blocks = shape.layout.kind === 'block' ? shape.layout.blocks : 1;
  const blockWords = shape.layout.kind === 'block' ? shape.layout.blockSize / perWord : rowWords;
  return {
    perWord, rowWords, blocks, blockWords,
    paramsBase: spec.outChannels * rowWords,
    paramsPerChannel: 1 + blocks * (shape.zeroPoint ? 2 : 1),
  };
}

export function packQuantGemv(shape: QConvShape, spec: QGemvSpec): Uint32Array {
  const layout = gemvLayout(shape, spec);
  const C = spec.inChannels;
  const out = new Uint32Array(layout.paramsBase + spec.outChannels * layout.paramsPerChannel);
  const floats = new Float32Array(out.buffer);
  const ints = new Int32Array(out.buffer);
  const row = new Array<number>(layout.rowWords * layout.perWord);
  for (let m = 0; m < spec.outChannels; m++) {
    const scaleIndex = (b: number) => (shape.layout.kind === 'tensor' ? 0 : shape.layout.kind === 'channel' ? m : m * layout.blocks + b);
    const zero = (b: number) => (shape.zeroPoint ? shape.zeroPoint.data[scaleIndex(b)] : 0);
    row.fill(zero(layout.blocks - 1));
    for (let c = 0; c < C; c++) row[c] = shape.weights.data[m * C + c];
    const bytes = shape.bits === 4 ? packInt4(row, shape.signed) : packInt8(row, shape.signed);
    out.set(bytesToWords(bytes), m * layout.rowWords);
    const params = layout.paramsBase + m * layout.paramsPerChannel;
    if (shape.bias) floats[params] = shape.bias.data[m];
    for (let b = 0; b < layout.blocks; b++) {
      const at = params + 1 + b * (shape.zeroPoint ? 2 : 1);
      floats[at] = shape.scale.data[scaleIndex(b)];
      if (shape.zeroPoint) ints[at + 1] = zero(b);
    }
  }
  return out;
}

export function quantGemvKey(shape: QConvShape, spec: QGemvSpec): string {
  const scales = shape.layout.kind === 'block' ? `block${shape.layout.blockSize}` : shape.layout.kind;
  return `qconv-gemv:n${spec.batch}:c${spec.inChannels}:m${spec.outChannels}:p${spec.pixels}:${shape.weightDType}:${scales}:zp${shape.zeroPoint ? 1 : 0}:${epilogueKey(spec.epilogue)}`;
}

export function quantGemvDispatch(spec: QGemvSpec): [number, number, number] {
  return [Math.ceil((spec.batch * spec.outChannels) / 64), 1, 1];
}

export function quantGemvCode(shape: QConvShape, spec: QGemvSpec, label: string): string {
  const { batch, inChannels: C, outChannels: M, pixels: P } = spec;
  const layout = gemvLayout(shape, spec);
  const { bits, signed } = shape;
  const zp = shape.zeroPoint !== null;
  const total = batch * M;
  const level = (j: number): string => {
    const raw = signed ? `extractBits(bitcast<i32>(word), ${j * bits}u, ${bits}u)` : `i32(extractBits(word, ${j * bits}u, ${bits}u))`;
    return zp ? `f32(${raw} - z)` : `f32(${raw})`;
  };
  const inner: string[] = [];
  for (let j = 0; j < layout.perWord; j++) {
    inner.push(`let v${j} = ${level(j)};`);
    inner.push(`let c${j} = min(q * ${layout.perWord}u + ${j}u, ${C - 1}u) * ${P}u;`);
    for (let p = 0; p < P; p++) inner.push(`part${p} = fma(v${j}, x[xn + c${j} + ${p}u], part${p});`);
  }
  const pixels = Array.from({ length: P }, (_, p) => p);
  const stride = zp ? 2 : 1;
  return `// ${label}: quantized 1x1 conv over ${P} pixel(s), one output channel per invocation
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

${epilogueFunction(spec.epilogue)}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = min(gid.x, ${total - 1}u);
  let m = idx % ${M}u;
  let n = idx / ${M}u;
  let xn = n * ${C * P}u;
  let row = m * ${layout.rowWords}u;
  let params = ${layout.paramsBase}u + m * ${layout.paramsPerChannel}u;
  ${pixels.map((p) => `var acc${p} = bitcast<f32>(w[params]);`).join('\n  ')}
  for (var b = 0u; b < ${opaqueBound(layout.blocks, '(gid.y + gid.z)')}; b++) {
    let scale = bitcast<f32>(w[params + 1u + b * ${stride}u]);
    ${zp ? `let z = bitcast<i32>(w[params + 2u + b * ${stride}u]);` : ''}
    ${pixels.map((p) => `var part${p} = 0.0;`).join('\n    ')}
    let q_end = min((b + 1u) * ${layout.blockWords}u, ${layout.rowWords}u);
    for (var q = b * ${layout.blockWords}u; q < q_end; q++) {
      let word = w[row + q];
      ${inner.join('\n      ')}
    }
    ${pixels.map((p) => `acc${p} = fma(part${p}, scale, acc${p});`).join('\n    ')}
  }
  if (gid.x < ${total}u) {
    ${pixels.map((p) => `y[(n * ${M}u + m) * ${P}u + ${p}u] = epilogue(acc${p});`).join('\n    ')}
  }
}
`;
}

export function quantGemvProgram(shape: QConvShape, spec: QGemvSpec, title: string, label: string): KernelProgram {
  return {
    label,
    key: `${quantGemvKey(shape, spec)}:${title}`,
    code: quantGemvCode(shape, spec, title),
    workgroups: quantGemvDispatch(spec),
    bindings: [{ kind: 'input', index: 0 }, { kind: 'constant', data: packQuantGemv(shape, spec) }, { kind: 'output', index: 0 }],
  };
}
