/**
 * The compression table behind `edgerun bench --compare`: for each package (or bare FP32 .onnx) its precision,
 * size and ratio to the FP32 model of the same task, steady latency on edgerun (WebGPU) and onnxruntime-node (CPU)
 * in fresh processes, accuracy on the labelled test sets (docs/ACCURACY.md) or, without a task, agreement with
 * the package's own eval set, GPU memory, peak RSS, and the largest edgerun − onnxruntime output difference.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { OrtCpuEngine } from '../daemon/engine/ort-cpu-engine.ts';
import type { Engine } from '../daemon/engine/types.ts';
import { EdgerunError } from '../daemon/errors.ts';
import { evaluateTask, type TaskMetrics } from '../daemon/evalsets/evaluate.ts';
import { assertEvalTask, type EvalTask, type LabelledSet } from '../daemon/evalsets/generate.ts';
import { readLabelledSet } from '../daemon/evalsets/store.ts';
import { packageError } from '../daemon/package/manifest.ts';
import { readBareModel, readPackage, type ModelPackage } from '../daemon/package/read-package.ts';
import { runGate } from '../daemon/swap/gate.ts';
import { measureInChild, type PeerName } from './compare.ts';
import type { MeasureResult } from './measure.ts';

export type LatencyEngine = Extract<PeerName, 'edgerun' | 'ort-node'>;

export interface CompareItem {
  path: string;
  /** The task of a bare .onnx (a package names its own in manifest.json). */
  task?: EvalTask;
}

export interface CompareOptions {
  items: CompareItem[];
  evalsetsDir: string;
  runs: number;
  engines: LatencyEngine[];
  /** The engine accuracy is measured with: onnxruntime-node is the oracle, edgerun checks our kernels end to end. */
  accuracyEngine: LatencyEngine;
  onProgress?: (message: string) => void;
}

export type Accuracy = TaskMetrics | { task: 'agreement'; fraction: number; cases: number } | { task: 'none' };

export interface CompareRow {
  label: string;
  path: string;
  kind: 'package' | 'bare';
  task?: EvalTask;
  precision: string;
  /** model.onnx plus its external data. */
  modelBytes: number;
  /** FP32 bytes / these bytes, against the bare model of the same task. */
  sizeRatio?: number;
  latencyMs: Partial<Record<LatencyEngine, number>>;
  latencyErrors: string[];
  accuracy: Accuracy;
  /** Primary metrics in points minus the FP32 model's (rec: clean, degraded char accuracy; det: hmean; cls: accuracy). */
  deltaPoints?: number[];
  /** edgerun's activation + constant buffers. */
  gpuBytes?: number;
  peakRssBytes: Partial<Record<LatencyEngine, number>>;
  agreement?: { maxAbs: number; maxRef: number };
  adapter?: string;
}

const LATENCY_SHAPES: Record<EvalTask, number[]> = {
  'ppocr-rec': [1, 3, 48, 320],
  'ppocr-det': [1, 3, 640, 640],
  'ppocr-cls': [1, 3, 48, 192],
};

async function readItem(item: CompareItem): Promise<ModelPackage> {
  let stat;
  try {
    stat = await fs.stat(item.path);
  } catch {
    throw packageError(item.path, 'no such package folder or .onnx file');
  }
  if (stat.isDirectory()) {
    try {
      await fs.access(path.join(item.path, 'manifest.json'));
    } catch {
      throw packageError(item.path, 'is not a package: it has no manifest.json (expected manifest.json and model.onnx, as `edgerun compress` writes)');
    }
    return readPackage(item.path);
  }
  return readBareModel(item.path);
}

function recipeName(pkg: ModelPackage): string {
  if (pkg.kind === 'bare') return 'fp32';
  const manifest = pkg.manifest as unknown as Record<string, unknown>;
  const recipe = manifest.recipe as Record<string, unknown> | undefined;
  for (const candidate of [recipe?.name, recipe?.recipe, manifest.precision]) {
    if (typeof candidate === 'string' && candidate.length > 0) return candidate;
  }
  return 'custom';
}

function packageTask(pkg: ModelPackage, fallback: EvalTask | undefined): EvalTask | undefined {
  const declared = (pkg.manifest as unknown as Record<string, unknown> | undefined)?.task;
  if (declared === undefined) return fallback;
  if (typeof declared !== 'string') throw packageError(pkg.dir, 'manifest.task must be a string naming an eval task', { field: 'manifest.task' });
  return assertEvalTask(declared);
}

/** The model file plus the files next to it that hold its external data. */
async function modelBytes(pkg: ModelPackage): Promise<number> {
  const files = pkg.manifest?.files ?? [];
  const model = pkg.manifest?.model;
  const data = files.filter((f) => f.path !== model && /\.(data|bin|onnx_data)$/.test(f.path) && !f.path.startsWith('eval/'));
  return (await fs.stat(pkg.modelPath)).size + data.reduce((sum, f) => sum + f.bytes, 0);
}

function latencyShapes(pkg: ModelPackage, task: EvalTask | undefined, set: LabelledSet | undefined): Map<string, number[]> {
  if (pkg.inputs.length === 1 && task) {
    const dims = task === 'ppocr-det' && set?.items[0] ? set.items[0].input.dims : LATENCY_SHAPES[task];
    return new Map([[pkg.inputs[0].name, dims]]);
  }
  const evalCase = pkg.eval?.cases[0];
  if (evalCase) return new Map([...evalCase.inputs].map(([name, t]) => [name, t.dims]));
  const shapes = new Map<string, number[]>();
  for (const input of pkg.inputs) {
    if (!input.dims || input.dims.some((d) => typeof d !== 'number' || d <= 0)) {
      throw packageError(pkg.dir, `input '${input.name}' has dynamic dims and the package has neither a task nor an eval set to take shapes from`, { input: input.name });
    }
    shapes.set(input.name, input.dims as number[]);
  }
  return shapes;
}

