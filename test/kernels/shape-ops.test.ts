import t from 'tap';
import { findOp } from '../../daemon/kernels/registry.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { checkCase, EXACT } from '../helpers/op-compare.ts';

const x234 = randomTensor([2, 3, 4], 1);
const i64 = (dims: number[], values: number[]) => intTensor('int64', dims, values);

// Shape ops move no arithmetic: every result must equal onnxruntime's exactly.
const cases: [string, SingleOpCase][] = [
  ['Shape', { opType: 'Shape', opset: 13, inputs: [x234] }],
  ['Shape with start/end (opset 15)', { opType: 'Shape', opset: 15, attributes: { start: 1 }, inputs: [x234] }],
  ['Shape with negative end', { opType: 'Shape', opset: 15, attributes: { start: -2, end: -1 }, inputs: [x234] }],
  ['Shape with clamped bounds', { opType: 'Shape', opset: 15, attributes: { start: -10, end: 10 }, inputs: [x234] }],
  ['Shape with start past end is empty', { opType: 'Shape', opset: 15, attributes: { start: 2, end: 1 }, inputs: [x234] }],
  ['Shape of a scalar', { opType: 'Shape', inputs: [floatTensor([], [1])] }],
  ['Size', { opType: 'Size', inputs: [x234] }],
  ['Reshape with 0 and -1', { opType: 'Reshape', constantInputs: [1], inputs: [x234, i64([3], [0, -1, 2])] }],
  ['Reshape to a scalar', { opType: 'Reshape', constantInputs: [1], inputs: [floatTensor([1, 1], [5]), i64([0], [])] }],
  ['Reshape int64 data', { opType: 'Reshape', constantInputs: [1], inputs: [i64([2, 2], [1, -2, 3, 4]), i64([1], [-1])] }],
  ['Reshape allowzero=1 keeps a literal 0', { opType: 'Reshape', opset: 14, attributes: { allowzero: 1 }, constantInputs: [1], inputs: [floatTensor([0, 3], []), i64([2], [3, 0])] }],
  ['Reshape with the shape attribute (opset 1)', { opType: 'Reshape', opset: 1, attributes: { shape: [4, -1] }, inputs: [x234] }],
  ['Flatten default axis', { opType: 'Flatten', inputs: [x234] }],
  ['Flatten axis 0', { opType: 'Flatten', attributes: { axis: 0 }, inputs: [x234] }],
  ['Flatten axis = rank', { opType: 'Flatten', attributes: { axis: 3 }, inputs: [x234] }],
  ['Flatten negative axis', { opType: 'Flatten', attributes: { axis: -1 }, inputs: [x234] }],
  ['Squeeze axes attribute (opset 11)', { opType: 'Squeeze', opset: 11, attributes: { axes: [0, -1] }, inputs: [randomTensor([1, 3, 1], 2)] }],
  ['Squeeze axes input (opset 13)', { opType: 'Squeeze', opset: 13, constantInputs: [1], inputs: [randomTensor([1, 3, 1], 2), i64([1], [-1])] }],
  ['Squeeze without axes drops every 1', { opType: 'Squeeze', opset: 13, inputs: [randomTensor([1, 3, 1, 2], 2)] }],
  ['Unsqueeze axes attribute (opset 11)', { opType: 'Unsqueeze', opset: 11, attributes: { axes: [0, 3] }, inputs: [randomTensor([3, 2], 2)] }],
  ['Unsqueeze negative axes input (opset 13)', { opType: 'Unsqueeze', opset: 13, constantInputs: [1], inputs: [randomTensor([3, 2], 2), i64([2], [-1, 1])] }],
  ['Unsqueeze a scalar', { opType: 'Unsqueeze', opset: 13, constantInputs: [1], inputs: [i64([], [7]), i64([1], [0])] }],
  ['Identity on bool', { opType: 'Identity', inputs: [intTensor('bool', [3], [1, 0, 1])] }],
  ['Dropout (opset 7, ratio attribute)', { opType: 'Dropout', opset: 7, attributes: { ratio: { float: 0.3 } }, inputs: [x234] }],
  ['Dropout with mask output (opset 13)', { opType: 'Dropout', opset: 13, outputCount: 2, constantInputs: [1], inputs: [x234, floatTensor([], [0.5])] }],
  ['Dropout with training_mode false', { opType: 'Dropout', opset: 13, outputCount: 2, constantInputs: [1, 2], inputs: [x234, floatTensor([], [0.5]), intTensor('bool', [], [0])] }],
  ['Constant value tensor', { opType: 'Constant', inputs: [], attributes: { value: { tensor: floatTensor([2, 2], [1, 2, 3, 4]) } } }],
  ['Constant int64 tensor', { opType: 'Constant', inputs: [], attributes: { value: { tensor: i64([3], [-1, 0, 9]) } } }],
  ['Constant value_float', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_float: { float: 2.5 } } }],
  ['Constant value_floats', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_floats: { floats: [1.5, -2] } } }],
  ['Constant value_int', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_int: 42 } }],
  ['Constant value_ints', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_ints: [3, -4, 5] } }],
  ['ConstantOfShape default zeros', { opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([2], [2, 3])] }],
  ['ConstantOfShape int64 value', { opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([3], [1, 2, 2])], attributes: { value: { tensor: i64([1], [-7]) } } }],
  ['ConstantOfShape float value, scalar shape', { opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([0], [])], attributes: { value: { tensor: floatTensor([1], [1.5]) } } }],
  ['ConstantOfShape bool value', { opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([1], [4])], attributes: { value: { tensor: intTensor('bool', [1], [1]) } } }],
  ['Range float accumulates like onnxruntime', { opType: 'Range', constantInputs: [0, 1, 2], inputs: [floatTensor([], [0.1]), floatTensor([], [7.3]), floatTensor([], [0.3])] }],
  ['Range int64 descending', { opType: 'Range', constantInputs: [0, 1, 2], inputs: [i64([], [10]), i64([], [4]), i64([], [-2])] }],
  ['Range int32 empty', { opType: 'Range', constantInputs: [0, 1, 2], inputs: [intTensor('int32', [], [5]), intTensor('int32', [], [1]), intTensor('int32', [], [2])] }],
  ['EyeLike', { opType: 'EyeLike', inputs: [randomTensor([3, 4], 1)] }],
  ['EyeLike k=1 as int64', { opType: 'EyeLike', attributes: { k: 1, dtype: 7 }, inputs: [randomTensor([4, 3], 1)] }],
  ['EyeLike k=-2', { opType: 'EyeLike', attributes: { k: -2 }, inputs: [randomTensor([4, 4], 1)] }],
];

