/**
 * Where each weight element's scale lives, in ONNX DequantizeLinear-21 terms. Per channel: a 1-D scale of
 * length dims[axis], element → its index along `axis`. Per block: the scale has the weight's shape with
 * dims[axis] → ceil(dims[axis]/blockSize), element → the same coordinates with its axis coordinate divided by
 * blockSize. Every quantizer (RTN, clipping search, GPTQ, AWQ) and the compressor share these maps.
 */
import type { QuantGranularity } from './types.ts';

/** The shape of the scale (and zero point) tensor for a weight of `dims`. */
export function scaleDimsFor(dims: readonly number[], granularity: QuantGranularity): number[] {
  const axis = granularity.axis;
  if (granularity.kind === 'channel') return [dims[axis]!];
  return dims.map((d, i) => (i === axis ? Math.ceil(d / granularity.blockSize) : d));
}

export function scaleCountFor(dims: readonly number[], granularity: QuantGranularity): number {
  return scaleDimsFor(dims, granularity).reduce((a, b) => a * b, 1);
}

/** The flat scale index of the element at flat (row-major) index `index`. */
export function scaleIndexOf(index: number, dims: readonly number[], granularity: QuantGranularity): number {
  const axis = granularity.axis;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  const axisLen = dims[axis]!;
  const along = Math.floor(index / inner) % axisLen;
  if (granularity.kind === 'channel') return along;
  const outer = Math.floor(index / (inner * axisLen));
  const blocks = Math.ceil(axisLen / granularity.blockSize);
  return (outer * blocks + Math.floor(along / granularity.blockSize)) * inner + (index % inner);
}

/** scaleIndexOf for every element at once (length = element count). */
export function scaleIndexMap(dims: readonly number[], granularity: QuantGranularity): Int32Array {
  const axis = granularity.axis;
  let inner = 1;
  for (let i = axis + 1; i < dims.length; i++) inner *= dims[i]!;
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= dims[i]!;
  const axisLen = dims[axis]!;
  const map = new Int32Array(outer * axisLen * inner);
  const blockSize = granularity.kind === 'block' ? granularity.blockSize : 0;
  const blocks = blockSize ? Math.ceil(axisLen / blockSize) : 0;
  let index = 0;
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < axisLen; a++) {
      const base = blockSize ? (o * blocks + Math.floor(a / blockSize)) * inner : a;
      for (let r = 0; r < inner; r++) map[index++] = blockSize ? base + r : base;
    }
  }
  return map;
}

/** Elements grouped by scale (CSR): members of scale s are `members[offsets[s] .. offsets[s+1])`, ascending. */
export interface ScaleGroups {
  offsets: Int32Array;
  members: Int32Array;
}

export function scaleGroups(map: Int32Array, scaleCount: number): ScaleGroups {
  const offsets = new Int32Array(scaleCount + 1);
  for (let i = 0; i < map.length; i++) offsets[map[i]! + 1]!++;
  for (let s = 0; s < scaleCount; s++) offsets[s + 1]! += offsets[s]!;
  const cursor = offsets.slice(0, scaleCount);
  const members = new Int32Array(map.length);
  for (let i = 0; i < map.length; i++) members[cursor[map[i]!]!++] = i;
  return { offsets, members };
}
