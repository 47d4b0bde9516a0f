/**
 * Builds a layer's LayerCalibration from its input activations, streamed in batches, and turns Conv inputs into
 * the im2col rows a conv weight sees.
 *
 * Cost: the Hessian H = Σ xᵀx costs K²/2 multiply-adds per row, which for im2col rows of real models (K up to
 * ~3000, 1e5 rows) would take minutes. Each addRows call therefore contributes at most `maxRowsPerCall` rows to
 * H, picked evenly spaced (deterministic); `rows` counts the rows that went into H, so H/rows stays an unbiased
 * second moment. mean and meanAbs are cheap and use every row. Callers feed one calibration sample per call, so
 * every sample contributes.
 */
import { EdgerunError } from '../errors.ts';
import { dot } from './linalg.ts';
import type { LayerCalibration } from './types.ts';

/** Multiply-adds one addRows call may spend on H by default: about a tenth of a second in V8. */
const DEFAULT_HESSIAN_BUDGET = 2 ** 27;
const MIN_ROWS_PER_CALL = 256;
/** Rows folded into H together: each H entry is then read and written once per chunk, not once per row. */
const CHUNK_ROWS = 32;

export interface LayerStatsOptions {
  /** Cap on the rows one addRows call adds to H (default: max(256, 2^27 / (K²/2))). */
  maxRowsPerCall?: number;
  /** Names the activation (or file) in error messages. */
  name?: string;
}

export class LayerStatsAccumulator {
  readonly features: number;
  private readonly name: string;
  private readonly maxRowsPerCall: number;
  private readonly upper: Float64Array;
  private readonly sum: Float64Array;
  private readonly sumAbs: Float64Array;
  private readonly chunk: Float64Array;
  private hessianRows = 0;
  private allRows = 0;

  constructor(features: number, options: LayerStatsOptions = {}) {
    this.name = options.name ?? 'activation';
    if (!Number.isInteger(features) || features <= 0) {
      throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: feature count ${features} must be a positive integer`, { name: this.name });
    }
    this.features = features;
    this.maxRowsPerCall = options.maxRowsPerCall ?? Math.max(MIN_ROWS_PER_CALL, Math.floor(DEFAULT_HESSIAN_BUDGET / ((features * features) / 2)));
    this.upper = new Float64Array(features * features);
    this.sum = new Float64Array(features);
    this.sumAbs = new Float64Array(features);
    this.chunk = new Float64Array(features * CHUNK_ROWS);
  }

  /** Adds `rows` rows of width `features` (row-major). Throws EDGERUN_ERR_CALIBRATION on a size mismatch or NaN/Inf. */
  addRows(x: Float32Array, rows: number): void {
    const k = this.features;
    if (!Number.isInteger(rows) || rows < 0 || x.length !== rows * k) {
      throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: ${x.length} values are not ${rows} rows of ${k} features`, { name: this.name });
    }
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (!Number.isFinite(v)) {
        throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: activation holds ${v} at row ${Math.floor(i / k)}, feature ${i % k}`, { name: this.name });
      }
      const j = i % k;
      this.sum[j]! += v;
      this.sumAbs[j]! += Math.abs(v);
    }
    this.allRows += rows;
    const taken = Math.min(rows, this.maxRowsPerCall);
    for (let start = 0; start < taken; start += CHUNK_ROWS) {
      const count = Math.min(CHUNK_ROWS, taken - start);
      for (let c = 0; c < count; c++) {
        const row = taken === rows ? start + c : Math.floor(((start + c) * rows) / taken);
        for (let j = 0; j < k; j++) this.chunk[j * CHUNK_ROWS + c] = x[row * k + j]!;
      }
      this.foldChunk(count);
    }
    this.hessianRows += taken;
  }

  private foldChunk(count: number): void {
    const k = this.features;
    const chunk = this.chunk;
    for (let i = 0; i < k; i++) {
      const bi = i * CHUNK_ROWS;
      const hBase = i * k;
      for (let j = i; j < k; j++) this.upper[hBase + j]! += dot(chunk, bi, chunk, j * CHUNK_ROWS, count);
    }
  }

  /** Rows seen by addRows in total (mean/meanAbs average over these). */
  get rowsSeen(): number {
    return this.allRows;
  }

  /** The statistics so far. Throws EDGERUN_ERR_CALIBRATION when no rows were added. */
  result(): LayerCalibration {
    if (this.allRows === 0) throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: no calibration rows were added`, { name: this.name });
    const k = this.features;
    const hessian = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = this.upper[i * k + j]!;
        hessian[i * k + j] = v;
        hessian[j * k + i] = v;
      }
    }
    return {
      rows: this.hessianRows,
      hessian,
      meanAbs: this.sumAbs.map((v) => v / this.allRows),
      mean: this.sum.map((v) => v / this.allRows),
      features: k,
    };
  }
}

