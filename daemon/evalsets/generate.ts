/**
 * Builds the labelled sets in memory from seeds: rec lines (Latin and Chinese, clean and degraded), det pages with
 * ground-truth boxes, cls lines upright or turned 180°. The test split is drawn first; the calibration split then
 * never takes a string the test split holds.
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import { facesFor, registerFonts, type Script } from './fonts.ts';
import { addGaussianNoise, compressContrast, gaussianBlur, rotate180, type RgbaImage } from './image.ts';
import { clsInput, detInput, recInput } from './preprocess.ts';
import { createRng, type Rng } from './random.ts';
import { lineExtent, renderLine, renderPage, type Box, type PageLine } from './render.ts';
import { assertDisjoint, LineSource } from './text-lines.ts';

export type EvalTask = 'ppocr-rec' | 'ppocr-det' | 'ppocr-cls';
export const EVAL_TASKS: readonly EvalTask[] = ['ppocr-rec', 'ppocr-det', 'ppocr-cls'];
export type Split = 'calib' | 'test';
export type Variant = 'clean' | 'degraded';

export interface Degradation {
  blurSigma?: number;
  noiseSigma?: number;
  /** Grey range the image is squeezed into. */
  contrast?: [number, number];
}

export interface RecItem { id: string; label: string; script: Script; font: string; fontSize: number; variant: Variant; degradation?: Degradation; input: Tensor }
export interface DetItem { id: string; variant: Variant; degradation?: Degradation; lines: string[]; boxes: Box[]; scale: { x: number; y: number }; input: Tensor }
export interface ClsItem { id: string; text: string; rotated: boolean; font: string; input: Tensor }

export type LabelledSet =
  | { task: 'ppocr-rec'; split: Split; items: RecItem[] }
  | { task: 'ppocr-det'; split: Split; items: DetItem[] }
  | { task: 'ppocr-cls'; split: Split; items: ClsItem[] };

export interface SplitSizes {
  rec: { clean: number; degraded: number };
  det: { clean: number; degraded: number; pageSize: number };
  cls: number;
}

export interface EvalSetSizes { calib: SplitSizes; test: SplitSizes }

/** Benchmark sizes: enough lines that one misread character moves rec accuracy by well under 0.1 pt. */
export const BENCH_SIZES: EvalSetSizes = {
  calib: { rec: { clean: 48, degraded: 48 }, det: { clean: 8, degraded: 8, pageSize: 640 }, cls: 32 },
  test: { rec: { clean: 200, degraded: 200 }, det: { clean: 20, degraded: 20, pageSize: 640 }, cls: 200 },
};

export const TINY_SIZES: EvalSetSizes = {
  calib: { rec: { clean: 4, degraded: 4 }, det: { clean: 1, degraded: 1, pageSize: 320 }, cls: 4 },
  test: { rec: { clean: 6, degraded: 6 }, det: { clean: 1, degraded: 1, pageSize: 320 }, cls: 6 },
};

const SPLIT_SEEDS: Record<Split, number> = { test: 20_260_001, calib: 20_260_777 };
const TASK_SEED_OFFSET: Record<EvalTask, number> = { 'ppocr-rec': 0, 'ppocr-det': 101, 'ppocr-cls': 202 };

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/**
 * One of blur, noise, low contrast or a mix, with its parameters drawn and recorded. Strong enough that the FP32
 * model misreads some lines: a set the model reads perfectly cannot show what compression costs.
 */
function drawDegradation(rng: Rng): Degradation {
  switch (rng.int(0, 3)) {
    case 0: return { blurSigma: round3(rng.uniform(1.0, 1.7)) };
    case 1: return { noiseSigma: round3(rng.uniform(20, 40)) };
    case 2: {
      const low = rng.int(80, 120);
      return { contrast: [low, low + rng.int(30, 45)], noiseSigma: round3(rng.uniform(6, 12)) };
    }
    default: return { blurSigma: round3(rng.uniform(0.6, 1.0)), noiseSigma: round3(rng.uniform(10, 18)) };
  }
}

function degrade(image: RgbaImage, degradation: Degradation, rng: Rng): RgbaImage {
  let out = image;
  if (degradation.contrast) out = compressContrast(out, degradation.contrast[0], degradation.contrast[1]);
  if (degradation.blurSigma) out = gaussianBlur(out, degradation.blurSigma);
  if (degradation.noiseSigma) out = addGaussianNoise(out, degradation.noiseSigma, rng);
  return out;
}

/** Degraded lines are also small (14–22 px), so the recogniser sees them upscaled and soft, as distant text is. */
function lineStyle(rng: Rng, script: Script, variant: Variant = 'clean') {
  return {
    family: rng.pick(facesFor(script)).family,
    fontSize: variant === 'clean' ? rng.int(20, 40) : rng.int(14, 22),
    ink: rng.int(0, 60),
    paper: rng.int(200, 255),
    padX: rng.int(2, 10),
    padY: rng.int(2, 8),
  };
}

