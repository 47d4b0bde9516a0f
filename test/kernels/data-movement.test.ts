import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { KernelProgram } from '../../daemon/kernels/types.ts';
import { buildSingleOp, floatTensor, intTensor, opContextFor, randomTensor, testDevice, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { checkCase, EXACT, type Tolerance } from '../helpers/op-compare.ts';

const i64 = (dims: number[], values: number[]) => intTensor('int64', dims, values);
const iota = (dtype: Tensor['dtype'], dims: number[]) => intTensor(dtype, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => i - 5));
const x234 = randomTensor([2, 3, 4], 1);
const INT64_MAX = 2147483647; // int64 bounds arrive saturated to int32
const INT64_MIN = -2147483648;

// Data movement copies bits and CumSum adds in the same order as onnxruntime: everything is exact.
const cases: [string, SingleOpCase, Tolerance?][] = [
  ['Transpose default perm reverses axes', { opType: 'Transpose', inputs: [x234] }],
  ['Transpose [0,2,1] (batched 2-D, tiled)', { opType: 'Transpose', attributes: { perm: [0, 2, 1] }, inputs: [randomTensor([3, 20, 17], 2)] }],
  ['Transpose [1,0,2] keeps the inner dim contiguous', { opType: 'Transpose', attributes: { perm: [1, 0, 2] }, inputs: [x234] }],
  ['Transpose [2,0,1]', { opType: 'Transpose', attributes: { perm: [2, 0, 1] }, inputs: [x234] }],
  ['Transpose 2-D not a multiple of the tile', { opType: 'Transpose', inputs: [randomTensor([37, 21], 3)] }],
  ['Transpose NCHW to NHWC', { opType: 'Transpose', attributes: { perm: [0, 2, 3, 1] }, inputs: [randomTensor([1, 16, 7, 9], 4)] }],
  ['Transpose NHWC to NCHW', { opType: 'Transpose', attributes: { perm: [0, 3, 1, 2] }, inputs: [randomTensor([2, 5, 6, 8], 4)] }],
  ['Transpose 5-D on int64', { opType: 'Transpose', attributes: { perm: [4, 1, 3, 0, 2] }, inputs: [iota('int64', [2, 3, 2, 2, 3])] }],
  ['Transpose on bool with the identity perm', { opType: 'Transpose', attributes: { perm: [0, 1] }, inputs: [intTensor('bool', [2, 2], [1, 0, 0, 1])] }],
  ['DepthToSpace DCR', { opType: 'DepthToSpace', attributes: { blocksize: 2 }, inputs: [randomTensor([1, 8, 2, 3], 5)] }],
  ['DepthToSpace CRD', { opType: 'DepthToSpace', attributes: { blocksize: 2, mode: 'CRD' }, inputs: [randomTensor([2, 8, 3, 2], 5)] }],
  ['SpaceToDepth', { opType: 'SpaceToDepth', attributes: { blocksize: 2 }, inputs: [randomTensor([1, 3, 4, 6], 6)] }],
  ['Slice with attributes (opset 9)', { opType: 'Slice', opset: 9, attributes: { starts: [0, 1], ends: [2, 3], axes: [0, 2] }, inputs: [x234] }],
  ['Slice with attributes, axes omitted (opset 9)', { opType: 'Slice', opset: 9, attributes: { starts: [1, -2], ends: [2, 1000] }, inputs: [x234] }],
  ['Slice negative starts/ends (opset 13)', { opType: 'Slice', constantInputs: [1, 2, 3], inputs: [x234, i64([2], [-2, 1]), i64([2], [-1, 100]), i64([2], [1, -1])] }],
  ['Slice INT64_MAX end, axes and steps omitted', { opType: 'Slice', constantInputs: [1, 2], inputs: [x234, i64([1], [1]), i64([1], [INT64_MAX])] }],
  ['Slice step 2', { opType: 'Slice', constantInputs: [1, 2, 3, 4], inputs: [randomTensor([2, 9], 7), i64([1], [1]), i64([1], [INT64_MAX]), i64([1], [1]), i64([1], [2])] }],
  ['Slice reversing with step -1 to INT64_MIN', { opType: 'Slice', constantInputs: [1, 2, 3, 4], inputs: [x234, i64([1], [INT64_MAX]), i64([1], [INT64_MIN]), i64([1], [-1]), i64([1], [-1])] }],
  ['Slice negative step -2 from the middle', { opType: 'Slice', constantInputs: [1, 2, 3, 4], inputs: [randomTensor([10], 8), i64([1], [7]), i64([1], [0]), i64([1], [0]), i64([1], [-2])] }],
  ['Slice that is empty', { opType: 'Slice', constantInputs: [1, 2], inputs: [x234, i64([1], [2]), i64([1], [1])] }],
  ['Slice of int64 shape values with int32 bounds', { opType: 'Slice', constantInputs: [1, 2, 3], inputs: [i64([4], [1, 3, 224, 224]), intTensor('int32', [1], [2]), intTensor('int32', [1], [4]), intTensor('int32', [1], [0])] }],
  ['Concat axis 1 of three inputs', { opType: 'Concat', attributes: { axis: 1 }, inputs: [randomTensor([2, 1, 3], 1), randomTensor([2, 4, 3], 2), randomTensor([2, 2, 3], 3)] }],
  ['Concat axis -1 (vec4 inner blocks)', { opType: 'Concat', attributes: { axis: 0 }, inputs: [randomTensor([1, 8], 1), randomTensor([3, 8], 2)] }],
  ['Concat of int64 shape pieces', { opType: 'Concat', attributes: { axis: 0 }, inputs: [i64([1], [4]), i64([2], [2, 3]), i64([0], [])] }],
  ['Concat of one input', { opType: 'Concat', attributes: { axis: -1 }, inputs: [randomTensor([2, 3], 1)] }],
  ['Concat of 20 inputs (more than the storage-buffer limit)', { opType: 'Concat', attributes: { axis: 1 }, inputs: Array.from({ length: 20 }, (_, i) => randomTensor([2, 1 + (i % 3)], 40 + i)) }],
  ['Concat axis 1 with baked shapes (GPU adapters)', { opType: 'Concat', attributes: { axis: 1 }, inputs: [randomTensor([2, 1, 3], 1), randomTensor([2, 4, 3], 2)], device: { isCpu: false } }],
  ['Split with baked shapes (GPU adapters)', { opType: 'Split', opset: 11, outputCount: 2, attributes: { axis: -1, split: [1, 3] }, inputs: [randomTensor([3, 4], 1)], device: { isCpu: false } }],
  ['Split equal (opset 11)', { opType: 'Split', opset: 11, outputCount: 3, attributes: { axis: 1 }, inputs: [randomTensor([2, 6, 4], 1)] }],
  ['Split attribute sizes (opset 11)', { opType: 'Split', opset: 11, outputCount: 2, attributes: { axis: -1, split: [1, 3] }, inputs: [randomTensor([3, 4], 1)] }],
  ['Split input sizes (opset 13)', { opType: 'Split', opset: 13, outputCount: 3, constantInputs: [1], inputs: [randomTensor([7, 2], 1), i64([3], [2, 0, 5])] }],
  ['Split num_outputs uneven (opset 18)', { opType: 'Split', opset: 18, outputCount: 3, attributes: { num_outputs: 3 }, inputs: [randomTensor([8, 4], 1)] }],
  ['Split int64', { opType: 'Split', opset: 13, outputCount: 2, inputs: [iota('int64', [4, 3])] }],
  ['Gather axis 0 with negative indices', { opType: 'Gather', inputs: [randomTensor([5, 4], 1), i64([3], [0, -1, 2])] }],
  ['Gather axis 1 with 2-D indices', { opType: 'Gather', attributes: { axis: 1 }, inputs: [randomTensor([2, 5, 3], 1), i64([2, 2], [4, 0, -2, 1])] }],
  ['Gather scalar index from a shape (int64)', { opType: 'Gather', constantInputs: [1], inputs: [i64([4], [1, 3, 32, 48]), i64([], [-2])] }],
  ['Gather with int32 indices and negative axis', { opType: 'Gather', attributes: { axis: -1 }, inputs: [randomTensor([3, 6], 1), intTensor('int32', [2], [5, 1])] }],
  ['Gather embedding rows (vec4 path)', { opType: 'Gather', inputs: [randomTensor([10, 8], 1), i64([2, 3], [9, 0, 3, 3, -1, 2])] }],
  ['GatherElements axis 0', { opType: 'GatherElements', inputs: [randomTensor([3, 3], 1), i64([2, 3], [1, 2, 0, 2, 0, -1])] }],
  ['GatherElements axis 1', { opType: 'GatherElements', attributes: { axis: 1 }, inputs: [randomTensor([2, 4], 1), i64([2, 2], [3, 0, -1, 1])] }],
  ['Expand [3,1] to [2,3,4]', { opType: 'Expand', constantInputs: [1], inputs: [randomTensor([3, 1], 1), i64([3], [2, 3, 4])] }],
  ['Expand with a smaller target rank', { opType: 'Expand', constantInputs: [1], inputs: [randomTensor([3, 1], 1), i64([2], [1, 4])] }],
  ['Expand int64 scalar', { opType: 'Expand', constantInputs: [1], inputs: [i64([], [7]), i64([2], [2, 2])] }],
  ['Tile', { opType: 'Tile', constantInputs: [1], inputs: [randomTensor([2, 3], 1), i64([2], [2, 3])] }],
  ['Tile int64 with repeat 1', { opType: 'Tile', constantInputs: [1], inputs: [iota('int64', [2, 1, 3]), i64([3], [1, 4, 1])] }],
  ['Pad constant (opset 2 attributes)', { opType: 'Pad', opset: 2, attributes: { pads: [1, 0, 0, 2], value: { float: 1.5 } }, inputs: [randomTensor([2, 3], 1)] }],
  ['Pad constant input value (opset 13)', { opType: 'Pad', opset: 13, constantInputs: [1, 2], inputs: [randomTensor([2, 3], 1), i64([4], [0, 2, 1, 1]), floatTensor([], [-3])] }],
  ['Pad constant value known only at run time', { opType: 'Pad', opset: 13, constantInputs: [1], inputs: [randomTensor([2, 3], 1), i64([4], [1, 1, 1, 1]), floatTensor([], [9])] }],
  ['Pad int64 with zeros', { opType: 'Pad', opset: 13, constantInputs: [1], inputs: [iota('int64', [2, 2]), i64([4], [0, 1, 0, 0])] }],
  ['Pad reflect', { opType: 'Pad', opset: 13, attributes: { mode: 'reflect' }, constantInputs: [1], inputs: [randomTensor([1, 2, 3, 4], 1), i64([8], [0, 0, 2, 3, 0, 0, 2, 3])] }],
  ['Pad edge', { opType: 'Pad', opset: 13, attributes: { mode: 'edge' }, constantInputs: [1], inputs: [randomTensor([3, 4], 1), i64([4], [2, 1, 1, 3])] }],
  ['Pad wrap (opset 19)', { opType: 'Pad', opset: 19, attributes: { mode: 'wrap' }, constantInputs: [1], inputs: [randomTensor([3, 4], 1), i64([4], [1, 2, 2, 1])] }],
  ['Pad with negative pads crops', { opType: 'Pad', opset: 13, constantInputs: [1], inputs: [randomTensor([4, 5], 1), i64([4], [-1, 1, 0, -2])] }],
  ['Pad with axes (opset 18)', { opType: 'Pad', opset: 18, constantInputs: [1, 3], inputs: [randomTensor([2, 3, 4], 1), i64([2], [1, 2]), null, i64([1], [-1])] }],
  ['Trilu upper', { opType: 'Trilu', inputs: [randomTensor([4, 5], 1)] }],
  ['Trilu lower k=-1 batched', { opType: 'Trilu', attributes: { upper: 0 }, constantInputs: [1], inputs: [randomTensor([2, 3, 4], 1), i64([], [-1])] }],
  ['Trilu upper k=2 on int64', { opType: 'Trilu', constantInputs: [1], inputs: [iota('int64', [3, 4]), i64([], [2])] }],
  ['CumSum axis 1', { opType: 'CumSum', constantInputs: [1], inputs: [randomTensor([2, 5, 3], 1), i64([], [1])] }],
  ['CumSum exclusive reverse', { opType: 'CumSum', attributes: { exclusive: 1, reverse: 1 }, constantInputs: [1], inputs: [randomTensor([2, 5], 1), intTensor('int32', [], [-1])] }],
  ['CumSum int64', { opType: 'CumSum', constantInputs: [1], inputs: [iota('int64', [6]), i64([], [0])] }],
];

