/**
 * Activation range observers for static activation quantization, fed with Float32Array batches. Memory is
 * bounded by the histogram size whatever the amount of data: histograms of |x| anchored at 0 grow by doubling
 * their range and merging bin pairs, which re-bins old counts exactly.
 *
 * - MinMaxObserver: the observed extremes.
 * - PercentileObserver: the (100−p)th and pth percentiles (default p = 99.99), so rare outliers do not stretch
 *   the range; two-sided (negative and non-negative magnitudes kept apart), interpolated within a bin.
 * - EntropyObserver: TensorRT's KL-divergence calibration on a 2048-bin |x| histogram: the clipping threshold
 *   whose 128-level (int8) or 256-level (uint8) quantization of the clipped distribution loses the least
 *   information, KL(P‖Q) as in pytorch-quantization's entropy calibrator.
 *
 * activationQParams turns a range into ONNX QuantizeLinear scale and zero point.
 */
import { EdgerunError } from '../errors.ts';
import { roundHalfEven } from './rtn.ts';

export interface ActivationRange {
  min: number;
  max: number;
}

export interface RangeObserver {
  observe(batch: Float32Array): void;
  /** Throws EDGERUN_ERR_CALIBRATION when nothing was observed. */
  range(): ActivationRange;
}

class Extremes {
  min = Infinity;
  max = -Infinity;
  count = 0;
  constructor(private readonly name: string) {}

  add(batch: Float32Array): void {
    for (let i = 0; i < batch.length; i++) {
      const v = batch[i]!;
      if (!Number.isFinite(v)) throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: activation holds ${v} at index ${i}`, { name: this.name });
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
    this.count += batch.length;
  }

  require(): void {
    if (this.count === 0) throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${this.name}: no activation values were observed`, { name: this.name });
  }
}

export class MinMaxObserver implements RangeObserver {
  private readonly extremes: Extremes;
  constructor(name = 'activation') {
    this.extremes = new Extremes(name);
  }

  observe(batch: Float32Array): void {
    this.extremes.add(batch);
  }

  range(): ActivationRange {
    this.extremes.require();
    return { min: this.extremes.min, max: this.extremes.max };
  }
}

/** Counts of magnitudes in [0, top) in `bins` equal half-open bins; the range doubles (merging bin pairs) to admit larger values. */
export class MagnitudeHistogram {
  readonly counts: Float64Array;
  top = 0;
  total = 0;
  constructor(readonly bins: number) {
    this.counts = new Float64Array(bins);
  }

  /** Adds the magnitudes of the values of `batch` for which `select` holds. */
  add(batch: Float32Array, select: (v: number) => boolean): void {
    let largest = 0;
    for (let i = 0; i < batch.length; i++) if (select(batch[i]!)) largest = Math.max(largest, Math.abs(batch[i]!));
    this.growTo(largest);
    const perUnit = this.top > 0 ? this.bins / this.top : 0;
    for (let i = 0; i < batch.length; i++) {
      const v = batch[i]!;
      if (!select(v)) continue;
      this.counts[Math.min(this.bins - 1, Math.floor(Math.abs(v) * perUnit))]!++;
      this.total++;
    }
  }

  get binWidth(): number {
    return this.top / this.bins;
  }

  private growTo(value: number): void {
    if (value <= this.top) return;
    if (this.top === 0) {
      // Everything so far was exactly 0 and sits in bin 0 whatever the range. The top sits just above the first
      // maximum so that every bin, the last included, is half-open and doubling merges bins exactly.
      this.top = value * (1 + 2 ** -20);
      return;
    }
    while (this.top < value) {
      const half = this.bins / 2;
      for (let b = 0; b < half; b++) this.counts[b] = this.counts[2 * b]! + this.counts[2 * b + 1]!;
      this.counts.fill(0, half);
      this.top *= 2;
    }
  }
}

export class PercentileObserver implements RangeObserver {
  private readonly extremes: Extremes;
  private readonly negative: MagnitudeHistogram;
  private readonly nonNegative: MagnitudeHistogram;

  /** `percentile` in (50, 100]; `bins` (even) per sign. */
  constructor(readonly percentile = 99.99, bins = 8192, name = 'activation') {
    if (!(percentile > 50 && percentile <= 100)) throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${name}: percentile ${percentile} must lie in (50, 100]`, { name });
    if (!Number.isInteger(bins) || bins < 2 || bins % 2 !== 0) throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${name}: histogram bins ${bins} must be an even integer ≥ 2`, { name });
    this.extremes = new Extremes(name);
    this.negative = new MagnitudeHistogram(bins);
    this.nonNegative = new MagnitudeHistogram(bins);
  }

  observe(batch: Float32Array): void {
    this.extremes.add(batch);
    this.negative.add(batch, (v) => v < 0);
    this.nonNegative.add(batch, (v) => v >= 0);
  }

  range(): ActivationRange {
    this.extremes.require();
    const fraction = this.percentile / 100;
    const clamp = (v: number): number => Math.min(this.extremes.max, Math.max(this.extremes.min, v));
    return { min: clamp(this.valueAtFraction(1 - fraction)), max: clamp(this.valueAtFraction(fraction)) };
  }

  /** The value below which `fraction` of the observations lie, interpolated within its bin. */
  private valueAtFraction(fraction: number): number {
    const target = fraction * (this.negative.total + this.nonNegative.total);
    let seen = 0;
    const neg = this.negative;
    for (let b = neg.bins - 1; b >= 0; b--) {
      const c = neg.counts[b]!;
      if (c > 0 && seen + c >= target) return -(b + 1 - (target - seen) / c) * neg.binWidth;
      seen += c;
    }
    const pos = this.nonNegative;
    for (let b = 0; b < pos.bins; b++) {
      const c = pos.counts[b]!;
      if (c > 0 && seen + c >= target) return (b + (target - seen) / c) * pos.binWidth;
      seen += c;
    }
    return this.extremes.max;
  }
}

