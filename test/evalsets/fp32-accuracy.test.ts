/**
 * The FP32 PaddleOCR models read the rendered sets well (onnxruntime-node on the CPU), which is the evidence that
 * rendering, preprocessing and scoring match what the models were trained on: a wrong channel order, scale or
 * dictionary offset drops character accuracy far below these bounds. On the 100-line benchmark sets the FP32 rec
 * model reads clean lines at 1.000 (docs/ACCURACY.md), so ≥ 0.9 on ten lines leaves room for one misread per line
 * from a different font rasteriser build without letting a broken pipeline pass.
 */
import path from 'node:path';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import { evaluateTask } from '../../daemon/evalsets/evaluate.ts';
import { buildEvalSets, TINY_SIZES, type EvalSetSizes, type LabelledSet } from '../../daemon/evalsets/generate.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const assets = path.resolve(import.meta.dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets');
const models = {
  'ppocr-rec': path.join(assets, 'ch_PP-OCRv4_rec_infer.onnx'),
  'ppocr-det': path.join(assets, 'ch_PP-OCRv4_det_infer.onnx'),
  'ppocr-cls': path.join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
} as const;

const sizes: EvalSetSizes = structuredClone(TINY_SIZES);
sizes.test = { rec: { clean: 20, degraded: 0 }, det: { clean: 2, degraded: 0, pageSize: 320 }, cls: 8 };
const { test } = buildEvalSets(sizes);
const setOf = <T extends LabelledSet['task']>(task: T) => test.find((s) => s.task === task) as Extract<LabelledSet, { task: T }>;

const engine = await OrtCpuEngine.create();
t.teardown(() => engine.close());

t.test('FP32 rec reads ten clean Latin lines at ≥ 0.9 character accuracy, and the Chinese ones too', async (t) => {
  const rec = setOf('ppocr-rec');
  for (const script of ['latin', 'chinese'] as const) {
    const lines = { ...rec, items: rec.items.filter((i) => i.script === script) };
    t.equal(lines.items.length, 10);
    const metrics = await evaluateTask('ppocr-rec', models['ppocr-rec'], lines, engine);
    if (metrics.task !== 'ppocr-rec') throw new Error('unreachable');
    t.ok(metrics.clean.charAccuracy >= 0.9, `${script}: char accuracy ${metrics.clean.charAccuracy.toFixed(3)}, misread ${JSON.stringify(metrics.misread)}`);
  }
});

t.test('FP32 det finds the text lines of rendered pages (hmean ≥ 0.8)', async (t) => {
  const metrics = await evaluateTask('ppocr-det', models['ppocr-det'], setOf('ppocr-det'), engine);
  if (metrics.task !== 'ppocr-det') throw new Error('unreachable');
  t.ok(metrics.clean.hmean >= 0.8, `P ${metrics.clean.precision.toFixed(3)} R ${metrics.clean.recall.toFixed(3)} hmean ${metrics.clean.hmean.toFixed(3)}`);
});

t.test('FP32 cls tells upright from 180°-rotated lines (≥ 7 of 8)', async (t) => {
  const metrics = await evaluateTask('ppocr-cls', models['ppocr-cls'], setOf('ppocr-cls'), engine);
  if (metrics.task !== 'ppocr-cls') throw new Error('unreachable');
  t.ok(metrics.accuracy >= 7 / 8, `accuracy ${metrics.accuracy}`);
});

t.test('a set of another task, or a model that does not fit the set, is an EVALSET error', async (t) => {
  await expectEdgerunError(t, evaluateTask('ppocr-rec', models['ppocr-rec'], setOf('ppocr-cls'), engine), 'EDGERUN_ERR_EVALSET', /'ppocr-rec'.*ppocr-cls set/);
  await expectEdgerunError(t, evaluateTask('ppocr-cls', models['ppocr-rec'], setOf('ppocr-cls'), engine), 'EDGERUN_ERR_EVALSET', /cls output has \d+ values/);
});