t.test('shape ops match onnxruntime (GPU path and fold)', async (t) => {
  for (const [name, c] of cases) {
    const problems = await checkCase(c, EXACT).then((r) => r.problems, (error: Error) => [error.message]);
    t.same(problems, [], name);
  }
});

t.test('Shape and Size fold from the input type alone (the input may be computed on the GPU)', async (t) => {
  const shape = findOp('', 'Shape')!;
  const ctx = opContextFor({ opType: 'Shape', opset: 15, attributes: { start: 1 }, inputs: [x234] });
  const [value] = shape.fold!(ctx, [null]);
  t.same({ dtype: value.dtype, dims: value.dims, data: Array.from(value.data) }, { dtype: 'int64', dims: [2], data: [3, 4] });
  const [size] = findOp('', 'Size')!.fold!(opContextFor({ opType: 'Size', inputs: [x234] }), [null]);
  t.same(Array.from(size.data), [24]);
});

t.test('view ops alias input 0 and build no kernel', async (t) => {
  for (const opType of ['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout']) {
    t.equal(findOp('', opType)!.aliasesInput0, true, opType);
  }
  const built = await buildSingleOp({ opType: 'Flatten', inputs: [x234] });
  t.same(built.programs, []);
  t.equal(findOp('', 'Identity')!.elementwise?.arity, 1, 'Identity can be inlined by fusion');
});

