/**
 * `edgerun compress` end to end on small models: every built-in recipe writes a package that readPackage
 * accepts, whose model.onnx onnxruntime-node runs within stated bounds of FP32 and reproduces the eval set's
 * reference outputs (so the daemon's gate passes); bad inputs fail with coded errors and leave nothing behind.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { OrtModel } from '../../daemon/compress/ort-runner.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { readPackage } from '../../daemon/package/read-package.ts';
import { agreement, combineAgreement } from '../../daemon/telemetry/agreement.ts';
import { encodeNpy } from '../../daemon/util/npy.ts';
import { convNetModel, mlpModel, writeSamples } from '../compress/helpers/models.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-compress-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const convModel = path.join(dir, 'convnet.onnx');
await fs.writeFile(convModel, convNetModel());
const calib = await writeSamples(path.join(dir, 'calib'), [1, 8, 10, 10], 8, 100);

/**
 * Runs model.onnx on every eval case and measures agreement with the reference outputs, as the daemon's gate does:
 * with onnxruntime's optimizations (the daemon's CPU engine) or without (the exact ONNX semantics a runtime that
 * dequantizes exactly computes).
 */
async function gateAgreement(pkgDir: string, optimization: 'all' | 'disabled' = 'all'): Promise<number> {
  const pkg = await readPackage(pkgDir);
  const session = await OrtModel.open(new Uint8Array(await fs.readFile(pkg.modelPath)), 'test', optimization);
  const results = [];
  try {
    for (const c of pkg.eval!.cases) {
      const outputs = await session.run(Object.fromEntries(c.inputs) as Record<string, Tensor>);
      for (const [name, reference] of c.outputs) {
        results.push(agreement(outputs[name]!, reference, pkg.eval!.metric, { tolerance: pkg.eval!.tolerance }));
      }
    }
  } finally {
    await session.close();
  }
  return combineAgreement(results).fraction;
}

/**
 * Relative L2 error vs FP32 each recipe must stay within on this model: about 3-4x the measured values (fp16 2.4e-4,
 * int8 3.1e-3, int8-rtn 4.8e-3, int4 2.8e-3, int4-rtn 4.6e-2, mixed 6.0e-3, w8a8-static 3.3e-3).
 */
const BOUNDS: Record<string, number> = {
  fp16: 1e-3, int8: 0.012, 'int8-rtn': 0.02, int4: 0.012, 'int4-rtn': 0.15, mixed: 0.025, 'w8a8-static': 0.012, 'w8a8-dynamic': 0.012,
};

for (const [recipe, bound] of Object.entries(BOUNDS)) {
  t.test(`recipe ${recipe}: a valid package onnxruntime runs within ${bound} of FP32, and its eval set passes the gate`, async (t) => {
    const out = path.join(dir, `pkg-${recipe}`);
    const { code, err, out: stdout } = await edgerun('compress', convModel, '--recipe', recipe, '--calib', calib, '--out', out, '--json');
    t.equal(code, 0, err);
    const summary = JSON.parse(stdout) as { outputError: { relativeL2: number }; sizes: { ratio: number } };
    t.ok(summary.outputError.relativeL2 < bound, `relative L2 ${summary.outputError.relativeL2} < ${bound}`);
    const pkg = await readPackage(out);
    t.equal(pkg.manifest!.format, 'edgerun-package/1');
    t.equal((pkg.manifest!.recipe as { name: string }).name, recipe);
    t.equal(pkg.eval!.cases.length, 1, 'one calibration file of 8 held out as the eval case');
    t.equal(await gateAgreement(out), 1, 'model.onnx reproduces the eval reference outputs');
    t.ok(await gateAgreement(out, 'disabled') >= pkg.eval!.threshold, 'so does the exact (unfused) computation');
    const report = JSON.parse(await fs.readFile(path.join(out, 'report.json'), 'utf8')) as { layers: { precision: string }[] };
    t.equal(report.layers.length, 5, 'conv, depthwise, grouped, MatMul and Gemm are all in the per-layer table');
    t.ok((await fs.readFile(path.join(out, 'report.md'), 'utf8')).includes('| layer |'));
    t.same((await fs.readdir(dir)).filter((f) => f.startsWith('.')), [], 'no temp folder left next to --out');
  });
}

