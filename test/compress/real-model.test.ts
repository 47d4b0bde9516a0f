/**
 * One real model end to end: the PaddleOCR direction classifier (opset 9, Constant-node weights, 35 BatchNorms)
 * compressed with the calibrated INT8 recipe on a tiny calibration set.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { silentProgress } from '../../daemon/compress/progress.ts';
import { runCompress } from '../../daemon/compress/run-compress.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { readPackage } from '../../daemon/package/read-package.ts';
import { writeSamples } from './helpers/models.ts';

const clsModel = path.resolve(import.meta.dirname, '..', '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

t.test('the PaddleOCR classifier compresses to a valid INT8 package over 3x smaller (3.16x measured: in a 0.58 MB model float32 biases, scales and graph weigh more) that agrees with FP32', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-real-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const calib = await writeSamples(path.join(dir, 'calib'), [1, 3, 48, 192], 3, 500);
  const out = path.join(dir, 'cls-int8');
  const { report } = await runCompress({ model: clsModel, recipe: 'int8', calib, task: 'ppocr-cls', out, force: false, progress: silentProgress });
  t.equal(report.foldedBatchNorms, 35);
  t.equal(report.opsetUpgrade.fromOpset, 9);
  t.equal(report.layers.length, 54, '53 convs and the classifier MatMul');
  t.ok(report.layers.every((l) => l.precision === 'int8'));
  t.ok(report.layers.some((l) => l.method === 'gptq' || l.method === 'clip'), 'calibration-driven methods won on some layers');
  t.ok(report.sizes.ratio > 3, `ratio ${report.sizes.ratio}`);
  t.ok(report.outputError.relativeL2 < 0.05, `relative L2 ${report.outputError.relativeL2}`);
  const pkg = await readPackage(out);
  t.equal(pkg.manifest!.task, 'ppocr-cls');
  t.equal(pkg.eval!.metric, 'argmax');
  t.equal(pkg.eval!.cases.length, 3, 'three seeded random eval inputs (too few calibration files to hold any out)');
  const model = decodeModel(new Uint8Array(await fs.readFile(pkg.modelPath)));
  t.equal(model.opsets.get(''), 21, 'edgerun decodes the compressed model');
});