t.test('ConstantOfShape and EyeLike fill on the GPU with baked values; equal keys mean equal code', async (t) => {
  const a = await buildSingleOp({ opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([2], [2, 3])], attributes: { value: { tensor: floatTensor([1], [1.5]) } } });
  const b = await buildSingleOp({ opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([2], [3, 2])], attributes: { value: { tensor: floatTensor([1], [1.5]) } } });
  t.equal(a.programs[0].key, b.programs[0].key);
  t.equal(a.programs[0].code, b.programs[0].code);
  t.match(a.programs[0].code, /f32\(1\.5\)/);
});

const bad: [string, SingleOpCase, string][] = [
  ['Reshape with two -1', { opType: 'Reshape', constantInputs: [1], inputs: [x234, i64([2], [-1, -1])] }, 'EDGERUN_ERR_SHAPE'],
  ['Reshape to a different element count', { opType: 'Reshape', constantInputs: [1], inputs: [x234, i64([2], [5, 5])] }, 'EDGERUN_ERR_SHAPE'],
  ['Reshape that cannot infer -1', { opType: 'Reshape', constantInputs: [1], inputs: [x234, i64([2], [5, -1])] }, 'EDGERUN_ERR_SHAPE'],
  ['Reshape with a run-time shape', { opType: 'Reshape', inputs: [x234, i64([2], [4, 6])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['Reshape allowzero with 0 and -1', { opType: 'Reshape', opset: 14, attributes: { allowzero: 1 }, constantInputs: [1], inputs: [x234, i64([2], [0, -1])] }, 'EDGERUN_ERR_SHAPE'],
  ['Squeeze of a non-1 axis', { opType: 'Squeeze', opset: 11, attributes: { axes: [1] }, inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
  ['Squeeze axis out of range', { opType: 'Squeeze', opset: 11, attributes: { axes: [3] }, inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
  ['Unsqueeze with repeated axes', { opType: 'Unsqueeze', opset: 13, constantInputs: [1], inputs: [x234, i64([2], [1, -4])] }, 'EDGERUN_ERR_SHAPE'],
  ['Unsqueeze without axes (opset 13)', { opType: 'Unsqueeze', opset: 13, inputs: [x234] }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['Flatten axis out of range', { opType: 'Flatten', attributes: { axis: 4 }, inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
  ['Dropout in training mode', { opType: 'Dropout', opset: 13, constantInputs: [2], inputs: [x234, null, intTensor('bool', [], [1])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['Constant with two values', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_int: 1, value_float: { float: 1 } } }, 'EDGERUN_ERR_ONNX_INVALID'],
  ['Constant string', { opType: 'Constant', opset: 13, inputs: [], attributes: { value_string: 'x' } }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['ConstantOfShape negative dim', { opType: 'ConstantOfShape', constantInputs: [0], inputs: [i64([2], [2, -3])] }, 'EDGERUN_ERR_SHAPE'],
  ['Range with delta 0', { opType: 'Range', constantInputs: [0, 1, 2], inputs: [i64([], [0]), i64([], [4]), i64([], [0])] }, 'EDGERUN_ERR_SHAPE'],
  ['Range with mixed dtypes', { opType: 'Range', constantInputs: [0, 1, 2], inputs: [i64([], [0]), floatTensor([], [4]), i64([], [1])] }, 'EDGERUN_ERR_SHAPE'],
  ['EyeLike of a 3-D input', { opType: 'EyeLike', inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
];

t.test('bad inputs are rejected by infer with coded errors naming the node', async (t) => {
  for (const [name, c, code] of bad) {
    t.throws(() => findOp('', c.opType)!.infer(opContextFor(c)), { code, message: /_under_test/ }, name);
  }
});
