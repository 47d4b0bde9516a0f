import t from 'tap';
import { ELEMENT_BYTES, type Datatype } from '../../daemon/serve/datatypes.ts';
import { countJsonElements, decodeBinaryTensor, decodeJsonTensor, encodeBinaryTensor, encodeJsonTensor } from '../../daemon/serve/tensor-codecs.ts';
import { isFloatDType, type DType } from '../../daemon/graph/ir.ts';

const DTYPE_OF: Record<Exclude<Datatype, 'BYTES'>, DType> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64', INT8: 'int8', INT16: 'int16', INT32: 'int32',
  INT64: 'int64', FP16: 'float16', FP32: 'float32', FP64: 'float64', BF16: 'bfloat16',
};

/** Values every datatype holds exactly (in range, representable in FP16 and BF16). */
const SAMPLES: Record<Exclude<Datatype, 'BYTES'>, number[]> = {
  BOOL: [1, 0, 1], UINT8: [0, 255, 7], UINT16: [0, 65535, 9], UINT32: [0, 2147483647, 3], UINT64: [0, 2147483647, 5],
  INT8: [-128, 127, 0], INT16: [-32768, 32767, -1], INT32: [-2147483648, 2147483647, 0], INT64: [-2147483648, 2147483647, -9],
  FP16: [1.5, -65504, 0.0009765625], FP32: [Math.fround(0.1), -3.4e38, 1e-30].map(Math.fround), FP64: [Math.fround(0.1), 2, -8].map(Math.fround),
  BF16: [1, -2.5, 3.3895313892515355e38],
};

t.test('binary encode then decode is the identity for every datatype, at any byte offset', async (t) => {
  for (const [datatype, values] of Object.entries(SAMPLES) as [Exclude<Datatype, 'BYTES'>, number[]][]) {
    const dtype = DTYPE_OF[datatype];
    const data = isFloatDType(dtype) ? Float32Array.from(values) : Int32Array.from(values);
    const bytes = encodeBinaryTensor(datatype, { dtype, dims: [3], data });
    t.equal(bytes.byteLength, 3 * ELEMENT_BYTES[datatype], `${datatype} size`);
    const unaligned = new Uint8Array(bytes.byteLength + 1);
    unaligned.set(bytes, 1);
    const decoded = decodeBinaryTensor('x', datatype, unaligned.subarray(1), 3);
    t.same([...decoded], [...data], datatype);
    t.equal(decoded.constructor, data.constructor, `${datatype} storage`);
  }
});

t.test('BF16 encoding rounds to nearest even on the upper half of a float32 and keeps NaN', async (t) => {
  const bits = (v: number) => new Uint16Array(encodeBinaryTensor('BF16', { dtype: 'bfloat16', dims: [1], data: Float32Array.of(v) }).slice().buffer)[0];
  t.equal(bits(1), 0x3f80);
  t.equal(bits(1 + 2 ** -8), 0x3f80, 'a tie rounds to the even mantissa');
  t.equal(bits(1 + 3 * 2 ** -8), 0x3f82, 'a tie rounds to the even mantissa (up)');
  t.equal(bits(-2), 0xc000);
  t.equal(bits(NaN) & 0x7fc0, 0x7fc0);
  t.equal(bits(Infinity), 0x7f80);
});

t.test('JSON data may be flat or nested; both decode to the same row-major elements', async (t) => {
  const flat = decodeJsonTensor('d', 'FP32', [1, 2, 3, 4, 5, 6], 6);
  const nested = decodeJsonTensor('d', 'FP32', [[1, 2, 3], [4, 5, 6]], 6);
  const deep = decodeJsonTensor('d', 'FP32', [[[1], [2], [3]], [[4], [5], [6]]], 6);
  t.same([...nested], [...flat]);
  t.same([...deep], [...flat]);
  t.same([...decodeJsonTensor('b', 'BOOL', [[true], [false]], 2)], [1, 0]);
  t.equal(countJsonElements('d', [[1, 2], [3, [4, 5]]], 100), 5);
  t.equal(countJsonElements('d', new Array(50).fill([1, 2]), 10), 11, 'counting stops just past the limit');
});

t.test('JSON outputs are flat; BOOL as booleans; non-finite floats as null after JSON.stringify', async (t) => {
  t.same(encodeJsonTensor('BOOL', { dtype: 'bool', dims: [2], data: Int32Array.of(0, 1) }), [false, true]);
  t.equal(JSON.stringify(encodeJsonTensor('FP32', { dtype: 'float32', dims: [3], data: Float32Array.of(NaN, Infinity, 0.5) })), '[null,null,0.5]');
  t.same(encodeJsonTensor('INT64', { dtype: 'int64', dims: [2, 1], data: Int32Array.of(-1, 7) }), [-1, 7]);
});

t.test('binary INT64 and UINT64 values beyond int32 are refused, naming the element', async (t) => {
  const bytes = new Uint8Array(BigInt64Array.of(1n, -(2n ** 40n)).buffer);
  t.throws(() => decodeBinaryTensor('inputs[2] (binary)', 'INT64', bytes, 2), { code: 'EDGERUN_ERR_REQUEST', message: /inputs\[2\] \(binary\) element 1: -1099511627776 is outside the range/ });
  const unsigned = new Uint8Array(BigUint64Array.of(2n ** 63n).buffer);
  t.throws(() => decodeBinaryTensor('u', 'UINT64', unsigned, 1), { message: /u element 0: 9223372036854775808 is outside the range edgerun holds UINT64 values in \(0\.\.2147483647\)/ });
  t.throws(() => decodeBinaryTensor('s', 'BYTES', new Uint8Array(4), 1), { message: /BYTES is not supported/ });
});