function recItems(rng: Rng, lines: LineSource, sizes: SplitSizes['rec']): RecItem[] {
  const items: RecItem[] = [];
  for (const variant of ['clean', 'degraded'] as const) {
    for (let i = 0; i < sizes[variant]; i++) {
      const script: Script = i % 2 === 0 ? 'latin' : 'chinese';
      const label = lines.next(script);
      const style = lineStyle(rng, script, variant);
      let image = renderLine(label, style);
      const degradation = variant === 'degraded' ? drawDegradation(rng) : undefined;
      if (degradation) image = degrade(image, degradation, rng);
      items.push({ id: `rec-${variant}-${String(i).padStart(4, '0')}`, label, script, font: style.family, fontSize: style.fontSize, variant, degradation, input: recInput(image) });
    }
  }
  return items;
}

function layoutPage(rng: Rng, lines: LineSource, size: number): PageLine[] {
  const placed: PageLine[] = [];
  const margin = Math.round(size / 32);
  let y = margin + rng.int(0, margin);
  for (let attempt = 0; attempt < 40 && placed.length < 8; attempt++) {
    const script: Script = rng.next() < 0.5 ? 'latin' : 'chinese';
    const family = rng.pick(facesFor(script)).family;
    const fontSize = rng.int(Math.round(size / 53), Math.round(size / 18));
    const text = lines.next(script);
    const extent = lineExtent(text, family, fontSize);
    if (y + extent.height > size - margin) break;
    // A line that does not fit the width goes back unused; its string stays taken, which keeps splits disjoint.
    if (extent.width > size - 2 * margin) continue;
    const x = margin + rng.int(0, Math.floor(size - 2 * margin - extent.width));
    placed.push({ text, family, fontSize, x, y: Math.round(y) });
    y += extent.height + rng.int(Math.round(fontSize * 0.4), Math.round(fontSize * 1.5));
  }
  return placed;
}

function detItems(rng: Rng, lines: LineSource, sizes: SplitSizes['det']): DetItem[] {
  const items: DetItem[] = [];
  for (const variant of ['clean', 'degraded'] as const) {
    for (let i = 0; i < sizes[variant]; i++) {
      const page = layoutPage(rng, lines, sizes.pageSize);
      const { image, boxes } = renderPage(sizes.pageSize, sizes.pageSize, page, rng.int(0, 60), rng.int(200, 255));
      const degradation = variant === 'degraded' ? drawDegradation(rng) : undefined;
      const { input, scaleX, scaleY } = detInput(degradation ? degrade(image, degradation, rng) : image);
      items.push({ id: `det-${variant}-${String(i).padStart(4, '0')}`, variant, degradation, lines: page.map((l) => l.text), boxes, scale: { x: scaleX, y: scaleY }, input });
    }
  }
  return items;
}

function clsItems(rng: Rng, lines: LineSource, count: number): ClsItem[] {
  return Array.from({ length: count }, (_, i) => {
    const script: Script = i % 4 < 2 ? 'latin' : 'chinese';
    const text = lines.next(script);
    const style = lineStyle(rng, script);
    const rotated = i % 2 === 1;
    const image = renderLine(text, style);
    return { id: `cls-${String(i).padStart(4, '0')}`, text, rotated, font: style.family, input: clsInput(rotated ? rotate180(image) : image) };
  });
}

function buildSplit(split: Split, sizes: SplitSizes, exclude: ReadonlySet<string>, tasks: readonly EvalTask[]): { sets: LabelledSet[]; taken: Set<string> } {
  const taken = new Set<string>();
  const sets: LabelledSet[] = [];
  for (const task of tasks) {
    const rng = createRng(SPLIT_SEEDS[split] + TASK_SEED_OFFSET[task]);
    const lines = new LineSource(rng, exclude, taken);
    if (task === 'ppocr-rec') sets.push({ task, split, items: recItems(rng, lines, sizes.rec) });
    else if (task === 'ppocr-det') sets.push({ task, split, items: detItems(rng, lines, sizes.det) });
    else sets.push({ task, split, items: clsItems(rng, lines, sizes.cls) });
  }
  return { sets, taken };
}

/** Every string a set renders (rec labels, det page lines, cls texts). */
export function setStrings(set: LabelledSet): string[] {
  if (set.task === 'ppocr-rec') return set.items.map((i) => i.label);
  if (set.task === 'ppocr-det') return set.items.flatMap((i) => i.lines);
  return set.items.map((i) => i.text);
}

export function assertEvalTask(task: string): EvalTask {
  if (!(EVAL_TASKS as readonly string[]).includes(task)) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `unknown eval task '${task}' (${EVAL_TASKS.join(', ')})`, { task });
  }
  return task as EvalTask;
}

/** Both splits of the given tasks; throws if any string landed in both. */
export function buildEvalSets(sizes: EvalSetSizes, tasks: readonly EvalTask[] = EVAL_TASKS): { calib: LabelledSet[]; test: LabelledSet[] } {
  registerFonts();
  const test = buildSplit('test', sizes.test, new Set(), tasks);
  const calib = buildSplit('calib', sizes.calib, test.taken, tasks);
  assertDisjoint(calib.sets.flatMap(setStrings), test.sets.flatMap(setStrings));
  return { calib: calib.sets, test: test.sets };
}
