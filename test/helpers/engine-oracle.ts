/**
 * Whole-model comparison: the same model and inputs through edgerun's WebGPU engine and onnxruntime-node.
 * One engine (one GPU thread) is shared per test file.
 */
import fs from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { WebGpuEngine } from '../../daemon/engine/webgpu-engine.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { seededRandom } from './kernel-harness.ts';

let enginePromise: Promise<WebGpuEngine> | undefined;

export function sharedEngine(): Promise<WebGpuEngine> {
  enginePromise ??= WebGpuEngine.create();
  return enginePromise;
}

export async function closeSharedEngine(): Promise<void> {
  if (!enginePromise) return;
  const engine = await enginePromise;
  enginePromise = undefined;
  await engine.close();
}

/** A smooth, image-like input (sinusoidal gradients plus a little noise) in [-1, 1]. */
export function imageLikeInput(dims: number[], seed: number): Tensor {
  const random = seededRandom(seed);
  const [n, c, h, w] = dims;
  const data = new Float32Array(n * c * h * w);
  let i = 0;
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    data[i++] = 0.8 * Math.sin((x * (0.07 + 0.02 * ch)) + y * 0.11 + seed) * Math.cos(y * 0.05 * (ch + 1)) + 0.2 * (random() * 2 - 1);
  }
  return { dtype: 'float32', dims, data };
}

/**
 * A normalised page-like input: white background with two lines of dark glyph-like strokes, so that a text
 * detector produces real probabilities (about 15 % of pixels above 0.3) rather than all zeros.
 */
export function textLikeInput(dims: number[]): Tensor {
  const [n, c, h, w] = dims;
  const data = new Float32Array(n * c * h * w);
  const lineHeight = Math.max(4, Math.floor(h / 5));
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const row = y % (2 * lineHeight);
    const inLine = row >= lineHeight / 2 && row < lineHeight * 1.5 && y > 8 && y < h - 8;
    const glyph = inLine && x % 9 < 6 && x > 8 && x < w - 8 && (x * 7 + y * 3) % 5 !== 0;
    data[((b * c + ch) * h + y) * w + x] = glyph ? -1.8 : 2.0;
  }
  return { dtype: 'float32', dims, data };
}

function toOrt(t: Tensor): ort.Tensor {
  switch (t.dtype) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(Array.from(t.data, (v) => BigInt(v))), t.dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(t.data), t.dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(t.data), t.dims);
    default: throw new Error(`engine-oracle: dtype ${t.dtype} not supported`);
  }
}

export interface OutputComparison {
  name: string;
  maxAbs: number;
  maxRef: number;
  shapeMatches: boolean;
  actual: Tensor;
  expected: Float32Array | Int32Array;
}

/** Runs model bytes on both engines and compares every output. */
export async function compareWithOrt(modelBytes: Uint8Array, feeds: Map<string, Tensor>, source = 'model'): Promise<OutputComparison[]> {
  const engine = await sharedEngine();
  const model = decodeModel(modelBytes, { source });
  const session = await engine.loadModel(model, { inputShapes: new Map([...feeds].map(([n, t]) => [n, t.dims])) });
  let ours;
  try {
    ours = await session.run(feeds);
  } finally {
    await session.close();
  }
  const reference = await ort.InferenceSession.create(modelBytes);
  const expected = await reference.run(Object.fromEntries([...feeds].map(([n, t]) => [n, toOrt(t)])));
  await reference.release();
  return Object.entries(expected).map(([name, ref]) => {
    const actual = ours.outputs.get(name)!;
    const refData = ref.type === 'float32' ? (ref.data as Float32Array) : Int32Array.from(Array.from(ref.data as ArrayLike<number | bigint | boolean>, Number));
    let maxAbs = 0;
    let maxRef = 0;
    for (let i = 0; i < refData.length; i++) {
      const diff = Math.abs(actual.data[i] - refData[i]);
      maxAbs = Math.max(maxAbs, Number.isNaN(diff) ? Infinity : diff);
      maxRef = Math.max(maxRef, Math.abs(refData[i]));
    }
    return { name, maxAbs, maxRef, shapeMatches: actual.dims.join(',') === [...ref.dims].join(','), actual, expected: refData };
  });
}

export async function readModel(path: string): Promise<Uint8Array> {
  return new Uint8Array(await fs.readFile(path));
}