t.test('mixed precision under an accuracy budget: measured error within it, every layer reported with its sensitivities', async (t) => {
  const out = path.join(dir, 'pkg-accuracy');
  const { code, err } = await edgerun('compress', convModel, '--recipe', 'mixed', '--calib', calib, '--accuracy-budget', '0.004', '--out', out);
  t.equal(code, 0, err);
  const report = JSON.parse(await fs.readFile(path.join(out, 'report.json'), 'utf8')) as {
    mixed: { measuredError: number; met: boolean; budget: { accuracy: number } };
    layers: { precision: string; sensitivityInt4: number; sensitivityInt8: number }[];
  };
  t.equal(report.mixed.budget.accuracy, 0.004);
  t.ok(report.mixed.met && report.mixed.measuredError <= 0.004, `measured ${report.mixed.measuredError}`);
  t.ok(report.layers.every((l) => l.sensitivityInt4 >= 0 && l.sensitivityInt8 >= 0));
  const tight = path.join(dir, 'pkg-size');
  t.equal((await edgerun('compress', convModel, '--recipe', 'mixed', '--calib', calib, '--size-budget', '3.3x', '--out', tight)).code, 0);
  const sized = JSON.parse(await fs.readFile(path.join(tight, 'report.json'), 'utf8')) as { sizes: { ratio: number } };
  t.ok(sized.sizes.ratio >= 3.3, `ratio ${sized.sizes.ratio} meets the 3.3x budget`);
});

t.test('--target picks the recommended recipe and the manifest lists the targets the package fits', async (t) => {
  const out = path.join(dir, 'pkg-target');
  const { code, err } = await edgerun('compress', convModel, '--target', 'phone-soc', '--out', out, '--name', 'net', '--version', '2.1', '--task', 'ppocr-cls');
  t.equal(code, 0, err);
  const manifest = (await readPackage(out)).manifest!;
  t.equal((manifest.recipe as { name: string }).name, 'int8');
  t.ok(manifest.targets!.includes('phone-soc'));
  t.equal(manifest.name, 'net');
  t.equal(manifest.version, '2.1');
  t.equal(manifest.task, 'ppocr-cls');
  t.equal(manifest.eval!.metric, 'argmax');
});

t.test('INT4 without calibration warns that it is round-to-nearest', async (t) => {
  const { code, err } = await edgerun('compress', convModel, '--recipe', 'int4', '--out', path.join(dir, 'pkg-int4-uncalibrated'));
  t.equal(code, 0, err);
  t.match(err, /warning: INT4 without --calib is round-to-nearest/);
  t.match(await fs.readFile(path.join(dir, 'pkg-int4-uncalibrated', 'report.md'), 'utf8'), /Warning:\*\* INT4 without --calib/);
});

t.test('a recipe file with MatMulNBits on a dynamic-batch model: eval cases from --eval, batches split', async (t) => {
  const model = path.join(dir, 'mlp.onnx');
  await fs.writeFile(model, mlpModel());
  const recipe = path.join(dir, 'nbits.yaml');
  await fs.writeFile(recipe, 'name: nbits\nsteps:\n  - quantize-weights: { bits: 4, group: 64, format: matmulnbits, int8-layers: [] }\n');
  const evalDir = await writeSamples(path.join(dir, 'mlp-eval'), [2, 4, 64], 2, 300);
  const out = path.join(dir, 'pkg-nbits');
  const { code, err } = await edgerun('compress', model, '--recipe', recipe, '--eval', evalDir, '--out', out);
  t.equal(code, 0, err);
  const onnx = await fs.readFile(path.join(out, 'model.onnx'));
  t.ok(onnx.includes(Buffer.from('MatMulNBits')), 'the MatMuls became com.microsoft MatMulNBits');
  t.equal(await gateAgreement(out), 1);
  t.equal((await readPackage(out)).eval!.cases.length, 4, 'two files of batch 2 split into four cases');
});

t.test('an existing non-empty --out is refused without --force and replaced with it', async (t) => {
  const out = path.join(dir, 'existing');
  await fs.mkdir(out);
  await fs.writeFile(path.join(out, 'keep.txt'), 'old');
  const refused = await edgerun('compress', convModel, '--recipe', 'fp16', '--out', out);
  t.equal(refused.code, 1);
  t.match(refused.err, /EDGERUN_ERR_IO: .*existing: exists and is not empty; pass --force/);
  t.same(await fs.readdir(out), ['keep.txt']);
  const forced = await edgerun('compress', convModel, '--recipe', 'fp16', '--out', out, '--force');
  t.equal(forced.code, 0, forced.err);
  t.notOk((await fs.readdir(out)).includes('keep.txt'));
  t.same((await fs.readdir(dir)).filter((f) => f.startsWith('.')), []);
});

