/**
 * Constant folding through the real loader and analyzer: shape subgraphs of a run-time input and weight
 * transforms must fold away completely (no node left for the GPU) to the values onnxruntime computes.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { analyzeGraph } from '../../daemon/graph/analyze.ts';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { randomTensor } from '../helpers/kernel-harness.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { difference, EXACT } from '../helpers/op-compare.ts';

interface FoldCase {
  name: string;
  opset?: number;
  xShape: number[];
  build: (b: ModelBuilder) => void;
  outputs: [string, DType][];
}

const INT64_MAX = 9223372036854775807n;

const cases: FoldCase[] = [
  {
    name: 'PyTorch view target: Shape → Gather → Unsqueeze → Concat',
    xShape: [2, 3, 4],
    build: (b) => b
      .initializer('zero', 'int64', [], [0n]).initializer('axes0', 'int64', [1], [0n]).initializer('tail', 'int64', [2], [-1n, 4n])
      .node('Shape', ['x'], ['shape'])
      .node('Gather', ['shape', 'zero'], ['batch'], { axis: 0 })
      .node('Unsqueeze', ['batch', 'axes0'], ['batch1'])
      .node('Concat', ['batch1', 'tail'], ['target'], { axis: 0 }),
    outputs: [['target', 'int64']],
  },
  {
    name: 'Shape → Cast → Slice to INT64_MAX → Mul → Cast back truncates',
    xShape: [2, 3, 5],
    build: (b) => b
      .initializer('starts', 'int64', [1], [1n]).initializer('ends', 'int64', [1], [INT64_MAX]).initializer('scale', 'float32', [], [2.5])
      .node('Shape', ['x'], ['shape'])
      .node('Cast', ['shape'], ['shape_f'], { to: 1 })
      .node('Slice', ['shape_f', 'starts', 'ends'], ['tail'])
      .node('Mul', ['tail', 'scale'], ['scaled'])
      .node('Cast', ['scaled'], ['result'], { to: 7 }),
    outputs: [['result', 'int64']],
  },
  {
    name: 'causal mask: Range over a dim, Less of two Unsqueezes, Where(-inf, 0)',
    xShape: [1, 5, 8],
    build: (b) => b
      .initializer('one_index', 'int64', [], [1n]).initializer('start', 'int64', [], [0n]).initializer('step', 'int64', [], [1n])
      .initializer('axis0', 'int64', [1], [0n]).initializer('axis1', 'int64', [1], [1n])
      .initializer('minus_inf', 'float32', [], [-Infinity]).initializer('zero', 'float32', [], [0])
      .node('Shape', ['x'], ['shape'])
      .node('Gather', ['shape', 'one_index'], ['n'], { axis: 0 })
      .node('Range', ['start', 'n', 'step'], ['positions'])
      .node('Unsqueeze', ['positions', 'axis0'], ['row'])
      .node('Unsqueeze', ['positions', 'axis1'], ['col'])
      .node('Less', ['col', 'row'], ['future'])
      .node('Where', ['future', 'minus_inf', 'zero'], ['mask']),
    outputs: [['mask', 'float32'], ['future', 'bool']],
  },
  {
    name: 'position ids: ConstantOfShape(Shape) → CumSum → Sub',
    xShape: [2, 6],
    build: (b) => b
      .initializer('axis', 'int64', [], [1n]).initializer('one', 'int64', [], [1n])
      .node('Shape', ['x'], ['shape'])
      .node('ConstantOfShape', ['shape'], ['ones'], { value: { dtype: 'int64', dims: [1], data: [1n] } })
      .node('CumSum', ['ones', 'axis'], ['counts'])
      .node('Sub', ['counts', 'one'], ['ids']),
    outputs: [['ids', 'int64']],
  },
  {
    name: 'exporter Expand pattern: Where(Equal(shape, -1), 1, shape) then Expand',
    xShape: [2, 3, 4],
    build: (b) => b
      .initializer('minus_one', 'int64', [], [-1n]).initializer('bias', 'float32', [1, 1, 4], [0.5, -1, 2, 3])
      .node('Shape', ['x'], ['shape'])
      .node('Shape', ['shape'], ['rank'])
      .node('ConstantOfShape', ['rank'], ['ones'], { value: { dtype: 'int64', dims: [1], data: [1n] } })
      .node('Equal', ['shape', 'minus_one'], ['is_free'])
      .node('Where', ['is_free', 'ones', 'shape'], ['target'])
      .node('Expand', ['bias', 'target'], ['expanded']),
    outputs: [['expanded', 'float32'], ['is_free', 'bool']],
  },
  {
    name: 'head dims: integer Div truncates and Mod takes the divisor sign',
    xShape: [2, 7, 12],
    build: (b) => b
      .initializer('heads', 'int64', [], [-5n]).initializer('three', 'int64', [], [3n])
      .node('Shape', ['x'], ['shape'])
      .node('Div', ['shape', 'heads'], ['per_head'])
      .node('Mod', ['per_head', 'three'], ['rest'])
      .node('Size', ['x'], ['count']),
    outputs: [['per_head', 'int64'], ['rest', 'int64'], ['count', 'int64']],
  },
  {
    name: 'weight transform: Transpose, Mul, Concat, Split, Pad of initializers',
    xShape: [1],
    build: (b) => b
      .initializer('w', 'float32', [8, 6], Array.from(randomTensor([8, 6], 3).data))
      .initializer('scale', 'float32', [8], Array.from(randomTensor([8], 4).data))
      .initializer('extra', 'float32', [2, 8], Array.from(randomTensor([2, 8], 5).data))
      .initializer('pads', 'int64', [4], [0n, 1n, 1n, 0n])
      .initializer('sizes', 'int64', [2], [3n, 5n])
      .node('Transpose', ['w'], ['wt'], { perm: [1, 0] })
      .node('Mul', ['wt', 'scale'], ['scaled'])
      .node('Concat', ['scaled', 'extra'], ['stacked'], { axis: 0 })
      .node('Split', ['stacked', 'sizes'], ['top', 'bottom'], { axis: 0 })
      .node('Pad', ['bottom', 'pads'], ['padded'], { mode: 'reflect' })
      .node('Constant', [], ['c'], { value_floats: [1.5, -2] })
      .node('Identity', ['c'], ['c_out']),
    outputs: [['top', 'float32'], ['padded', 'float32'], ['c_out', 'float32']],
  },
];

async function runOnOrt(bytes: Uint8Array, x: Tensor, outputs: string[]): Promise<Map<string, Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  const result = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x.data), x.dims) });
  await session.release();
  const values = new Map<string, Tensor>();
  for (const name of outputs) {
    const r = result[name];
    const numbers = Array.from(r.data as ArrayLike<number | bigint | boolean>, (v) => Number(v));
    const dtype: DType = r.type === 'float32' ? 'float32' : r.type === 'bool' ? 'bool' : 'int64';
    values.set(name, { dtype, dims: [...r.dims], data: dtype === 'float32' ? Float32Array.from(numbers) : Int32Array.from(numbers) });
  }
  return values;
}

t.test('shape subgraphs and weight transforms fold completely, to onnxruntime\'s values', async (t) => {
  for (const c of cases) {
    const builder = new ModelBuilder({ opset: c.opset ?? 17 });
    builder.input('x', 'float32', c.xShape);
    c.build(builder);
    for (const [name, dtype] of c.outputs) builder.output(name, dtype);
    const bytes = builder.toBytes();
    const model = decodeModel(bytes);
    const analyzed = analyzeGraph(model.graph, model.opsets, new Map([['x', c.xShape]]));
    t.same(analyzed.nodes.map((n) => n.opType), [], `${c.name}: no node is left for the GPU`);
    const expected = await runOnOrt(bytes, randomTensor(c.xShape, 9), c.outputs.map(([name]) => name));
    for (const [name] of c.outputs) {
      const folded = analyzed.constants.get(name);
      t.ok(folded, `${c.name}: '${name}' is folded`);
      if (folded) t.equal(difference(folded, expected.get(name)!, EXACT), null, `${c.name}: '${name}' matches onnxruntime`);
    }
  }
});