function decode(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

function outputAgreement(ours: MeasureResult, reference: MeasureResult): { maxAbs: number; maxRef: number } {
  let maxAbs = 0;
  let maxRef = 0;
  for (const [name, expected] of Object.entries(reference.outputs)) {
    const actual = ours.outputs[name];
    const a = actual ? decode(actual.base64) : undefined;
    const e = decode(expected.base64);
    if (!a || a.length !== e.length) return { maxAbs: Infinity, maxRef };
    for (let i = 0; i < e.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i] - e[i]));
      maxRef = Math.max(maxRef, Math.abs(e[i]));
    }
  }
  return { maxAbs, maxRef };
}

function median(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return sorted[Math.ceil(0.5 * sorted.length) - 1];
}

/** The metrics that decide whether a compressed model kept its accuracy, in points. */
export function primaryPoints(accuracy: Accuracy): number[] {
  switch (accuracy.task) {
    case 'ppocr-rec': return [accuracy.clean.charAccuracy * 100, accuracy.degraded.charAccuracy * 100];
    case 'ppocr-det': return [accuracy.clean.hmean * 100, accuracy.degraded.hmean * 100];
    case 'ppocr-cls': return [accuracy.accuracy * 100];
    case 'agreement': return [accuracy.fraction * 100];
    default: return [];
  }
}

async function createAccuracyEngine(name: LatencyEngine): Promise<Engine> {
  if (name === 'ort-node') return OrtCpuEngine.create();
  const { WebGpuEngine } = await import('../daemon/engine/webgpu-engine.ts');
  return WebGpuEngine.create();
}

export async function compareModels(options: CompareOptions): Promise<CompareRow[]> {
  const progress = options.onProgress ?? (() => {});
  // Read every item first: a typo in the last path should not cost the minutes the first ones take.
  const packages = await Promise.all(options.items.map(async (item) => ({ item, pkg: await readItem(item) })));
  const resolved = packages.map(({ item, pkg }) => ({ item, pkg, task: packageTask(pkg, pkg.kind === 'bare' ? item.task : undefined) }));
  const sets = new Map<EvalTask, LabelledSet>();
  for (const { task } of resolved) {
    if (task && !sets.has(task)) sets.set(task, await readLabelledSet(options.evalsetsDir, 'test', task));
  }
  const engine = await createAccuracyEngine(options.accuracyEngine);
  const rows: CompareRow[] = [];
  try {
    for (const { item, pkg, task } of resolved) {
      // The folder name tells packages of one model apart (compress gives them all the source model's name).
      const label = path.basename(path.resolve(item.path));
      const row: CompareRow = {
        label, path: item.path, kind: pkg.kind, task, precision: recipeName(pkg), modelBytes: await modelBytes(pkg),
        latencyMs: {}, latencyErrors: [], accuracy: { task: 'none' }, peakRssBytes: {},
      };
      const shapes = latencyShapes(pkg, task, task ? sets.get(task) : undefined);
      const measured = new Map<LatencyEngine, MeasureResult>();
      for (const engineName of options.engines) {
        progress(`${label}: latency on ${engineName}`);
        try {
          const result = await measureInChild(engineName, pkg.modelPath, shapes, options.runs, 30 * 60_000);
          measured.set(engineName, result);
          row.latencyMs[engineName] = median(result.times);
          row.peakRssBytes[engineName] = result.peakRssBytes;
          if (engineName === 'edgerun' && result.plan) {
            row.gpuBytes = result.plan.activationBytes + result.plan.constantBytes;
            row.adapter = result.adapter;
          }
        } catch (error) {
          row.latencyErrors.push(`${engineName}: ${(error as Error).message.split('\n').slice(0, 2).join(' ')}`);
        }
      }
      const ours = measured.get('edgerun');
      const reference = measured.get('ort-node');
      if (ours && reference) row.agreement = outputAgreement(ours, reference);
      if (task) {
        progress(`${label}: accuracy on the ${task} test set (${options.accuracyEngine})`);
        row.accuracy = await evaluateTask(task, pkg.modelPath, sets.get(task)!, engine, (done, total) => {
          if (done % 50 === 0 || done === total) progress(`${label}: ${done}/${total}`);
        });
      } else if (pkg.eval) {
        progress(`${label}: agreement with the package eval set`);
        const session = await engine.load(pkg.modelPath);
        try {
          const gate = await runGate(session, pkg.eval);
          row.accuracy = { task: 'agreement', fraction: gate.fraction, cases: gate.cases };
        } finally {
          await session.close();
        }
      }
      rows.push(row);
    }
  } finally {
    await engine.close();
  }
  for (const row of rows) {
    const baseline = rows.find((r) => r.kind === 'bare' && r.task === row.task && r.task !== undefined);
    if (!baseline) continue;
    row.sizeRatio = baseline.modelBytes / row.modelBytes;
    const base = primaryPoints(baseline.accuracy);
    const mine = primaryPoints(row.accuracy);
    if (base.length > 0 && base.length === mine.length) row.deltaPoints = mine.map((v, i) => v - base[i]);
  }
  return rows;
}

export function assertLatencyEngines(list: string): LatencyEngine[] {
  const engines = list.split(',').filter((e) => e.length > 0);
  for (const engine of engines) {
    if (engine !== 'edgerun' && engine !== 'ort-node') {
      throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun bench --compare: unknown engine '${engine}' (edgerun, ort-node)`, { command: 'bench', engine });
    }
  }
  return engines as LatencyEngine[];
}
