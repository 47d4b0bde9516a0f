/** Detection scoring as ICDAR's IoU evaluator (PaddleOCR's DetMetric): one-to-one matches at IoU ≥ 0.5, counts summed over pages. */
import type { Box } from './render.ts';

export const IOU_THRESHOLD = 0.5;

export function iou(a: Box, b: Box): number {
  const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter;
  return union > 0 ? inter / union : 0;
}

export interface MatchCounts {
  matched: number;
  truths: number;
  predictions: number;
}

/** Each truth takes the first free prediction with IoU ≥ 0.5 (the evaluator's order: truths, then predictions). */
export function matchBoxes(truths: readonly Box[], predictions: readonly Box[]): MatchCounts {
  const used = new Array<boolean>(predictions.length).fill(false);
  let matched = 0;
  for (const truth of truths) {
    const index = predictions.findIndex((p, i) => !used[i] && iou(truth, p) >= IOU_THRESHOLD);
    if (index >= 0) {
      used[index] = true;
      matched++;
    }
  }
  return { matched, truths: truths.length, predictions: predictions.length };
}

export interface DetScore {
  precision: number;
  recall: number;
  hmean: number;
  pages: number;
}

export function scoreDetection(pages: readonly MatchCounts[]): DetScore {
  const total = pages.reduce((s, p) => ({ matched: s.matched + p.matched, truths: s.truths + p.truths, predictions: s.predictions + p.predictions }),
    { matched: 0, truths: 0, predictions: 0 });
  const precision = total.predictions === 0 ? 0 : total.matched / total.predictions;
  const recall = total.truths === 0 ? 0 : total.matched / total.truths;
  return { precision, recall, hmean: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), pages: pages.length };
}
