/** CTC greedy decoding and the character-level scores PaddleOCR's RecMetric reports. */
import { EdgerunError } from '../errors.ts';
import { decodeLabel, type RecDictionary } from './dictionary.ts';

/**
 * Greedy CTC over one sequence of class scores laid out [steps, classes]: argmax per step, collapse repeats,
 * drop the blank (class 0).
 */
export function ctcGreedyDecode(scores: Float32Array | number[], steps: number, classes: number, dictionary: RecDictionary): string {
  if (scores.length !== steps * classes) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `CTC scores hold ${scores.length} values, expected ${steps} steps × ${classes} classes`,
      { set: 'rec', steps, classes });
  }
  if (classes !== dictionary.classes.length) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `the model has ${classes} output classes but the dictionary gives ${dictionary.classes.length} (blank + keys + space)`,
      { set: 'rec', classes, dictionaryClasses: dictionary.classes.length });
  }
  const indices: number[] = [];
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      const s = scores[t * classes + c];
      if (s > bestScore) { bestScore = s; best = c; }
    }
    if (best !== 0 && best !== previous) indices.push(best);
    previous = best;
  }
  return decodeLabel(dictionary, indices);
}

/** Levenshtein distance over code points (a Chinese character counts once). */
export function editDistance(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const next = [i];
    for (let j = 1; j <= y.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[y.length];
}

export interface RecScore {
  /** 1 − Σ edit distance / Σ label length (spaces ignored, as PaddleOCR's RecMetric does by default). */
  charAccuracy: number;
  /** Fraction of lines read exactly (spaces ignored). */
  lineAccuracy: number;
  lines: number;
}

export function scoreRecognition(pairs: readonly { label: string; predicted: string }[]): RecScore {
  let distance = 0;
  let length = 0;
  let exact = 0;
  for (const { label, predicted } of pairs) {
    const l = label.replace(/ /g, '');
    const p = predicted.replace(/ /g, '');
    distance += editDistance(p, l);
    length += [...l].length;
    if (p === l) exact++;
  }
  return {
    charAccuracy: length === 0 ? 1 : Math.max(0, 1 - distance / length),
    lineAccuracy: pairs.length === 0 ? 1 : exact / pairs.length,
    lines: pairs.length,
  };
}
