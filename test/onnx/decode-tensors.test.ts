import * as ort from 'onnxruntime-node';
import t from 'tap';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { ModelBuilder, type TensorValues } from '../helpers/onnx-builder.ts';

const INT32_MAX = 2 ** 31 - 1;
const INT32_MIN = -(2 ** 31);
const saturate = (v: number): number => Math.min(Math.max(v, INT32_MIN), INT32_MAX);

interface Case { dtype: DType; values: TensorValues; oracle: 'ort' | number[] }

const cases: Case[] = [
  { dtype: 'float32', values: [1.5, -2.25, 3.4e38, -0], oracle: 'ort' },
  { dtype: 'float64', values: [1.1, -2.5e300, 1e-50, 0.1], oracle: 'ort' },
  { dtype: 'int8', values: [-128, 127, 0], oracle: 'ort' },
  { dtype: 'uint8', values: [0, 255, 7], oracle: 'ort' },
  { dtype: 'int16', values: [-32768, 32767, -1], oracle: 'ort' },
  { dtype: 'uint16', values: [65535, 0, 3], oracle: 'ort' },
  { dtype: 'int32', values: [INT32_MIN, INT32_MAX, -9], oracle: 'ort' },
  { dtype: 'uint32', values: [4294967295, 7, 2147483648], oracle: 'ort' },
  { dtype: 'int64', values: [-(2n ** 40n), 2n ** 40n, -5n, 2n ** 31n, -(2n ** 31n), 9223372036854775807n], oracle: 'ort' },
  { dtype: 'uint64', values: [2n ** 63n, 3n, 18446744073709551615n], oracle: 'ort' },
  { dtype: 'bool', values: [1, 0, 1], oracle: 'ort' },
  // float16/bfloat16 values are exactly representable, so the expectation is the input itself.
  { dtype: 'float16', values: [1, -0.5, 65504, 2 ** -24, -Infinity], oracle: [1, -0.5, 65504, 2 ** -24, -Infinity] },
  { dtype: 'bfloat16', values: [1, -2, 3.140625, 2 ** 100], oracle: [1, -2, 3.140625, 2 ** 100] },
];

t.test('initializers of every dtype decode, from raw_data and from the typed fields, to what onnxruntime reads', async (t) => {
  const builder = new ModelBuilder({ opset: 17 });
  const oracleNames: string[] = [];
  for (const c of cases) {
    for (const encoding of ['raw', 'typed'] as const) {
      const name = `${c.dtype}_${encoding}`;
      builder.initializer(name, c.dtype, [c.values.length], c.values, { encoding });
      if (c.oracle === 'ort') {
        builder.node('Identity', [name], [`${name}_out`]).output(`${name}_out`, c.dtype, [c.values.length]);
        oracleNames.push(name);
      }
    }
  }
  const bytes = builder.toBytes();
  const model = decodeModel(bytes, { source: 'dtypes.onnx' });
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const results = await session.run({});

  for (const c of cases) {
    for (const encoding of ['raw', 'typed'] as const) {
      const name = `${c.dtype}_${encoding}`;
      const tensor = model.graph.initializers.get(name)!;
      t.equal(tensor.dtype, c.dtype, `${name} dtype`);
      t.same(tensor.dims, [c.values.length], `${name} dims`);
      const isFloat = ['float32', 'float64', 'float16', 'bfloat16'].includes(c.dtype);
      t.ok(isFloat ? tensor.data instanceof Float32Array : tensor.data instanceof Int32Array, `${name} storage type`);
      let expected: number[];
      if (c.oracle === 'ort') {
        const ortValues = Array.from(results[`${name}_out`].data as ArrayLike<number | bigint | boolean>, (v) => Number(v));
        expected = isFloat ? ortValues.map(Math.fround) : ortValues.map(saturate);
      } else {
        expected = c.oracle;
      }
      t.same(Array.from(tensor.data), expected, `${name} values`);
    }
  }
  t.equal(oracleNames.length, 22);
});

t.test('int64 values saturate into the int32 range', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .initializer('big', 'int64', [3], [9223372036854775807n, -9223372036854775808n, -1n]).toBytes());
  t.same(Array.from(model.graph.initializers.get('big')!.data), [INT32_MAX, INT32_MIN, -1]);
});

t.test('a scalar and an empty tensor keep their dims', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .initializer('scalar', 'float32', [], [2.5])
    .initializer('empty', 'int64', [0, 3], [])
    .toBytes());
  t.same(model.graph.initializers.get('scalar'), { dtype: 'float32', dims: [], data: Float32Array.of(2.5) });
  t.same(model.graph.initializers.get('empty'), { dtype: 'int64', dims: [0, 3], data: new Int32Array(0) });
});

t.test('Constant value_float, value_floats, value_int and value_ints become a value tensor', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .node('Constant', [], ['a'], { value_float: 0.5 })
    .node('Constant', [], ['b'], { value_floats: [0.5, 1.5] })
    .node('Constant', [], ['c'], { value_int: 7 })
    .node('Constant', [], ['d'], { value_ints: [1, -2, 3] })
    .node('Constant', [], ['e'], { value: { dtype: 'int64', dims: [2, 1], data: [4n, 5n] } })
    .node('Concat', ['b', 'b'], ['out'], { axis: 0 })
    .output('out', 'float32', [4]).output('a', 'float32', []).output('c', 'int64', [])
    .output('d', 'int64', [3]).output('e', 'int64', [2, 1])
    .toBytes());
  const valueOf = (output: string): Tensor | undefined => {
    const node = model.graph.nodes.find((n) => n.outputs[0] === output)!;
    t.equal(node.opType, 'Constant', `${output} stays a Constant node`);
    t.same([...node.attributes.keys()], ['value'], `${output} carries only a value attribute`);
    const value = node.attributes.get('value');
    return value?.type === 'tensor' ? value.value : undefined;
  };
  t.same(valueOf('a'), { dtype: 'float32', dims: [], data: Float32Array.of(0.5) });
  t.same(valueOf('b'), { dtype: 'float32', dims: [2], data: Float32Array.of(0.5, 1.5) });
  t.same(valueOf('c'), { dtype: 'int64', dims: [], data: Int32Array.of(7) });
  t.same(valueOf('d'), { dtype: 'int64', dims: [3], data: Int32Array.of(1, -2, 3) });
  t.same(valueOf('e'), { dtype: 'int64', dims: [2, 1], data: Int32Array.of(4, 5) });
});

t.test('a Constant without exactly one value attribute is rejected naming the node', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .node('Constant', [], ['a'], { value_float: 0.5, value_int: 1 }, { name: 'two_values' })
    .output('a', 'float32', []).toBytes();
  t.throws(() => decodeModel(bytes), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /two_values/ });
  const strings = new ModelBuilder({ opset: 17 })
    .node('Constant', [], ['a'], { value_strings: ['x', 'y'] }, { name: 'text' })
    .output('a', 'float32', []).toBytes();
  t.throws(() => decodeModel(strings), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /text.*value_strings/ });
});
