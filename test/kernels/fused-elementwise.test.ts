import * as ort from 'onnxruntime-node';
import t from 'tap';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { makeFusedElementwiseNode } from '../../daemon/kernels/elementwise.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { ElementwiseProgram } from '../../daemon/kernels/types.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, runSingleOpOnGpu, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { difference, foldCase, type Tolerance } from '../helpers/op-compare.ts';

/** The same computation as plain ONNX nodes (one per step, literals as scalar initializers), run in onnxruntime. */
async function runProgramOnOrt(program: ElementwiseProgram, inputs: Tensor[]): Promise<Tensor> {
  const builder = new ModelBuilder({ opset: 17 });
  inputs.forEach((input, i) => builder.input(`in${i}`, input.dtype, input.dims));
  const stepTypes: DType[] = [];
  program.steps.forEach((step, index) => {
    const names = step.args.map((arg, position) => {
      if ('input' in arg) return `in${arg.input}`;
      if ('step' in arg) return `s${arg.step}`;
      const first = step.args[0];
      const dtype: DType = step.opType === 'Where'
        ? (position === 0 ? 'bool' : step.dtype)
        : 'input' in first ? inputs[first.input].dtype : 'step' in first ? stepTypes[first.step] : step.dtype;
      const name = `lit${index}_${position}`;
      builder.initializer(name, dtype, [], [arg.literal]);
      return name;
    });
    const attributes: Record<string, number | string> = {};
    if (step.opType === 'Clip') {
      for (const bound of ['min', 'max']) {
        const name = `clip${index}_${bound}`;
        builder.initializer(name, 'float32', [], [step.attributes[bound]]);
        names.push(name);
      }
    } else {
      Object.assign(attributes, step.attributes);
    }
    builder.node(step.opType, names, [`s${index}`], attributes);
    stepTypes.push(step.dtype);
  });
  builder.output(`s${program.result}`, program.steps[program.result].dtype);
  const session = await ort.InferenceSession.create(builder.toBytes());
  const feeds: Record<string, ort.Tensor> = {};
  inputs.forEach((input, i) => {
    feeds[`in${i}`] = input.dtype === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(Array.from(input.data, (v) => BigInt(v))), input.dims)
      : new ort.Tensor('float32', Float32Array.from(input.data), input.dims);
  });
  const result = (await session.run(feeds))[`s${program.result}`];
  await session.release();
  const source = Array.from(result.data as ArrayLike<number | bigint | boolean>, (v) => Number(v));
  const dtype = program.steps[program.result].dtype;
  return { dtype, dims: [...result.dims], data: dtype === 'float32' ? Float32Array.from(source) : Int32Array.from(source) };
}

function fusedCase(program: ElementwiseProgram, inputs: Tensor[]): SingleOpCase {
  const node = makeFusedElementwiseNode('fused', program, inputs.map((_, i) => `in${i}`), 'out0');
  const text = node.attributes.get('program');
  return { opType: 'FusedElementwise', domain: 'edgerun', inputs, attributes: { program: text?.type === 'string' ? text.value : '' } };
}

interface Case { name: string; program: ElementwiseProgram; inputs: Tensor[]; tolerance: Tolerance }

// exact ops except Exp/Sigmoid (a few ulp of lavapipe's exp and MLAS's logistic)
const ULPS: Tolerance = { abs: 1e-7, rel: 5e-7 };
const f = 'float32' as const;

const cases: Case[] = [
  {
    name: 'hard-swish chain x * clip(x + 3, 0, 6) / 6 reads x once',
    inputs: [randomTensor([2, 3, 8], 1, -5, 5)],
    tolerance: { abs: 0, rel: 0 },
    program: {
      steps: [
        { opType: 'Add', args: [{ input: 0 }, { literal: 3 }], attributes: {}, dtype: f },
        { opType: 'Clip', args: [{ step: 0 }], attributes: { min: 0, max: 6 }, dtype: f },
        { opType: 'Mul', args: [{ input: 0 }, { step: 1 }], attributes: {}, dtype: f },
        { opType: 'Div', args: [{ step: 2 }, { literal: 6 }], attributes: {}, dtype: f },
      ],
      result: 3,
    },
  },
  {
    name: 'bias add then SiLU with a broadcast bias (odd sizes, scalar path)',
    inputs: [randomTensor([3, 5], 2), randomTensor([5], 3)],
    tolerance: ULPS,
    program: {
      steps: [
        { opType: 'Add', args: [{ input: 0 }, { input: 1 }], attributes: {}, dtype: f },
        { opType: 'Sigmoid', args: [{ step: 0 }], attributes: {}, dtype: f },
        { opType: 'Mul', args: [{ step: 0 }, { step: 1 }], attributes: {}, dtype: f },
      ],
      result: 2,
    },
  },
  {
    name: 'attention mask: Where(mask == 0, -inf, scores) then Exp, int64 mask broadcast over heads',
    inputs: [intTensor('int64', [2, 1, 4], [1, 1, 0, 1, 0, 1, 1, 1]), randomTensor([2, 3, 4], 4)],
    tolerance: ULPS,
    program: {
      steps: [
        { opType: 'Equal', args: [{ input: 0 }, { literal: 0 }], attributes: {}, dtype: 'bool' },
        { opType: 'Where', args: [{ step: 0 }, { literal: -Infinity }, { input: 1 }], attributes: {}, dtype: f },
        { opType: 'Exp', args: [{ step: 1 }], attributes: {}, dtype: f },
      ],
      result: 2,
    },
  },
  {
    name: 'casts: float → int64, double, back to float, add the input',
    inputs: [floatTensor([6], [1.7, -1.7, 2.5, -3.5, 0, 100.9])],
    tolerance: { abs: 0, rel: 0 },
    program: {
      steps: [
        { opType: 'Cast', args: [{ input: 0 }], attributes: { to: 7 }, dtype: 'int64' },
        { opType: 'Mul', args: [{ step: 0 }, { literal: 2 }], attributes: {}, dtype: 'int64' },
        { opType: 'Cast', args: [{ step: 1 }], attributes: { to: 1 }, dtype: f },
        { opType: 'Add', args: [{ step: 2 }, { input: 0 }], attributes: {}, dtype: f },
      ],
      result: 3,
    },
  },
  {
    name: 'three inputs of three shapes, LeakyRelu and Max',
    inputs: [randomTensor([2, 1, 4], 5), randomTensor([3, 1], 6), randomTensor([4], 7)],
    tolerance: { abs: 0, rel: 0 },
    program: {
      steps: [
        { opType: 'Sub', args: [{ input: 0 }, { input: 1 }], attributes: {}, dtype: f },
        { opType: 'LeakyRelu', args: [{ step: 0 }], attributes: { alpha: 0.125 }, dtype: f },
        { opType: 'Max', args: [{ step: 1 }, { input: 2 }], attributes: {}, dtype: f },
      ],
      result: 2,
    },
  },
];

