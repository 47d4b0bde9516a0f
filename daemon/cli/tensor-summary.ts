/** Human and JSON summaries of tensors for CLI output. */
import type { Tensor } from '../graph/ir.ts';

export interface TensorSummary {
  dtype: string;
  shape: number[];
  min: number;
  max: number;
  mean: number;
  nonFinite: number;
  first: number[];
}

export function summarize(tensor: Tensor): TensorSummary {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  for (const value of tensor.data) {
    if (!Number.isFinite(value)) continue;
    finite++;
    sum += value;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return {
    dtype: tensor.dtype,
    shape: tensor.dims,
    min: finite ? min : NaN,
    max: finite ? max : NaN,
    mean: finite ? sum / finite : NaN,
    nonFinite: tensor.data.length - finite,
    first: Array.from(tensor.data.subarray(0, 6)),
  };
}

export function formatSummary(name: string, s: TensorSummary): string {
  const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toPrecision(5));
  return `${name}: ${s.dtype}[${s.shape.join('×')}] min ${fmt(s.min)} max ${fmt(s.max)} mean ${fmt(s.mean)}`
    + `${s.nonFinite ? ` non-finite ${s.nonFinite}` : ''} first [${s.first.map(fmt).join(', ')}${s.first.length < 6 ? '' : ', …'}]`;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

/** A filesystem-safe file stem for a tensor name; distinct names stay distinct. */
export function safeFileStem(name: string, taken: Set<string>): string {
  let stem = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'output';
  if (stem.length > 120) stem = stem.slice(0, 120);
  let candidate = stem;
  for (let i = 2; taken.has(candidate.toLowerCase()); i++) candidate = `${stem}_${i}`;
  taken.add(candidate.toLowerCase());
  return candidate;
}
