import * as ort from 'onnxruntime-node';
import t from 'tap';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';

const signed = [-8, 7, 0, -1, 3, -5, 6];
const unsigned = [0, 15, 8, 1, 9, 14, 2];

t.test('int4 and uint4 initializers decode from packed raw_data and int32_data, odd counts included, as onnxruntime reads them', async (t) => {
  const builder = new ModelBuilder({ opset: 21 });
  for (const [dtype, values] of [['int4', signed], ['uint4', unsigned]] as const) {
    for (const encoding of ['raw', 'typed'] as const) {
      const name = `${dtype}_${encoding}`;
      builder.initializer(name, dtype, [values.length], values, { encoding })
        .initializer(`${name}_scale`, 'float32', [], [1])
        .node('DequantizeLinear', [name, `${name}_scale`], [`${name}_out`])
        .output(`${name}_out`, 'float32', [values.length]);
    }
  }
  const bytes = builder.toBytes();
  const model = decodeModel(bytes, { source: 'int4.onnx' });
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const results = await session.run({});
  for (const [dtype, values] of [['int4', signed], ['uint4', unsigned]] as const) {
    for (const encoding of ['raw', 'typed'] as const) {
      const name = `${dtype}_${encoding}`;
      const tensor = model.graph.initializers.get(name)!;
      t.equal(tensor.dtype, dtype, `${name} dtype`);
      t.ok(tensor.data instanceof Int32Array, `${name} is held unpacked in an Int32Array`);
      t.same(Array.from(tensor.data), values, `${name} values`);
      t.same(Array.from(results[`${name}_out`].data as Float32Array), values, `${name}: onnxruntime reads the same values`);
    }
  }
});

t.test('packed int4 data of the wrong length is rejected naming the tensor', async (t) => {
  const raw = new ModelBuilder({ opset: 21 }).initializerProto({ name: 'w4', dataType: 22, dims: [5], rawData: new Uint8Array(2) }).toBytes();
  t.throws(() => decodeModel(raw, { source: 'bad.onnx' }), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /w4.*needs 3 bytes of int4/ });
  const typed = new ModelBuilder({ opset: 21 }).initializerProto({ name: 'u4', dataType: 21, dims: [4], int32Data: [1, 2, 3] }).toBytes();
  t.throws(() => decodeModel(typed, { source: 'bad.onnx' }), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /u4.*needs 2 packed uint4 bytes/ });
  const wide = new ModelBuilder({ opset: 21 }).initializerProto({ name: 'w', dataType: 22, dims: [2], int32Data: [300] }).toBytes();
  t.throws(() => decodeModel(wide, { source: 'bad.onnx' }), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'w'.*outside 0\.\.255/ });
});