t.test('fused programs match the same chain of ONNX nodes in onnxruntime, on the GPU and folded', async (t) => {
  for (const { name, program, inputs, tolerance } of cases) {
    const expected = await runProgramOnOrt(program, inputs);
    const c = fusedCase(program, inputs);
    const [gpu] = await runSingleOpOnGpu(c);
    t.equal(difference(gpu, expected, tolerance), null, `${name} (GPU)`);
    const [folded] = foldCase(c);
    t.equal(difference(folded, expected, tolerance), null, `${name} (fold)`);
  }
});

t.test('a fused kernel reads each input once per element and runs as one program', async (t) => {
  const { programs } = await buildSingleOp(fusedCase(cases[0].program, cases[0].inputs));
  t.equal(programs.length, 1);
  t.equal(programs[0].code.match(/input0\[/g)?.length, 1, 'x is loaded once though two steps use it');
  t.same(programs[0].bindings.slice(0, 2), [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }]);
  t.same(programs[0].bindings.slice(2).map((b) => b.kind), ['constant'], 'plus the shape params on a CPU adapter');
});

t.test('infer gives the result step dtype and the broadcast shape', async (t) => {
  const c = fusedCase(cases[2].program, cases[2].inputs);
  t.same(findOp('edgerun', 'FusedElementwise')!.infer(opContextFor(c)), [{ dtype: 'float32', shape: [2, 3, 4] }]);
});

t.test('non-finite literals survive the program attribute; plain JSON.stringify output is rejected, not misread', async (t) => {
  const node = makeFusedElementwiseNode('n', cases[2].program, ['a', 'b'], 'y');
  t.equal(node.domain, 'edgerun');
  t.equal(node.opType, 'FusedElementwise');
  const text = node.attributes.get('program');
  t.match(text?.type === 'string' ? text.value : '', /"-Infinity"/);
  const lossy: SingleOpCase = { ...fusedCase(cases[2].program, cases[2].inputs), attributes: { program: JSON.stringify(cases[2].program) } };
  t.throws(() => findOp('edgerun', 'FusedElementwise')!.infer(opContextFor(lossy)), { code: 'EDGERUN_ERR_ONNX_INVALID' });
});

const badPrograms: [string, string, number][] = [
  ['not JSON', '{', 1],
  ['no steps', JSON.stringify({ steps: [], result: 0 }), 1],
  ['unknown op', JSON.stringify({ steps: [{ opType: 'Frobnicate', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 0 }), 1],
  ['reference to a later step', JSON.stringify({ steps: [{ opType: 'Relu', args: [{ step: 0 }], attributes: {}, dtype: 'float32' }], result: 0 }), 1],
  ['input out of range', JSON.stringify({ steps: [{ opType: 'Relu', args: [{ input: 2 }], attributes: {}, dtype: 'float32' }], result: 0 }), 1],
  ['result out of range', JSON.stringify({ steps: [{ opType: 'Relu', args: [{ input: 0 }], attributes: {}, dtype: 'float32' }], result: 1 }), 1],
  ['bad dtype', JSON.stringify({ steps: [{ opType: 'Relu', args: [{ input: 0 }], attributes: {}, dtype: 'float99' }], result: 0 }), 1],
];

t.test('malformed programs are rejected with EDGERUN_ERR_ONNX_INVALID naming the node', async (t) => {
  for (const [name, program, inputCount] of badPrograms) {
    const c: SingleOpCase = { opType: 'FusedElementwise', domain: 'edgerun', inputs: Array.from({ length: inputCount }, (_, i) => randomTensor([2], i)), attributes: { program } };
    t.throws(() => findOp('edgerun', 'FusedElementwise')!.infer(opContextFor(c)), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /fusedelementwise_under_test/ }, name);
  }
  const incompatible: SingleOpCase = {
    opType: 'FusedElementwise', domain: 'edgerun', inputs: [randomTensor([2], 1), randomTensor([3], 2)],
    attributes: { program: JSON.stringify({ steps: [{ opType: 'Add', args: [{ input: 0 }, { input: 1 }], attributes: {}, dtype: 'float32' }], result: 0 }) },
  };
  t.throws(() => findOp('edgerun', 'FusedElementwise')!.infer(opContextFor(incompatible)), { code: 'EDGERUN_ERR_SHAPE' });
});
