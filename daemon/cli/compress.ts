/**
 * `edgerun compress MODEL --recipe NAME|FILE [--calib DIR] [--eval DIR] [--target PROFILE] [--task T] [--name N]
 *  [--version V] [--size-budget X] [--accuracy-budget X] --out PKGDIR [--force] [--json]`
 */
import { EdgerunError } from '../errors.ts';
import { streamProgress } from '../compress/progress.ts';
import { BUILTIN_RECIPES } from '../compress/recipes.ts';
import { runCompress, TASKS, type Task } from '../compress/run-compress.ts';
import { parseCommandArgs } from './args.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun compress MODEL.onnx --recipe NAME|FILE [--calib DIR] [--eval DIR] [--target PROFILE]
                       [--task ${TASKS.join('|')}] [--name N] [--version V]
                       [--size-budget BYTES|RATIO|Nx] [--accuracy-budget ERR] --out PKGDIR [--force] [--json]

Compresses a model into a package (docs/PACKAGE.md, docs/COMPRESSION.md): model.onnx (standard ONNX, opset 21),
manifest.json, an eval set with onnxruntime's reference outputs, report.json and report.md.

  --recipe      built-in: ${Object.keys(BUILTIN_RECIPES).join(', ')}; or a recipe file (.yaml/.json)
  --calib DIR   calibration .npy files (a subfolder per input for multi-input models); drives GPTQ, clipping
                search, bias correction, mixed precision and static activation ranges
  --eval DIR    eval inputs (same layout); default: held-out calibration files, else seeded random inputs
  --target      device profile (targets/*.json, or a file); picks the recipe when --recipe is absent
  --size-budget mixed precision: bytes (e.g. 2000000), a fraction of the FP32 file (0.2) or a ratio (5x)
  --accuracy-budget mixed precision: max relative output error vs FP32 on calibration samples (e.g. 0.05)
  --force       replace an existing non-empty --out
`;

function parseSizeBudget(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?)(x)?$/i.exec(text.trim());
  const value = match ? Number(match[1]) : NaN;
  if (!match || !(value > 0) || (match[2] && value <= 1)) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --size-budget '${text}' must be bytes, a fraction in (0, 1] or a ratio like 5x`, { command: 'compress' });
  }
  return match[2] ? 1 / value : value;
}

function parseAccuracyBudget(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --accuracy-budget '${text}' must be a positive number`, { command: 'compress' });
  }
  return value;
}

export async function compressCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('compress', args, {
    recipe: { type: 'string' },
    calib: { type: 'string' },
    eval: { type: 'string' },
    target: { type: 'string' },
    task: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    'size-budget': { type: 'string' },
    'accuracy-budget': { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: expected one MODEL argument, got ${positionals.length}`, { command: 'compress' });
  }
  if (!values.out) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', 'edgerun compress: --out PKGDIR is required', { command: 'compress' });
  if (values.task !== undefined && !(TASKS as readonly string[]).includes(values.task)) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun compress: --task must be one of ${TASKS.join(', ')}, got '${values.task}'`, { command: 'compress' });
  }
  const { report, out } = await runCompress({
    model: positionals[0]!,
    recipe: values.recipe,
    calib: values.calib,
    eval: values.eval,
    target: values.target,
    task: values.task as Task | undefined,
    name: values.name,
    version: values.version,
    sizeBudget: parseSizeBudget(values['size-budget']),
    accuracyBudget: parseAccuracyBudget(values['accuracy-budget']),
    out: values.out,
    force: values.force === true,
    progress: streamProgress(io.stderr as NodeJS.WritableStream & { isTTY?: boolean }),
  });
  for (const warning of report.warnings) io.stderr.write(`edgerun compress: warning: ${warning}\n`);
  if (values.json) {
    io.stdout.write(`${JSON.stringify({ out, name: report.name, version: report.version, recipe: report.recipe.name, sizes: report.sizes,
      precisionCounts: report.precisionCounts, outputError: report.outputError, targets: report.targets.filter((t) => t.fits).map((t) => t.target),
      timingsMs: report.timingsMs })}\n`);
  } else {
    const s = report.sizes;
    io.stdout.write(`${out}: ${report.name} ${report.version}, recipe ${String(report.recipe.name)}\n`
      + `  size ${s.originalModelBytes} → ${s.modelBytes} bytes (${s.ratio.toFixed(2)}× smaller); layers: ${Object.entries(report.precisionCounts).map(([p, n]) => `${n} ${p}`).join(', ')}\n`
      + `  output vs FP32: relative L2 ${report.outputError.relativeL2.toExponential(2)}, argmax agreement ${(report.outputError.argmaxAgreement * 100).toFixed(2)} %\n`
      + `  fits: ${report.targets.filter((t) => t.fits).map((t) => t.target).join(', ') || 'no built-in target'}; ${(report.timingsMs.total! / 1000).toFixed(1)} s\n`);
  }
  return 0;
}
