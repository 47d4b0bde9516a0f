/**
 * Quantized matmul weights as the GPU holds them: B [K, N] packed along N into u32 words (8 nibbles or 4 bytes
 * per word, the layout of daemon/quant/packing.ts), one row of words per k, rows padded to whole words; scales
 * as f32 [blocks, Npad]; zero points packed like the weights, [blocks, Npad / valuesPerWord] words.
 *
 * Signed values are stored offset by 2^(bits-1) (int4 -8..7 → 0..15, int8 → 0..255) and the zero point by the
 * same amount, so the kernel only ever unpacks unsigned fields: (q + o) - (z + o) = q - z.
 * A weight without zero point gets the constant zero `zeroConstant` (the offset) baked into the kernel.
 */
import type { DType, Tensor } from '../graph/ir.ts';
import { bytesToWords, packInt4, packInt8 } from '../quant/packing.ts';
import type { QuantLayout } from './quant-params.ts';

export type WeightBits = 4 | 8;

export interface PackedMatmulWeights {
  bits: WeightBits;
  K: number;
  N: number;
  /** N rounded up to a multiple of 8 (whole words, and 8 columns per kernel invocation for either width). */
  nPad: number;
  /** Scale / zero-point rows: ceil(K / blockSize). */
  blocks: number;
  /** K values per block (K itself for per-tensor and per-column scales). */
  blockSize: number;
  words: Uint32Array;
  scales: Float32Array;
  zeros: Uint32Array | null;
  /** The zero of every weight when `zeros` is null. */
  zeroConstant: number;
}

export function bitsOf(dtype: DType): WeightBits | null {
  if (dtype === 'int4' || dtype === 'uint4') return 4;
  if (dtype === 'int8' || dtype === 'uint8') return 8;
  return null;
}

export function valuesPerWord(bits: WeightBits): number {
  return 32 / bits;
}

function packUnsigned(values: Uint8Array, bits: WeightBits): Uint32Array {
  return bytesToWords(bits === 4 ? packInt4(values, false) : packInt8(values, false));
}

/**
 * Packs a DequantizeLinear-style weight: `q` [K, N] with `layout` per tensor, per column (axis 1) or per block
 * along K (axis 0). `scaleFactor` multiplies every scale (Gemm's alpha).
 */
export function packMatmulWeights(q: Tensor, scale: Tensor, zeroPoint: Tensor | null, layout: QuantLayout, scaleFactor = 1): PackedMatmulWeights {
  const bits = bitsOf(q.dtype)!;
  const signed = q.dtype === 'int4' || q.dtype === 'int8';
  const offset = signed ? 2 ** (bits - 1) : 0;
  const [K, N] = q.dims;
  const nPad = Math.ceil(N / 8) * 8;
  const blockSize = layout.kind === 'block' ? layout.blockSize : Math.max(K, 1);
  const blocks = Math.max(1, Math.ceil(K / blockSize));
  const unsigned = new Uint8Array(K * nPad);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) unsigned[k * nPad + n] = q.data[k * N + n] + offset;
  }
  const scaleAt = (block: number, n: number): number => {
    if (layout.kind === 'tensor') return 0;
    return layout.kind === 'axis' ? n : block * N + n;
  };
  const scales = new Float32Array(blocks * nPad);
  let zeros: Uint32Array | null = null;
  const zeroValues = zeroPoint ? new Uint8Array(blocks * nPad) : null;
  for (let b = 0; b < blocks; b++) {
    for (let n = 0; n < N; n++) {
      scales[b * nPad + n] = scale.data[scaleAt(b, n)] * scaleFactor;
      if (zeroValues) zeroValues[b * nPad + n] = zeroPoint!.data[scaleAt(b, n)] + offset;
    }
  }
  if (zeroValues) zeros = packUnsigned(zeroValues, bits);
  return { bits, K, N, nPad, blocks, blockSize, words: packUnsigned(unsigned, bits), scales, zeros, zeroConstant: offset };
}

/** Bytes the packed form occupies on the GPU. */
export function packedBytes(w: PackedMatmulWeights): number {
  return w.words.byteLength + w.scales.byteLength + (w.zeros?.byteLength ?? 0);
}

/** The dequantized [K, N] matrix (host reference for folding). */
export function dequantizeMatmulWeights(w: PackedMatmulWeights): Float32Array {
  const out = new Float32Array(w.K * w.N);
  const perWord = valuesPerWord(w.bits);
  const mask = (1 << w.bits) - 1;
  const field = (words: Uint32Array, index: number) => (words[Math.floor(index / perWord)] >>> ((index % perWord) * w.bits)) & mask;
  for (let k = 0; k < w.K; k++) {
    const b = Math.floor(k / w.blockSize);
    for (let n = 0; n < w.N; n++) {
      const zero = w.zeros ? field(w.zeros, b * w.nPad + n) : w.zeroConstant;
      out[k * w.N + n] = (field(w.words, k * w.nPad + n) - zero) * w.scales[b * w.nPad + n];
    }
  }
  return out;
}
