/**
 * Quantized conv weights on the GPU: packed integers, dequantized inside the conv's channel loop.
 *
 * One u32 buffer per node, one stretch per output-channel tile (tm channels), like the float layout of
 * conv-packing.ts but with integers in place of floats:
 *
 *   header   bias[tm] (f32 bits)
 *            per-tensor / per-channel: scale[tm] (f32 bits), then zero point[tm] (i32) when present
 *            blocks along C: for each block b: scale[tap·tm + i] (f32 bits), then when present the zero points
 *            [tap·tm + i] as bytes, four to a word (so GPU bytes stay close to the ONNX tensors' bytes)
 *   weights  for each input channel c of the group: tap·tm + i values, `bits` each, packed into whole u32
 *            words in the order of daemon/quant/packing.ts (value j of a word in bits [j·bits, (j+1)·bits))
 *
 * Per-tensor and per-channel scales are applied once to each finished accumulator (Σ (q − z)·x is exact
 * integer-weighted), so the loop only converts q − z; block scales change along C, so there each weight is
 * dequantized as f32(q − z) · scale with the block's scales held in registers and reloaded at block starts.
 * Either way the weights the products use equal onnxruntime's DequantizeLinear output bit for bit.
 */
import { bytesToWords, packInt4, packInt8 } from '../quant/packing.ts';
import type { ConvWeightReader } from './conv-weight-reader.ts';
import { uniformVec4Loads } from './conv-wgsl.ts';
import type { QConvShape } from './quant-conv-shape.ts';

export interface QuantTileLayout {
  groups: number;
  /** Output channels per group, per tile. */
  mg: number;
  tm: number;
  /** Input channels per group. */
  cg: number;
  /** Flat kernel offsets of the taps, in the order the kernel uses them. */
  taps: number[];
}

interface WordLayout {
  tilesPerGroup: number;
  values: number;
  wordsPerChannel: number;
  /** Words per block of scales (and zero points); 0 outside block mode. */
  blockWords: number;
  header: number;
  tileStride: number;
}

function wordLayout(shape: QConvShape, tile: QuantTileLayout): WordLayout {
  const values = tile.taps.length * tile.tm;
  const wordsPerChannel = Math.ceil((values * shape.bits) / 32);
  const zp = shape.zeroPoint !== null;
  const blockWords = shape.layout.kind === 'block' ? values + (zp ? Math.ceil(values / 4) : 0) : 0;
  const header = shape.layout.kind === 'block' ? tile.tm + shape.layout.blocks * blockWords : tile.tm * (zp ? 3 : 2);
  return {
    tilesPerGroup: Math.ceil(tile.mg / tile.tm), values, wordsPerChannel, blockWords, header,
    tileStride: header + tile.cg * wordsPerChannel,
  };
}

/** The node's packed buffer: headers and integer words for every tile. */
export function packQuantWeights(shape: QConvShape, tile: QuantTileLayout): Uint32Array {
  const words = wordLayout(shape, tile);
  const out = new Uint32Array(tile.groups * words.tilesPerGroup * words.tileStride);
  const floats = new Float32Array(out.buffer);
  const ints = new Int32Array(out.buffer);
  const kernelVolume = shape.w.slice(2).reduce((a, b) => a * b, 1);
  const q = shape.weights.data;
  const scale = shape.scale.data;
  const zp = shape.zeroPoint?.data ?? null;
  const bias = shape.bias?.data ?? null;
  const layout = shape.layout;
  const block = new Array<number>(words.values);
  for (let g = 0; g < tile.groups; g++) {
    for (let t = 0; t < words.tilesPerGroup; t++) {
      const base = (g * words.tilesPerGroup + t) * words.tileStride;
      for (let i = 0; i < tile.tm; i++) {
        const mInGroup = t * tile.tm + i;
        if (mInGroup >= tile.mg) continue;
        const m = g * tile.mg + mInGroup;
        if (bias) floats[base + i] = bias[m];
        if (layout.kind === 'block') {
          for (let b = 0; b < layout.blocks; b++) {
            const blockBase = base + tile.tm + b * words.blockWords;
            tile.taps.forEach((tap, k) => {
              const source = (m * layout.blocks + b) * kernelVolume + tap;
              floats[blockBase + k * tile.tm + i] = scale[source];
              const index = k * tile.tm + i;
              if (zp) out[blockBase + words.values + (index >> 2)] |= (zp[source] & 0xff) << ((index & 3) * 8);
            });
          }
        } else {
          const source = layout.kind === 'channel' ? m : 0;
          floats[base + tile.tm + i] = scale[source];
          if (zp) ints[base + 2 * tile.tm + i] = zp[source];
        }
      }
      for (let c = 0; c < tile.cg; c++) {
        block.fill(0);
        for (let i = 0; i < tile.tm; i++) {
          const mInGroup = t * tile.tm + i;
          if (mInGroup >= tile.mg) continue;
          const filter = ((g * tile.mg + mInGroup) * tile.cg + c) * kernelVolume;
          tile.taps.forEach((tap, k) => { block[k * tile.tm + i] = q[filter + tap]; });
        }
        const bytes = shape.bits === 4 ? packInt4(block, shape.signed) : packInt8(block, shape.signed);
        out.set(bytesToWords(bytes), base + words.header + c * words.wordsPerChannel);
      }
    }
  }
  return out;
}