t.test('data-movement ops match onnxruntime (GPU and fold)', async (t) => {
  for (const [name, c, tolerance] of cases) {
    const problems = await checkCase(c, tolerance ?? EXACT).then((r) => r.problems, (error: Error) => [error.message]);
    t.same(problems, [], name);
  }
});

/** A CPU-adapter view's params buffer as name → value (the key lists the names in buffer order). */
function viewParams(program: KernelProgram): Record<string, number> {
  const names = /params\(([^)]*)\)/.exec(program.key)?.[1].split(',') ?? [];
  const binding = program.bindings.at(-1)!;
  const data = binding.kind === 'constant' ? Array.from(binding.data, (value) => value | 0) : [];
  return Object.fromEntries(names.map((name, i) => [name, data[i]]));
}

t.test('views coalesce dims; contiguous inner dims move as vec4', async (t) => {
  const nhwc = (await buildSingleOp({ opType: 'Transpose', attributes: { perm: [0, 2, 3, 1] }, inputs: [randomTensor([1, 16, 7, 9], 4)] })).programs[0];
  t.match(nhwc.key, /^view\|rank2\|/, 'NCHW→NHWC is a 2-D transpose (a plain gather on a CPU adapter)');
  t.match(viewParams(nhwc), { total: 1008, dim1: 16, stride0: 1, stride1: 63, base: 0 }, '[16,63] → [63,16]');
  const inner = (await buildSingleOp({ opType: 'Transpose', attributes: { perm: [1, 0, 2] }, inputs: [x234] })).programs[0];
  t.match(inner.key, /^view-vec4\|rank3\|/, 'an unchanged inner dim of 4 moves one vec4 per invocation');
  t.match(viewParams(inner), { total: 6, dim1: 2, dim2: 1, stride0: 1, stride1: 3, stride2: 1 }, '[3,2,1] vec4s');
  const slice = (await buildSingleOp({ opType: 'Slice', constantInputs: [1, 2, 3], inputs: [x234, i64([1], [1]), i64([1], [3]), i64([1], [1])] })).programs[0];
  t.match(slice.key, /^view-vec4\|rank2\|/);
  t.match(viewParams(slice), { total: 4, dim1: 2, stride0: 3, stride1: 1, base: 1 }, 'slicing the middle axis keeps [2, 2·4] rows');
  const baked = (await buildSingleOp({ opType: 'Slice', constantInputs: [1, 2, 3], inputs: [x234, i64([1], [1]), i64([1], [3]), i64([1], [1])], device: { isCpu: false } })).programs[0];
  t.match(baked.key, /^view-vec4\|rank2\|wg64u1\|\[2,2\]s\[3,1\]b1/, 'GPU adapters bake the view');
});