t.test('an unwritable --out parent is EDGERUN_ERR_IO and leaves nothing behind', async (t) => {
  const file = path.join(dir, 'a-file');
  await fs.writeFile(file, 'x');
  const { code, err } = await edgerun('compress', convModel, '--recipe', 'fp16', '--out', path.join(file, 'pkg'));
  t.equal(code, 1);
  t.match(err, /EDGERUN_ERR_IO/);
});

t.test('bad recipes, targets and calibration data fail with coded errors naming the item, writing nothing', async (t) => {
  const out = path.join(dir, 'never');
  const cases: [string[], RegExp][] = [
    [['--recipe', 'int3'], /EDGERUN_ERR_RECIPE: unknown recipe 'int3'; built-in recipes: fp16, int8, int8-rtn, int4, int4-rtn, mixed, w8a8-static, w8a8-dynamic/],
    [['--target', 'toaster'], /EDGERUN_ERR_TARGET: target 'toaster': is not a known profile; built-in targets: edge-server-dgpu/],
    [['--recipe', 'mixed', '--size-budget', '0.2'], /EDGERUN_ERR_CALIBRATION: mixed precision measures layer sensitivity/],
    [['--recipe', 'int8', '--size-budget', '0.2'], /EDGERUN_ERR_CLI_USAGE: .*need a recipe with mixed precision/],
  ];
  const bad = path.join(dir, 'bad-recipe.yaml');
  await fs.writeFile(bad, 'steps:\n  - quantize-weights: { bits: 4, grup: 64 }\n');
  cases.push([['--recipe', bad], /EDGERUN_ERR_RECIPE: recipe .*bad-recipe.yaml: 'steps\[0\]\.quantize-weights\.grup' is not a known field/]);
  const unknownStep = path.join(dir, 'unknown-step.yaml');
  await fs.writeFile(unknownStep, 'steps:\n  - prune: {}\n');
  cases.push([['--recipe', unknownStep], /EDGERUN_ERR_RECIPE: .*unknown step 'prune' at steps\[0\]/]);

  const wrongShape = await writeSamples(path.join(dir, 'calib-shape'), [1, 8, 12, 10], 1, 1);
  cases.push([['--recipe', 'int8', '--calib', wrongShape], /EDGERUN_ERR_CALIBRATION: calibration .*s00\.npy: has shape \(1, 8, 12, 10\) but model input 'x' needs dim 2 = 10/]);
  const empty = path.join(dir, 'calib-empty');
  await fs.mkdir(empty);
  cases.push([['--recipe', 'int8', '--calib', empty], /EDGERUN_ERR_CALIBRATION: calibration .*calib-empty: holds no \.npy files/]);
  const nan = path.join(dir, 'calib-nan');
  await fs.mkdir(nan);
  const data = new Float32Array(800);
  data[17] = Number.NaN;
  await fs.writeFile(path.join(nan, 'bad.npy'), encodeNpy({ dtype: 'float32', dims: [1, 8, 10, 10], data }));
  cases.push([['--recipe', 'int8', '--calib', nan], /EDGERUN_ERR_CALIBRATION: calibration .*bad\.npy: holds NaN at flat index 17/]);
  const wrongType = path.join(dir, 'calib-int');
  await fs.mkdir(wrongType);
  await fs.writeFile(path.join(wrongType, 'int.npy'), encodeNpy({ dtype: 'int32', dims: [1, 8, 10, 10], data: new Int32Array(800) }));
  cases.push([['--recipe', 'int8', '--calib', wrongType], /EDGERUN_ERR_CALIBRATION: calibration .*int\.npy: holds int32 but model input 'x' is float32/]);

  for (const [args, pattern] of cases) {
    const { code, err } = await edgerun('compress', convModel, ...args, '--out', out);
    t.not(code, 0, args.join(' '));
    t.match(err, pattern, args.join(' '));
  }
  await t.rejects(fs.stat(out), 'nothing was written at --out');
  t.same((await fs.readdir(dir)).filter((f) => f.startsWith('.')), []);
});
