/**
 * Recipe files and target profiles: what they parse to, and the coded errors that name the file, step, profile
 * and field when they are wrong. Bit allocation meets size and accuracy budgets by the cheapest error.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { allocateBits, type LayerOption } from '../../daemon/compress/bit-allocation.ts';
import { parseRecipe } from '../../daemon/compress/recipe-file.ts';
import { builtinRecipe, BUILTIN_RECIPES, describeRecipe } from '../../daemon/compress/recipes.ts';
import { builtinTargetNames, checkFit, loadBuiltinTargets, loadTarget, parseTarget } from '../../daemon/compress/targets.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

t.test('a recipe file composes steps in any order and fills defaults', async (t) => {
  const recipe = parseRecipe(`name: ocr\nsteps:\n  - quantize-activations: { mode: static, observer: entropy }\n  - quantize-weights: { bits: 8, scheme: asymmetric }\n  - bias-correction: {}\n`, 'ocr.yaml');
  t.equal(recipe.name, 'ocr');
  t.same(recipe.weights, { bits: 8, scheme: 'asymmetric', group: 32, method: 'auto', format: 'dq', int8Layers: [] });
  t.same(recipe.activations, { mode: 'static', observer: 'entropy', percentile: 99.99 });
  t.ok(recipe.biasCorrection);
  const json = parseRecipe('{"steps":[{"quantize-weights":{"bits":4,"group":128}},{"mixed-precision":{"accuracy-budget":0.05}}]}', 'dir/mix.json');
  t.equal(json.name, 'mix');
  t.same(json.weights.int8Layers, ['depthwise', 'first', 'last'], 'INT4 keeps depthwise, first and last layers at 8 bits by default');
  t.same(json.mixed, { candidates: [4, 8, 16], sizeBudget: undefined, accuracyBudget: 0.05, samples: 4 });
});

t.test('every built-in recipe, as the manifest records it, is a recipe file that runs the same recipe', async (t) => {
  for (const [name, recipe] of Object.entries(BUILTIN_RECIPES)) {
    t.same(parseRecipe(JSON.stringify(describeRecipe(recipe)), `${name}.json`), recipe, name);
  }
});

t.test('bad recipe files name the file, step and field', async (t) => {
  const bad: [string, RegExp][] = [
    ['steps:\n  - quantize-weights: { bits: 3 }\n', /'steps\[0\]\.quantize-weights\.bits' must be one of 4, 8, 16/],
    ['steps:\n  - quantize-weights: {}\n', /'steps\[0\]\.quantize-weights\.bits' is required/],
    ['steps: []\n', /'steps' must NOT have fewer than 1 items/],
    ['steps:\n  - quantize-weights: { bits: 8 }\nextra: 1\n', /'extra' is not a known field/],
    ['steps:\n  - quantize-weights: { bits: 8 }\n  - quantize-weights: { bits: 4 }\n', /step 'quantize-weights' is given twice/],
    ['steps:\n  - quantize-weights: { bits: 4 }\n  - quantize-activations: { mode: dynamic }\n', /'quantize-activations' needs 'quantize-weights' bits 8/],
    ['steps: [ {', /is not valid YAML/],
  ];
  for (const [text, pattern] of bad) {
    await expectEdgerunError(t, () => parseRecipe(text, 'r.yaml'), 'EDGERUN_ERR_RECIPE', /^recipe r\.yaml: /, pattern);
  }
  await expectEdgerunError(t, () => builtinRecipe('int2'), 'EDGERUN_ERR_RECIPE', /unknown recipe 'int2'; built-in recipes: fp16, int8/);
  t.ok(Object.keys(BUILTIN_RECIPES).length >= 8);
});

t.test('the built-in targets load, recommend built-in recipes, and the fit check applies size and memory budgets', async (t) => {
  t.same(await builtinTargetNames(), ['edge-server-dgpu', 'edge-server-igpu', 'jetson-orin', 'phone-soc', 'vehicle-sa8155p']);
  for (const target of await loadBuiltinTargets()) t.ok(BUILTIN_RECIPES[target.recommendedRecipe], `${target.name} recommends ${target.recommendedRecipe}`);
  const phone = await loadTarget('phone-soc');
  t.equal(phone.maxModelBytes, 100_000_000);
  t.same(checkFit(phone, { modelBytes: 3_000_000, usesFp16: false }), { target: 'phone-soc', fits: true, notes: [] });
  const tooBig = checkFit(phone, { modelBytes: 150_000_000, usesFp16: false });
  t.notOk(tooBig.fits);
  t.match(tooBig.notes[0], /maxModelBytes 100000000/);
});

t.test('unknown and invalid targets name the profile and field', async (t) => {
  await expectEdgerunError(t, loadTarget('toaster'), 'EDGERUN_ERR_TARGET', /target 'toaster': is not a known profile; built-in targets: edge-server-dgpu, edge-server-igpu, jetson-orin, phone-soc, vehicle-sa8155p/);
  const phone = JSON.parse(await fs.readFile(path.join(import.meta.dirname, '../../targets/phone-soc.json'), 'utf8')) as Record<string, unknown>;
  await expectEdgerunError(t, () => parseTarget(JSON.stringify({ ...phone, maxModelBytes: -1 }), 'mine'), 'EDGERUN_ERR_TARGET', /target 'mine': field 'maxModelBytes' must be >= 1/);
  await expectEdgerunError(t, () => parseTarget(JSON.stringify({ ...phone, npu: true }), 'mine'), 'EDGERUN_ERR_TARGET', /field 'npu' is not a known field/);
  const { guide: _guide, ...noGuide } = phone;
  await expectEdgerunError(t, () => parseTarget(JSON.stringify(noGuide), 'mine'), 'EDGERUN_ERR_TARGET', /field 'guide' is required/);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-target-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'custom.json');
  await fs.writeFile(file, JSON.stringify({ ...phone, name: 'custom' }));
  t.equal((await loadTarget(file)).name, 'custom', 'a profile file given by path loads');
});

t.test('bit allocation: cheapest error per byte under a size budget; fewest bytes meeting an accuracy budget', async (t) => {
  const layer = (e4: number, e8: number, params: number): LayerOption[] => [
    { bits: 4, bytes: params / 2, error: e4 }, { bits: 8, bytes: params, error: e8 }, { bits: 16, bytes: params * 2, error: 0 },
  ];
  const options = [layer(0.2, 0.01, 1000), layer(0.02, 0.001, 1000), layer(0.05, 0.002, 100)];
  const sized = allocateBits({ options, fixedBytes: 100, sizeBudget: 100 + 1000 + 500 + 100 });
  t.same(sized.chosen.map((o) => o.bits), [8, 4, 8], 'the sensitive big layer and the cheap small one get 8 bits');
  t.ok(sized.met && sized.totalBytes <= 1700);
  const accurate = allocateBits({ options, fixedBytes: 0, accuracyBudget: 0.03 });
  t.ok(accurate.met);
  t.ok(accurate.combinedError <= 0.03);
  t.same(accurate.chosen.map((o) => o.bits), [8, 4, 8]);
  const impossible = allocateBits({ options, fixedBytes: 0, sizeBudget: 10 });
  t.notOk(impossible.met);
  t.same(impossible.chosen.map((o) => o.bits), [4, 4, 4]);
});