t.test('on CPU adapters views of the same rank share one pipeline', async (t) => {
  const qkv = randomTensor([3, 40, 40], 5);
  const part = (k: number) => buildSingleOp({ opType: 'Slice', constantInputs: [1, 2, 3], inputs: [qkv, i64([1], [k]), i64([1], [k + 1]), i64([1], [0])] }).then((r) => r.programs[0]);
  const [q, k, v] = await Promise.all([part(0), part(1), part(2)]);
  t.equal(k.key, q.key, 'the three Slices of a QKV split share a key');
  t.equal(v.code, q.code, 'and their code');
  t.same([q, k, v].map((p) => viewParams(p).base), [0, 400, 800], 'only the params differ');
  const small = (await buildSingleOp({ opType: 'Transpose', inputs: [randomTensor([5, 3], 1)] })).programs[0];
  const large = (await buildSingleOp({ opType: 'Transpose', inputs: [randomTensor([37, 21], 2)] })).programs[0];
  t.equal(large.key, small.key, 'transposes of different sizes share a key');
  t.notMatch(large.code, /\b(37|21)u\b/, 'no size is baked into the code');
  t.same((await checkCase({ opType: 'Transpose', inputs: [randomTensor([37, 21], 2)] }, EXACT)).problems, [], 'and run correctly');
  // a negative step stores a negative stride in the params (as its bits) and bakes it on GPUs
  for (const isCpu of [true, false]) {
    const reversed: SingleOpCase = { opType: 'Slice', constantInputs: [1, 2, 3, 4], device: { isCpu },
      inputs: [randomTensor([4, 9], 3), i64([1], [7]), i64([1], [0]), i64([1], [1]), i64([1], [-2])] };
    t.same((await checkCase(reversed, EXACT)).problems, [], `Slice with step -2 (${isCpu ? 'params' : 'baked'})`);
  }
});