/** The reader that dequantizes the packed words inside the conv loop. */
export function quantWeightReader(shape: QConvShape, tile: QuantTileLayout): ConvWeightReader {
  const words = wordLayout(shape, tile);
  const { tm } = tile;
  const { bits, signed } = shape;
  const zp = shape.zeroPoint !== null;
  const layout = shape.layout;
  const blocked = layout.kind === 'block';
  // a single block (C/group ≤ block_size) is loaded once, before the loop
  const reloads = layout.kind === 'block' && layout.blocks > 1;

  // zero points share the weights' signedness, so one extraction serves both
  const extract = (word: string, offset: number, width: number): string => (signed
    ? `extractBits(bitcast<i32>(${word}), ${offset}u, ${width}u)`
    : `i32(extractBits(${word}, ${offset}u, ${width}u))`);
  const integer = (index: number): string => extract(`qw${Math.floor((index * bits) / 32)}`, (index * bits) % 32, bits);
  // uniformVec4Loads is element-wise: here its elements are u32 words (4 per subgroup broadcast round)
  const blockLoads = (base: string, lane: string | null, declare: boolean): string[] => {
    const lines = uniformVec4Loads('w', base, words.blockWords, 'qk', lane);
    const bind = declare ? 'let ' : '';
    for (let k = 0; k < words.values; k++) {
      lines.push(`${bind}qs${k} = bitcast<f32>(qk${k});`);
      if (zp) lines.push(`${bind}qz${k} = ${extract(`qk${words.values + (k >> 2)}`, (k & 3) * 8, 8)};`);
    }
    return lines;
  };

  return {
    key: `q-${shape.weightDType}-${layout.kind}${layout.kind === 'block' ? layout.blockSize : ''}-zp${zp ? 1 : 0}`,
    elementType: 'u32',
    tileStride: words.tileStride,
    prologue(lane) {
      const headerWords = blocked ? tm : words.header;
      const lines = uniformVec4Loads('w', 'wt', headerWords, 'qh', lane);
      for (let i = 0; i < tm; i++) lines.push(`let qb${i} = bitcast<f32>(qh${i});`);
      if (!blocked) {
        for (let i = 0; i < tm; i++) lines.push(`let qs${i} = bitcast<f32>(qh${tm + i});`);
        if (zp) for (let i = 0; i < tm; i++) lines.push(`let qz${i} = bitcast<i32>(qh${2 * tm + i});`);
      } else if (reloads) {
        for (let k = 0; k < words.values; k++) lines.push(`var qs${k}: f32;`, ...(zp ? [`var qz${k}: i32;`] : []));
      } else {
        lines.push(...blockLoads(`wt + ${tm}u`, lane, true));
      }
      return lines;
    },
    initial: (i) => (blocked ? `qb${i}` : '0.0'),
    channel(lane) {
      const lines: string[] = [];
      if (layout.kind === 'block' && reloads) {
        lines.push(`if (c % ${layout.blockSize}u == 0u) {`);
        const loads = blockLoads(`wt + ${tm}u + (c / ${layout.blockSize}u) * ${words.blockWords}u`, lane, false);
        lines.push(...loads.map((line) => `  ${line}`), '}');
      }
      lines.push(...uniformVec4Loads('w', `wt + ${words.header}u + c * ${words.wordsPerChannel}u`, words.wordsPerChannel, 'qw', lane));
      for (let k = 0; k < words.values; k++) {
        const i = k % tm;
        const level = zp ? `${integer(k)} - qz${blocked ? k : i}` : integer(k);
        lines.push(blocked ? `let wv${k} = f32(${level}) * qs${k};` : `let wv${k} = f32(${level});`);
      }
      return lines;
    },
    weight: (index) => `wv${index}`,
    result: (i, acc) => (blocked ? acc : `fma(${acc}, qs${i}, qb${i})`),
  };
}
