/** report.json and report.md of a package: sizes, the per-layer table, output error vs FP32, step timings. */
import type { CompressResult } from './compress-model.ts';
import { describeRecipe, type Recipe } from './recipes.ts';
import type { TargetFit } from './targets.ts';

export interface CompressReport {
  name: string;
  version: string;
  source: string;
  recipe: Record<string, unknown>;
  task?: string;
  sizes: { originalModelBytes: number; preparedFp32Bytes: number; modelBytes: number; ratio: number };
  opsetUpgrade: CompressResult['upgrade'];
  foldedBatchNorms: number;
  biasCorrectedLayers: number;
  layers: { name: string; op: string; dims: number[]; precision: string; format: string; method: string; bytes: number; fp32Bytes: number;
    estimatedError?: number; sensitivityInt4?: number; sensitivityInt8?: number; reason: string }[];
  precisionCounts: Record<string, number>;
  mixed?: { budget: Record<string, number | undefined>; predictedError: number; measuredError: number; met: boolean; measuredPairs: number; sensitivityMs: number };
  activations?: CompressResult['activations'];
  /** Scales and biases stored float16 (recipe storage), and the tensors kept float32 with why (names before compaction). */
  storage: CompressResult['storage'];
  outputError: CompressResult['outputError'];
  eval: { cases: number; metric: string; tolerance?: number; threshold: number };
  targets: TargetFit[];
  calibrationSamples: number;
  timingsMs: Record<string, number>;
  /** What the user should know about this run (e.g. INT4 without calibration). */
  warnings: string[];
}