t.test('on GPU adapters 2-D transposes go through a workgroup-memory tile (run here by presenting lavapipe as a GPU)', async (t) => {
  const { caps } = await testDevice();
  const wasCpu = caps.isCpu;
  caps.isCpu = false;
  try {
    const tiled: SingleOpCase[] = [
      { opType: 'Transpose', attributes: { perm: [0, 2, 3, 1] }, inputs: [randomTensor([2, 16, 7, 9], 4)] },
      { opType: 'Transpose', inputs: [randomTensor([37, 21], 3)] },
      { opType: 'Transpose', attributes: { perm: [2, 0, 1] }, inputs: [iota('int64', [3, 5, 18])] },
    ];
    for (const c of tiled) {
      const { programs } = await buildSingleOp(c);
      t.match(programs[0].key, /^view-tiled\|/);
      t.match(programs[0].code, /workgroupBarrier/);
      t.same((await checkCase(c, EXACT, { fold: false })).problems, [], `tiled [${c.inputs[0]!.dims}] perm ${JSON.stringify(c.attributes?.perm ?? 'reverse')}`);
    }
  } finally {
    caps.isCpu = wasCpu;
  }
});

t.test('Concat and Split copy each piece with its own two-binding program; on CPU adapters all pieces share a pipeline', async (t) => {
  const concat = await buildSingleOp({ opType: 'Concat', attributes: { axis: 1 }, inputs: [randomTensor([2, 1, 3], 1), randomTensor([2, 4, 3], 2)] });
  t.equal(concat.programs.length, 2, 'one program per input');
  t.same(concat.programs.map((p) => p.bindings.slice(0, 2)), [[{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }], [{ kind: 'input', index: 1 }, { kind: 'output', index: 0 }]]);
  t.equal(concat.programs[1].key, concat.programs[0].key, 'both slabs run the same scatter pipeline');
  t.match(viewParams(concat.programs[1]), { base: 3, stride0: 15 }, 'input 1 lands after input 0\'s 3 elements in each 15-element row');
  const many = await buildSingleOp({ opType: 'Concat', attributes: { axis: 0 }, inputs: Array.from({ length: 20 }, (_, i) => randomTensor([1], i)) });
  t.equal(many.programs.length, 20, 'any number of inputs: each program binds two tensors and the params');
  t.equal(new Set(many.programs.map((p) => p.key)).size, 1);
  const split = await buildSingleOp({ opType: 'Split', opset: 13, outputCount: 3, inputs: [randomTensor([6, 4], 1)] });
  t.equal(split.programs.length, 3);
  t.match(split.programs[0].code, /vec4<u32>/, 'inner blocks of 4 move as vec4');
  t.match(split.programs[0].key, /^view-vec4\|/, 'a Split output is a Slice-like view of the input');
});