export class EntropyObserver implements RangeObserver {
  private readonly extremes: Extremes;
  private readonly histogram: MagnitudeHistogram;
  private readonly levels: number;

  /** `levels`: 128 for int8 (the |x| side of a symmetric range), 256 for uint8 of non-negative data. */
  constructor(options: { bins?: number; levels?: number; name?: string } = {}) {
    const name = options.name ?? 'activation';
    const bins = options.bins ?? 2048;
    this.levels = options.levels ?? 128;
    if (!Number.isInteger(bins) || bins % 2 !== 0 || !Number.isInteger(this.levels) || this.levels < 2 || this.levels > bins) {
      throw new EdgerunError('EDGERUN_ERR_CALIBRATION', `${name}: entropy calibration needs an even bin count ≥ its levels, got ${bins} bins for ${this.levels} levels`, { name });
    }
    this.extremes = new Extremes(name);
    this.histogram = new MagnitudeHistogram(bins);
  }

  observe(batch: Float32Array): void {
    this.extremes.add(batch);
    this.histogram.add(batch, () => true);
  }

  range(): ActivationRange {
    this.extremes.require();
    const threshold = this.threshold();
    return { min: Math.max(this.extremes.min, -threshold), max: Math.min(this.extremes.max, threshold) };
  }

  /** The |x| clipping threshold with the least KL divergence; the absolute maximum when there is nothing to clip. */
  threshold(): number {
    const { counts, binWidth } = this.histogram;
    let used = counts.length;
    while (used > 0 && counts[used - 1] === 0) used--;
    const absMax = Math.max(Math.abs(this.extremes.min), Math.abs(this.extremes.max));
    if (used <= this.levels) return absMax;
    let bestBins = used;
    let bestKl = Infinity;
    const reference = new Float64Array(used);
    const quantized = new Float64Array(used);
    let tail = 0;
    for (let b = used - 1; b >= this.levels; b--) tail += counts[b]!;
    for (let i = this.levels; i <= used; i++) {
      if (i > this.levels) tail -= counts[i - 1]!;
      const kl = this.divergence(i, tail, reference, quantized);
      if (kl < bestKl) {
        bestKl = kl;
        bestBins = i;
      }
    }
    return Math.min(absMax, bestBins * binWidth);
  }

  /** KL(P‖Q) for clipping at `i` bins: P folds the tail into bin i−1, Q re-expands P's `levels`-level quantization. */
  private divergence(i: number, tail: number, reference: Float64Array, quantized: Float64Array): number {
    const counts = this.histogram.counts;
    for (let b = 0; b < i; b++) reference[b] = counts[b]!;
    reference[i - 1]! += tail;
    for (let level = 0; level < this.levels; level++) {
      const start = Math.floor((level * i) / this.levels);
      const end = Math.floor(((level + 1) * i) / this.levels);
      let sum = 0;
      let nonZero = 0;
      for (let b = start; b < end; b++) {
        sum += counts[b]!;
        if (counts[b] !== 0) nonZero++;
      }
      for (let b = start; b < end; b++) quantized[b] = counts[b] !== 0 ? sum / nonZero : 0;
    }
    let pTotal = 0;
    let qTotal = 0;
    for (let b = 0; b < i; b++) {
      pTotal += reference[b]!;
      qTotal += quantized[b]!;
    }
    let kl = 0;
    for (let b = 0; b < i; b++) {
      const p = reference[b]! / pTotal;
      if (p === 0) continue;
      const q = quantized[b]! / qTotal;
      if (q === 0) return Infinity;
      kl += p * Math.log(p / q);
    }
    return kl;
  }
}

export interface ActivationQParams {
  scale: number;
  zeroPoint: number;
}

/**
 * ONNX QuantizeLinear scale and zero point for `range`: y = saturate(round(x/scale) + zeroPoint). The range is
 * widened to include 0 and the zero point is an integer, so 0.0 is exactly representable (padding, ReLU).
 * Symmetric: int8 zero point 0, scale = absmax/127; uint8 zero point 128, scale = 2·absmax/255.
 */
export function activationQParams(range: ActivationRange, type: 'uint8' | 'int8', options: { symmetric?: boolean } = {}): ActivationQParams {
  const [qmin, qmax] = type === 'uint8' ? [0, 255] : [-128, 127];
  const lo = Math.min(range.min, 0);
  const hi = Math.max(range.max, 0);
  if (options.symmetric) {
    const absMax = Math.max(-lo, hi);
    const scale = Math.fround(type === 'int8' ? absMax / 127 : (2 * absMax) / 255);
    return { scale: scale > 0 ? scale : 1, zeroPoint: type === 'int8' ? 0 : 128 };
  }
  const scale = Math.fround((hi - lo) / (qmax - qmin));
  if (!(scale > 0)) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - lo / scale))) };
}
