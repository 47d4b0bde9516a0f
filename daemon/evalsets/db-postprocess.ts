/**
 * PaddleOCR's DBPostProcess for horizontal text: threshold the probability map at 0.3, take connected components,
 * keep boxes whose mean probability is ≥ 0.6, unclip by area × 1.5 / perimeter and drop tiny ones. Components are
 * boxed axis-aligned instead of with a minimum-area rectangle: the eval pages hold only horizontal lines, where
 * both give the same box.
 */
import type { Box } from './render.ts';

export interface DbOptions {
  threshold: number;
  boxThreshold: number;
  unclipRatio: number;
  minSize: number;
  maxCandidates: number;
}

export const DB_DEFAULTS: DbOptions = { threshold: 0.3, boxThreshold: 0.6, unclipRatio: 1.5, minSize: 3, maxCandidates: 1000 };

export interface ScoredBox extends Box {
  score: number;
}

/** 8-connected components of prob > threshold, as inclusive pixel bounds. */
function components(prob: Float32Array, width: number, height: number, threshold: number): { x0: number; y0: number; x1: number; y1: number }[] {
  const label = new Int32Array(width * height).fill(-1);
  const found: { x0: number; y0: number; x1: number; y1: number }[] = [];
  const stack: number[] = [];
  for (let start = 0; start < width * height; start++) {
    if (label[start] !== -1 || !(prob[start] > threshold)) continue;
    const id = found.length;
    const bounds = { x0: width, y0: height, x1: -1, y1: -1 };
    label[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop()!;
      const x = p % width;
      const y = (p - x) / width;
      bounds.x0 = Math.min(bounds.x0, x); bounds.x1 = Math.max(bounds.x1, x);
      bounds.y0 = Math.min(bounds.y0, y); bounds.y1 = Math.max(bounds.y1, y);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const q = ny * width + nx;
          if (label[q] === -1 && prob[q] > threshold) {
            label[q] = id;
            stack.push(q);
          }
        }
      }
    }
    found.push(bounds);
  }
  return found;
}

/** Boxes in the coordinates of the original image (map coordinates × scale). */
export function dbPostprocess(prob: Float32Array, width: number, height: number, scale: { x: number; y: number } = { x: 1, y: 1 },
  options: DbOptions = DB_DEFAULTS): ScoredBox[] {
  const boxes: ScoredBox[] = [];
  for (const c of components(prob, width, height, options.threshold).slice(0, options.maxCandidates)) {
    // Box corners at pixel coordinates, as OpenCV's contour points are.
    const w = c.x1 - c.x0;
    const h = c.y1 - c.y0;
    if (Math.min(w, h) < options.minSize) continue;
    let sum = 0;
    for (let y = c.y0; y <= c.y1; y++) for (let x = c.x0; x <= c.x1; x++) sum += prob[y * width + x];
    const score = sum / ((w + 1) * (h + 1));
    if (score < options.boxThreshold) continue;
    const distance = (w * h * options.unclipRatio) / (2 * (w + h));
    const grown = { x0: c.x0 - distance, y0: c.y0 - distance, x1: c.x1 + distance, y1: c.y1 + distance };
    if (Math.min(grown.x1 - grown.x0, grown.y1 - grown.y0) < options.minSize + 2) continue;
    const clamp = (v: number, max: number) => Math.min(Math.max(Math.round(v), 0), max);
    boxes.push({
      x0: clamp(grown.x0 * scale.x, Math.round(width * scale.x)),
      y0: clamp(grown.y0 * scale.y, Math.round(height * scale.y)),
      x1: clamp(grown.x1 * scale.x, Math.round(width * scale.x)),
      y1: clamp(grown.y1 * scale.y, Math.round(height * scale.y)),
      score,
    });
  }
  return boxes;
}