/** Conv attributes as ONNX gives them (2-D). */
export interface ConvGeometry {
  kernelShape: [number, number];
  strides?: [number, number];
  /** [top, left, bottom, right] (ONNX order: begins then ends). */
  pads?: [number, number, number, number];
  dilations?: [number, number];
  group?: number;
}

export interface Im2colRows {
  rows: Float32Array;
  rowCount: number;
  /** C/group · kh · kw. */
  features: number;
}

/**
 * The im2col rows a 2-D Conv weight of group `groupIndex` multiplies: one row per (batch, output y, output x), the
 * features in the weight's (c, ky, kx) order, zero where the window reads padding. With `maxRows`, an evenly
 * spaced subset of the rows (deterministic) keeps memory bounded for large feature maps.
 */
export function im2colRows(input: Float32Array, inputDims: number[], conv: ConvGeometry, groupIndex = 0, options: { maxRows?: number; name?: string } = {}): Im2colRows {
  const name = options.name ?? 'conv input';
  const fail = (message: string): never => {
    throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${name}: ${message}`, { name });
  };
  if (inputDims.length !== 4) fail(`im2col needs an NCHW input, got [${inputDims.join(', ')}]`);
  const [n, c, h, w] = inputDims as [number, number, number, number];
  if (input.length !== n * c * h * w) fail(`${input.length} values do not fill [${inputDims.join(', ')}]`);
  const [kh, kw] = conv.kernelShape;
  const [sh, sw] = conv.strides ?? [1, 1];
  const [pt, pl, pb, pr] = conv.pads ?? [0, 0, 0, 0];
  const [dh, dw] = conv.dilations ?? [1, 1];
  const group = conv.group ?? 1;
  if (c % group !== 0 || groupIndex < 0 || groupIndex >= group) fail(`group ${groupIndex} of ${group} does not fit ${c} channels`);
  const cg = c / group;
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (oh <= 0 || ow <= 0) fail(`the ${kh}×${kw} kernel does not fit a ${h}×${w} input`);
  const features = cg * kh * kw;
  const total = n * oh * ow;
  const rowCount = Math.min(total, options.maxRows ?? total);
  const rows = new Float32Array(rowCount * features);
  const c0 = groupIndex * cg;
  for (let r = 0; r < rowCount; r++) {
    const source = rowCount === total ? r : Math.floor((r * total) / rowCount);
    const b = Math.floor(source / (oh * ow));
    const oy = Math.floor(source / ow) % oh;
    const ox = source % ow;
    let f = r * features;
    for (let ci = 0; ci < cg; ci++) {
      const plane = (b * c + c0 + ci) * h * w;
      for (let ky = 0; ky < kh; ky++) {
        const iy = oy * sh - pt + ky * dh;
        for (let kx = 0; kx < kw; kx++) {
          const ix = ox * sw - pl + kx * dw;
          rows[f++] = iy >= 0 && iy < h && ix >= 0 && ix < w ? input[plane + iy * w + ix]! : 0;
        }
      }
    }
  }
  return { rows, rowCount, features };
}
