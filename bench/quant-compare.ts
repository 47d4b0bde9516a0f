/**
 * Compresses the PaddleOCR rec and det models with every built-in recipe (round-to-nearest next to the
 * calibrated methods), then compares them with the FP32 models and writes the table to docs/BENCHMARKS.md:
 *   node --import tsx bench/make-evalsets.ts            # once: calibration and test sets in tmp/evalsets
 *   node --import tsx bench/quant-compare.ts [--tasks rec,det] [--recipes fp16,int8-rtn,…] [--runs N]
 *        [--engines edgerun,ort-node] [--evalsets DIR] [--out tmp/quant] [--reuse] [--write-docs]
 * --reuse keeps packages already in --out (compression of the calibrated recipes takes minutes). The rows are saved
 * as --out/compare-TASKS.json; `--from-rows A.json,B.json [--write-docs]` prints (and writes) one table from saved
 * rows, so rec and det can be measured in separate runs.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { main as edgerun } from '../daemon/cli/main.ts';
import type { EvalTask } from '../daemon/evalsets/generate.ts';
import { compareSection, compareTable, writeDocsSection } from './quant-report.ts';
import { assertLatencyEngines, compareModels, type CompareItem, type CompareRow } from './quant-table.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const ASSETS = path.join(ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
const MODELS: Record<string, { task: EvalTask; file: string }> = {
  rec: { task: 'ppocr-rec', file: 'ch_PP-OCRv4_rec_infer.onnx' },
  det: { task: 'ppocr-det', file: 'ch_PP-OCRv4_det_infer.onnx' },
  cls: { task: 'ppocr-cls', file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx' },
};
const DEFAULT_RECIPES = ['fp16', 'int8-rtn', 'int8', 'int4-rtn', 'int4', 'mixed'];

function log(message: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function exists(filePath: string): Promise<boolean> {
  return fs.access(filePath).then(() => true, () => false);
}

async function compress(model: string, recipe: string, task: EvalTask, calib: string, out: string): Promise<void> {
  let errors = '';
  const code = await edgerun(['compress', model, '--recipe', recipe, '--task', task, '--calib', calib, '--out', out, '--force'], {
    stdout: { write: (chunk: string) => { log(chunk.trimEnd()); return true; } } as unknown as NodeJS.WritableStream,
    stderr: { write: (chunk: string) => { errors += chunk; return true; } } as unknown as NodeJS.WritableStream,
  });
  if (code !== 0) throw new Error(`edgerun compress ${path.basename(model)} --recipe ${recipe} failed (${code}): ${errors.trim().split('\n').slice(-3).join(' ')}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: 'rec,det' }, recipes: { type: 'string', default: DEFAULT_RECIPES.join(',') },
      runs: { type: 'string', default: '10' }, engines: { type: 'string', default: 'edgerun,ort-node' },
      evalsets: { type: 'string', default: path.join(ROOT, 'tmp', 'evalsets') }, out: { type: 'string', default: path.join(ROOT, 'tmp', 'quant') },
      reuse: { type: 'boolean' }, 'write-docs': { type: 'boolean' }, docs: { type: 'string', default: path.join(ROOT, 'docs', 'BENCHMARKS.md') },
      'from-rows': { type: 'string' },
    },
  });
  const command = `node --import tsx bench/quant-compare.ts --tasks ${values.tasks} --recipes ${values.recipes} --runs ${values.runs} --engines ${values.engines}`;
  if (values['from-rows']) {
    const rows: CompareRow[] = [];
    for (const file of values['from-rows'].split(',')) rows.push(...(JSON.parse(await fs.readFile(file, 'utf8')) as CompareRow[]).map((row) => ({ ...row, label: path.basename(row.path) })));
    process.stdout.write(`${compareTable(rows)}\n`);
    if (values['write-docs']) await writeDocsSection(values.docs, compareSection(rows, command));
    return;
  }
  const engines = assertLatencyEngines(values.engines);
  const items: CompareItem[] = [];
  const failures: string[] = [];
  for (const key of values.tasks.split(',')) {
    const spec = MODELS[key];
    if (!spec) throw new Error(`unknown task '${key}' (${Object.keys(MODELS).join(', ')})`);
    const model = path.join(ASSETS, spec.file);
    const calib = path.join(values.evalsets, 'calib', key);
    if (!(await exists(calib))) throw new Error(`${calib} is missing: run node --import tsx bench/make-evalsets.ts first`);
    items.push({ path: model, task: spec.task });
    for (const recipe of values.recipes.split(',')) {
      const out = path.join(values.out, `${key}-${recipe}`);
      if (!(values.reuse && (await exists(path.join(out, 'manifest.json'))))) {
        log(`compress ${key} --recipe ${recipe}`);
        const started = performance.now();
        try {
          await compress(model, recipe, spec.task, calib, out);
        } catch (error) {
          failures.push((error as Error).message);
          log((error as Error).message);
          continue;
        }
        log(`compressed ${key} ${recipe} in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      }
      items.push({ path: out });
    }
  }
  const rows = await compareModels({
    items, evalsetsDir: values.evalsets, runs: Number(values.runs), engines, accuracyEngine: 'ort-node', onProgress: log,
  });
  await fs.writeFile(path.join(values.out, `compare-${values.tasks.replace(/,/g, '-')}.json`), `${JSON.stringify(rows, null, 2)}\n`);
  process.stdout.write(`${compareTable(rows)}\n`);
  if (failures.length > 0) process.stdout.write(`\nNot compressed:\n${failures.map((f) => `- ${f}`).join('\n')}\n`);
  if (values['write-docs']) {
    await writeDocsSection(values.docs, compareSection(rows, command));
    log(`wrote the compression section of ${values.docs}`);
  }
}

main().then(() => process.exit(0), (error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
