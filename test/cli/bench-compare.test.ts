/**
 * `edgerun bench --compare`: rows for a bare FP32 model, a package with a task and a package scored by its own eval
 * set; the docs section written and replaced in place; clear errors for missing or broken packages. onnxruntime-node
 * only (the WebGPU path is the same code with another engine name) and the small cls model, to stay fast.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { buildEvalSets, TINY_SIZES, type EvalSetSizes } from '../../daemon/evalsets/generate.ts';
import { writeEvalSets } from '../../daemon/evalsets/store.ts';
import { SECTION_BEGIN, SECTION_END, writeDocsSection } from '../../bench/quant-report.ts';
import type { CompareRow } from '../../bench/quant-table.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { writePackage } from '../helpers/package-builder.ts';

const clsModel = path.resolve(import.meta.dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-compare-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

const sizes: EvalSetSizes = structuredClone(TINY_SIZES);
sizes.calib = { rec: { clean: 0, degraded: 0 }, det: { clean: 0, degraded: 0, pageSize: 320 }, cls: 2 };
sizes.test = { rec: { clean: 0, degraded: 0 }, det: { clean: 0, degraded: 0, pageSize: 320 }, cls: 4 };
const evalsets = path.join(dir, 'evalsets');
await writeEvalSets(evalsets, buildEvalSets(sizes, ['ppocr-cls']), sizes);

const modelBytes = new Uint8Array(await fs.readFile(clsModel));
const withTask = await writePackage(path.join(dir, 'cls-task'), {
  name: 'cls', version: '1', model: modelBytes,
  editManifest: (m) => Object.assign(m, { task: 'ppocr-cls', recipe: { name: 'fp32-copy' } }),
});
const evalInput = { dtype: 'float32' as const, dims: [1, 3, 48, 192], data: new Float32Array(3 * 48 * 192).map((_, i) => Math.sin(i)) };
const withEval = await writePackage(path.join(dir, 'cls-eval'), { name: 'clseval', version: '2', model: modelBytes, evalInputs: [{ x: evalInput }] });

/** The CLI reports a coded error on stderr with exit status 1 (2 for usage errors). */
async function expectFailure(t: Test, args: string[], code: string, pattern: RegExp) {
  const result = await edgerun(...args);
  t.equal(result.code, code === 'EDGERUN_ERR_CLI_USAGE' ? 2 : 1, `exit status for ${code}`);
  t.match(result.err, new RegExp(`${code}: `));
  t.match(result.err, pattern);
}

const common = ['--engines', 'ort-node', '--runs', '2', '--evalsets', evalsets];

t.test('one row per model: size ratio and accuracy against the FP32 model, eval-set agreement without a task', async (t) => {
  const { code, out } = await edgerun('bench', '--compare', clsModel, withTask.dir, withEval.dir, '--task', 'ppocr-cls', '--json', ...common);
  t.equal(code, 0);
  const rows = JSON.parse(out) as CompareRow[];
  t.same(rows.map((r) => [r.kind, r.task ?? null, r.precision]), [['bare', 'ppocr-cls', 'fp32'], ['package', 'ppocr-cls', 'fp32-copy'], ['package', null, 'custom']]);
  t.equal(rows[0].modelBytes, modelBytes.length);
  t.equal(rows[1].sizeRatio, 1);
  t.same(rows[1].deltaPoints, [0], 'the same weights score the same');
  t.equal(rows[0].accuracy.task, 'ppocr-cls');
  if (rows[0].accuracy.task === 'ppocr-cls') t.equal(rows[0].accuracy.lines, 4);
  t.same(rows[2].accuracy, { task: 'agreement', fraction: 1, cases: 1 });
  for (const row of rows) {
    t.ok(row.latencyMs['ort-node']! > 0, `${row.label} has an ORT latency`);
    t.ok(row.peakRssBytes['ort-node']! > 10e6, `${row.label} has a peak RSS`);
  }
});

t.test('--write-docs puts the table in a marked section and a rerun replaces only that section', async (t) => {
  const docs = path.join(dir, 'BENCHMARKS.md');
  await fs.writeFile(docs, '# Benchmarks\n\nhand-written text\n');
  const { code, out } = await edgerun('bench', '--compare', clsModel, '--task', 'ppocr-cls', '--write-docs', '--docs', docs, ...common);
  t.equal(code, 0);
  t.match(out, /\| ch_ppocr_mobile_v2\.0_cls_infer\.onnx \| ppocr-cls \| fp32 \|/);
  const first = await fs.readFile(docs, 'utf8');
  t.ok(first.startsWith('# Benchmarks\n\nhand-written text\n'));
  t.match(first, /Command: `edgerun bench --compare .* --write-docs/);
  t.match(first, /Machine: .* cores/);
  await fs.appendFile(docs, '\n## After\n');
  await writeDocsSection(docs, `${SECTION_BEGIN}\nnew table\n${SECTION_END}`);
  const second = await fs.readFile(docs, 'utf8');
  t.equal(second.split(SECTION_BEGIN).length, 2, 'one section');
  t.match(second, /hand-written text\n[\s\S]*new table\n[\s\S]*## After\n$/);
  t.notMatch(second, /ppocr-cls \| fp32/);
});

t.test('missing packages, a package without model.onnx and bad options are errors naming them', async (t) => {
  await expectFailure(t, ['bench', '--compare', path.join(dir, 'nope'), ...common], 'EDGERUN_ERR_PACKAGE_INVALID', /nope: no such package folder or \.onnx file/);
  await fs.mkdir(path.join(dir, 'empty'));
  await expectFailure(t, ['bench', '--compare', path.join(dir, 'empty'), ...common], 'EDGERUN_ERR_PACKAGE_INVALID', /empty: is not a package: it has no manifest\.json/);
  const broken = path.join(dir, 'broken');
  await fs.cp(withTask.dir, broken, { recursive: true });
  await fs.rm(path.join(broken, 'model.onnx'));
  await expectFailure(t, ['bench', '--compare', broken, ...common], 'EDGERUN_ERR_PACKAGE_INVALID', /broken.*model\.onnx/);
  await expectFailure(t, ['bench', '--compare', clsModel, '--task', 'ppocr-table', ...common], 'EDGERUN_ERR_EVALSET', /'ppocr-table'/);
  await expectFailure(t, ['bench', '--compare', clsModel, '--task', 'ppocr-cls', '--engines', 'ort-web'], 'EDGERUN_ERR_CLI_USAGE', /'ort-web'/);
  await expectFailure(t, ['bench', '--compare', clsModel, '--task', 'ppocr-rec', ...common], 'EDGERUN_ERR_EVALSET', /rec\.json.*make-evalsets/);
  await expectFailure(t, ['bench', '--compare'], 'EDGERUN_ERR_CLI_USAGE', /at least one/);
});
