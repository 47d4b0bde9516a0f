/**
 * The one owner of the INT4/INT8 storage layouts. Everything that packs or unpacks quantized values —
 * the compressor writing ONNX, the ONNX decoder, the runtime's kernels repacking for the GPU — calls here.
 *
 * ONNX INT4/UINT4 (TensorProto data types 22 / 21, opset 21): two elements per byte, element 2k in the low
 * nibble and 2k+1 in the high nibble of byte k; an odd count leaves the last high nibble zero. Signed values
 * are two's complement in 4 bits ([-8, 7]); unsigned [0, 15].
 *
 * com.microsoft MatMulNBits (bits 4): B is [N, blocksPerCol, blockSize/2] uint8 — for output column n, the K
 * values of block b, low nibble first, unsigned with zero point 8 unless zero_points are given; zero points are
 * packed two per byte the same way, per column ceil(blocksPerCol/2) bytes.
 *
 * GPU layout (runtime): u32 words, 8 nibbles per word, element 8w+j in bits [4j, 4j+4) — the same order as the
 * ONNX bytes read as little-endian u32, so the ONNX bytes upload as-is (padded to a multiple of 4 bytes).
 */

export const ONNX_DATA_TYPE_UINT4 = 21;
export const ONNX_DATA_TYPE_INT4 = 22;

export function packedInt4Bytes(count: number): number {
  return Math.ceil(count / 2);
}

/** Packs int4 ([-8,7], signed) or uint4 ([0,15]) values, two per byte, low nibble first. */
export function packInt4(values: ArrayLike<number>, signed: boolean): Uint8Array {
  const out = new Uint8Array(packedInt4Bytes(values.length));
  const lo = signed ? -8 : 0;
  const hi = signed ? 7 : 15;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`int4 value ${v} at ${i} is outside [${lo}, ${hi}]`);
    out[i >> 1]! |= (v & 0xf) << ((i & 1) * 4);
  }
  return out;
}

/** Unpacks `count` int4/uint4 values. */
export function unpackInt4(bytes: Uint8Array, count: number, signed: boolean): Int8Array {
  if (bytes.length < packedInt4Bytes(count)) throw new RangeError(`${bytes.length} bytes hold fewer than ${count} int4 values`);
  const out = new Int8Array(count);
  for (let i = 0; i < count; i++) {
    const nibble = (bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf;
    out[i] = signed && nibble >= 8 ? nibble - 16 : nibble;
  }
  return out;
}

/** Bytes as little-endian u32 words for a GPU buffer, zero-padded to a multiple of 4 bytes. */
export function bytesToWords(bytes: Uint8Array): Uint32Array {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  return new Uint32Array(padded.buffer, 0, padded.length / 4);
}

/** int8 values ([-128,127]) or uint8 ([0,255]) as ONNX raw bytes. */
export function packInt8(values: ArrayLike<number>, signed: boolean): Uint8Array {
  const out = new Uint8Array(values.length);
  const lo = signed ? -128 : 0;
  const hi = signed ? 127 : 255;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`int8 value ${v} at ${i} is outside [${lo}, ${hi}]`);
    out[i] = v & 0xff;
  }
  return out;
}
