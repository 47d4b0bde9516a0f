import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { compareTensors, opContextFor, randomTensor, runSingleOpOnGpu, runSingleOpOnOrt, type AttrInput, type SingleOpCase } from '../helpers/kernel-harness.ts';

interface NormCase {
  name: string;
  x: number[];
  params?: number[];
  attributes?: Record<string, AttrInput>;
  opset?: number;
  constantParams?: boolean;
}

const cases: NormCase[] = [
  { name: 'PaddleOCR opset 9, constant parameters', x: [1, 16, 6, 8], attributes: { epsilon: 9.999999747378752e-6, momentum: 0.9 }, opset: 9, constantParams: true },
  { name: 'odd spatial size (scalar path)', x: [2, 5, 3, 3], constantParams: true },
  { name: 'non-constant parameters (GPU folding)', x: [1, 7, 4, 4], attributes: { epsilon: 1e-3 }, constantParams: false },
  { name: 'rank 2 input (N, C)', x: [3, 6], constantParams: true },
  { name: 'rank 3 input', x: [2, 4, 10], constantParams: false },
  { name: 'two vec4 per invocation', x: [2, 3, 2, 12], constantParams: true },
  { name: 'opset 15 with training_mode 0', x: [1, 3, 4, 5], attributes: { training_mode: 0 }, opset: 15, constantParams: true },
  { name: 'opset 7 spatial=0 (per-position parameters)', x: [2, 3, 2, 2], params: [3, 2, 2], attributes: { spatial: 0 }, opset: 7, constantParams: true },
];

function makeCase(c: NormCase, seed: number): SingleOpCase {
  const p = c.params ?? [c.x[1]];
  const inputs: Tensor[] = [
    randomTensor(c.x, seed, -3, 3),
    randomTensor(p, seed + 1, 0.5, 1.5),
    randomTensor(p, seed + 2, -1, 1),
    randomTensor(p, seed + 3, -0.5, 0.5),
    randomTensor(p, seed + 4, 0.1, 2),
  ];
  return { opType: 'BatchNormalization', opset: c.opset ?? 14, inputs, attributes: c.attributes, constantInputs: c.constantParams ? [1, 2, 3, 4] : [] };
}

t.test('BatchNormalization matches onnxruntime', async (t) => {
  let seed = 40;
  for (const c of cases) {
    seed += 7;
    const single = makeCase(c, seed);
    const [gpu] = await runSingleOpOnGpu(single);
    const [expected] = await runSingleOpOnOrt(single, ['float32']);
    const diff = compareTensors(gpu, expected);
    t.equal(diff.mismatch, undefined, `${c.name}: shape`);
    // one multiply-add after folding: a few ulps of |y| (≤ ~6 here), i.e. well under 1e-5
    t.ok(diff.maxAbs <= 1e-5, `${c.name}: max |diff| ${diff.maxAbs.toExponential(2)}`);
  }
});

t.test('BatchNormalization infer rejects unsupported and bad inputs', async (t) => {
  const op = findOp('', 'BatchNormalization')!;
  const base = makeCase({ name: '', x: [1, 3, 2, 2] }, 1);
  const bad: { name: string; c: SingleOpCase; code: string }[] = [
    { name: 'training_mode 1', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { ...base, opset: 15, attributes: { training_mode: 1 } } },
    { name: 'training outputs requested', code: 'EDGERUN_ERR_UNSUPPORTED_OP', c: { ...base, opset: 9, outputCount: 3 } },
    { name: 'parameter of wrong length', code: 'EDGERUN_ERR_SHAPE', c: { ...base, inputs: [base.inputs[0], randomTensor([4], 2), ...base.inputs.slice(2)] } },
    { name: 'rank 1 input', code: 'EDGERUN_ERR_SHAPE', c: { ...base, inputs: [randomTensor([3], 3), ...base.inputs.slice(1)] } },
    { name: 'missing input', code: 'EDGERUN_ERR_ONNX_INVALID', c: { ...base, inputs: base.inputs.slice(0, 3) } },
  ];
  for (const b of bad) {
    let caught: unknown;
    try { op.infer(opContextFor(b.c)); } catch (e) { caught = e; }
    t.ok(isEdgerunError(caught) && caught.code === b.code && caught.message.includes('batchnormalization_under_test'),
      `${b.name}: ${caught instanceof Error ? caught.message : 'no error'}`);
  }
});