export function buildReport(args: {
  name: string; version: string; source: string; recipe: Recipe; task?: string; result: CompressResult;
  eval: { metric: string; tolerance?: number; threshold: number }; targets: TargetFit[]; calibrationSamples: number;
  timingsMs: Record<string, number>; warnings: string[];
}): CompressReport {
  const { result } = args;
  const sensitivity = new Map((result.mixed?.sensitivity ?? []).map((s) => [s.layer, s]));
  const counts: Record<string, number> = {};
  for (const c of result.layers) counts[c.precision] = (counts[c.precision] ?? 0) + 1;
  return {
    name: args.name,
    version: args.version,
    source: args.source,
    recipe: describeRecipe(args.recipe),
    ...(args.task ? { task: args.task } : {}),
    sizes: {
      originalModelBytes: result.originalBytes,
      preparedFp32Bytes: result.preparedBytes,
      modelBytes: result.modelBytes.length,
      ratio: result.originalBytes / result.modelBytes.length,
    },
    opsetUpgrade: result.upgrade,
    foldedBatchNorms: result.foldedBatchNorms,
    biasCorrectedLayers: result.biasCorrected,
    storage: result.storage,
    layers: result.layers.map((c) => ({
      name: c.layer.name,
      op: c.layer.node.opType ?? '',
      dims: c.layer.dims,
      precision: c.precision,
      format: c.format.kind,
      method: c.method,
      bytes: c.bytes,
      fp32Bytes: c.layer.params * 4,
      estimatedError: c.estimatedError,
      sensitivityInt4: sensitivity.get(c.layer.name)?.int4.error,
      sensitivityInt8: sensitivity.get(c.layer.name)?.int8.error,
      reason: c.reason,
    })),
    precisionCounts: counts,
    ...(result.mixed ? {
      mixed: {
        budget: result.mixed.budget, predictedError: result.mixed.predictedError, measuredError: result.mixed.measuredError,
        met: result.mixed.met, measuredPairs: result.mixed.measuredPairs, sensitivityMs: result.mixed.sensitivityMs,
      },
    } : {}),
    ...(result.activations ? { activations: result.activations } : {}),
    outputError: result.outputError,
    eval: { cases: result.evalCases.length, ...args.eval },
    targets: args.targets,
    calibrationSamples: args.calibrationSamples,
    timingsMs: args.timingsMs,
    warnings: args.warnings,
  };
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(3)} MB`;
const num = (v: number | undefined): string => (v === undefined ? '' : v.toExponential(2));

export function reportMarkdown(r: CompressReport): string {
  const lines = [
    `# ${r.name} ${r.version}: compression report`,
    '',
    `Source: \`${r.source}\` · recipe: \`${String(r.recipe.name)}\`${r.task ? ` · task: \`${r.task}\`` : ''} · calibration samples: ${r.calibrationSamples}`,
    '',
    ...r.warnings.map((w) => `> **Warning:** ${w}\n`),
    '## Sizes',
    '',
    '| | bytes | |',
    '|---|---|---|',
    `| FP32 model (original file) | ${r.sizes.originalModelBytes} | ${mb(r.sizes.originalModelBytes)} |`,
    `| FP32 after opset ${r.opsetUpgrade.toOpset} + BN folding | ${r.sizes.preparedFp32Bytes} | ${mb(r.sizes.preparedFp32Bytes)} |`,
    `| package model.onnx | ${r.sizes.modelBytes} | ${mb(r.sizes.modelBytes)} |`,
    `| **ratio (original / package)** | **${r.sizes.ratio.toFixed(2)}×** | |`,
    '',
    `Layers: ${Object.entries(r.precisionCounts).map(([p, n]) => `${n} ${p}`).join(', ')}; BatchNorms folded: ${r.foldedBatchNorms}; bias-corrected layers: ${r.biasCorrectedLayers}; `
      + `opset ${r.opsetUpgrade.fromOpset} → ${r.opsetUpgrade.toOpset} (rewritten: ${Object.entries(r.opsetUpgrade.rewritten).map(([op, n]) => `${op} ×${n}`).join(', ') || 'none'}).`,
    '',
    `Stored as float16 + Cast: ${r.storage.halfScales} scale and ${r.storage.halfBiases} bias tensors; kept float32: `
      + `${r.storage.keptFloat32.map((k) => `${k.tensor} (${k.reason})`).join('; ') || 'none'}.`,
    '',
    '## Output error vs FP32 (onnxruntime-node, eval inputs)',
    '',
    `relative L2 ${num(r.outputError.relativeL2)} · max |Δ| ${num(r.outputError.maxAbs)} · argmax agreement ${(r.outputError.argmaxAgreement * 100).toFixed(2)} % over ${r.outputError.samples} inputs.`,
    '',
    `Eval set: ${r.eval.cases} cases, metric \`${r.eval.metric}\`${r.eval.tolerance !== undefined ? ` (tolerance ${num(r.eval.tolerance)})` : ''}, threshold ${r.eval.threshold}; `
      + 'reference outputs are onnxruntime-node\'s outputs of the compressed model.',
  ];
  if (r.mixed) {
    lines.push('', '## Mixed precision', '',
      `Budget: ${r.mixed.budget.sizeBytes !== undefined ? `size ≤ ${r.mixed.budget.sizeBytes} bytes` : ''}${r.mixed.budget.accuracy !== undefined ? ` accuracy: relative error ≤ ${r.mixed.budget.accuracy}` : ''}; `
      + `predicted error ${num(r.mixed.predictedError)}, measured ${num(r.mixed.measuredError)}; budget ${r.mixed.met ? 'met' : 'NOT met'}; `
      + `${r.mixed.measuredPairs} (layer, bits) sensitivities measured with onnxruntime in ${(r.mixed.sensitivityMs / 1000).toFixed(1)} s `
      + `(${(r.mixed.sensitivityMs / Math.max(1, r.mixed.measuredPairs)).toFixed(0)} ms each), the rest estimated from H.`);
  }
  if (r.activations) {
    lines.push('', '## Activations', '', `${r.activations.mode}${r.activations.observer ? ` (observer ${r.activations.observer})` : ''}: `
      + `${r.activations.mode === 'static' ? `${r.activations.tensors.length} tensors` : `${r.activations.layers.length} layers`} quantized.`);
  }
  lines.push('', '## Layers', '', '| layer | op | weight | precision | format | method | bytes | FP32 bytes | est. error | sens. int4 | sens. int8 | why |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const l of r.layers) {
    lines.push(`| ${l.name} | ${l.op} | [${l.dims.join('×')}] | ${l.precision} | ${l.format} | ${l.method} | ${l.bytes} | ${l.fp32Bytes} | ${num(l.estimatedError)} | ${num(l.sensitivityInt4)} | ${num(l.sensitivityInt8)} | ${l.reason} |`);
  }
  lines.push('', '## Targets', '', '| target | fits | notes |', '|---|---|---|');
  for (const t of r.targets) lines.push(`| ${t.target} | ${t.fits ? 'yes' : 'no'} | ${t.notes.join('; ')} |`);
  lines.push('', '## Timings', '', '| step | ms |', '|---|---|');
  for (const [step, ms] of Object.entries(r.timingsMs)) lines.push(`| ${step} | ${ms.toFixed(0)} |`);
  return `${lines.join('\n')}\n`;
}