t.test('one data-movement pipeline serves every 4-byte dtype', async (t) => {
  const f = await buildSingleOp({ opType: 'Transpose', inputs: [randomTensor([3, 5], 1)] });
  const i = await buildSingleOp({ opType: 'Transpose', inputs: [iota('int64', [3, 5])] });
  t.equal(f.programs[0].key, i.programs[0].key);
  t.equal(f.programs[0].code, i.programs[0].code);
});

const bad: [string, SingleOpCase, string][] = [
  ['Transpose with a repeated axis in perm', { opType: 'Transpose', attributes: { perm: [0, 0, 1] }, inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
  ['Transpose with a short perm', { opType: 'Transpose', attributes: { perm: [1, 0] }, inputs: [x234] }, 'EDGERUN_ERR_SHAPE'],
  ['Slice with step 0', { opType: 'Slice', constantInputs: [1, 2, 3, 4], inputs: [x234, i64([1], [0]), i64([1], [2]), i64([1], [0]), i64([1], [0])] }, 'EDGERUN_ERR_SHAPE'],
  ['Slice with run-time starts', { opType: 'Slice', constantInputs: [2], inputs: [x234, i64([1], [0]), i64([1], [2])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['Slice with a repeated axis', { opType: 'Slice', constantInputs: [1, 2, 3], inputs: [x234, i64([2], [0, 0]), i64([2], [1, 1]), i64([2], [1, -2])] }, 'EDGERUN_ERR_SHAPE'],
  ['Concat rank mismatch', { opType: 'Concat', attributes: { axis: 0 }, inputs: [randomTensor([2, 3], 1), randomTensor([3], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Concat off-axis dim mismatch', { opType: 'Concat', attributes: { axis: 0 }, inputs: [randomTensor([2, 3], 1), randomTensor([2, 4], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Concat dtype mismatch', { opType: 'Concat', attributes: { axis: 0 }, inputs: [randomTensor([2], 1), i64([2], [1, 2])] }, 'EDGERUN_ERR_SHAPE'],
  ['Concat axis out of range', { opType: 'Concat', attributes: { axis: 2 }, inputs: [randomTensor([2, 3], 1)] }, 'EDGERUN_ERR_SHAPE'],
  ['Split sizes that do not sum to the axis', { opType: 'Split', opset: 13, outputCount: 2, constantInputs: [1], inputs: [randomTensor([5], 1), i64([2], [2, 2])] }, 'EDGERUN_ERR_SHAPE'],
  ['Split that does not divide evenly', { opType: 'Split', opset: 13, outputCount: 2, inputs: [randomTensor([5], 1)] }, 'EDGERUN_ERR_SHAPE'],
  ['Gather with float indices', { opType: 'Gather', inputs: [randomTensor([3], 1), randomTensor([2], 2)] }, 'EDGERUN_ERR_SHAPE'],
  ['Gather axis out of range', { opType: 'Gather', attributes: { axis: 2 }, inputs: [randomTensor([3, 2], 1), i64([1], [0])] }, 'EDGERUN_ERR_SHAPE'],
  ['GatherElements rank mismatch', { opType: 'GatherElements', inputs: [randomTensor([3, 2], 1), i64([2], [0, 1])] }, 'EDGERUN_ERR_SHAPE'],
  ['Expand to an incompatible shape', { opType: 'Expand', constantInputs: [1], inputs: [randomTensor([3], 1), i64([1], [4])] }, 'EDGERUN_ERR_SHAPE'],
  ['Tile with a wrong repeats length', { opType: 'Tile', constantInputs: [1], inputs: [randomTensor([3], 1), i64([2], [1, 2])] }, 'EDGERUN_ERR_SHAPE'],
  ['Pad with an unknown mode', { opType: 'Pad', opset: 13, attributes: { mode: 'mirror' }, constantInputs: [1], inputs: [randomTensor([3], 1), i64([2], [1, 1])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['Pad with a wrong pads length', { opType: 'Pad', opset: 13, constantInputs: [1], inputs: [randomTensor([3], 1), i64([1], [1])] }, 'EDGERUN_ERR_SHAPE'],
  ['Trilu of a vector', { opType: 'Trilu', inputs: [randomTensor([3], 1)] }, 'EDGERUN_ERR_SHAPE'],
  ['CumSum with a run-time axis', { opType: 'CumSum', inputs: [randomTensor([3], 1), i64([], [0])] }, 'EDGERUN_ERR_UNSUPPORTED_OP'],
  ['DepthToSpace with indivisible channels', { opType: 'DepthToSpace', attributes: { blocksize: 2 }, inputs: [randomTensor([1, 6, 2, 2], 1)] }, 'EDGERUN_ERR_SHAPE'],
];

t.test('bad inputs are rejected by infer with coded errors naming the node', async (t) => {
  for (const [name, c, code] of bad) {
    t.throws(() => findOp('', c.opType)!.infer(opContextFor(c)), { code, message: /_under_test/ }, name);
  }
});

t.test('fold rejects out-of-range gather indices instead of reading garbage', async (t) => {
  const c: SingleOpCase = { opType: 'Gather', constantInputs: [0, 1], inputs: [i64([3], [1, 2, 3]), i64([1], [3])] };
  const op = findOp('', 'Gather')!;
  const ctx = opContextFor(c);
  t.throws(() => op.fold!(ctx, ctx.constants), { code: 'EDGERUN_ERR_SHAPE' });
});
