/**
 * Conversions between edgerun host tensors (Float32Array for float dtypes, Int32Array for every integer dtype
 * and bool) and onnxruntime tensors (one typed array per ONNX element type). Runs on the onnxruntime thread,
 * so the conversion cost of big int64 or float16 tensors never lands on the serving thread.
 */
import * as ort from 'onnxruntime-node';
import { EdgerunError } from '../errors.ts';
import type { DType, HostData, Tensor } from '../graph/ir.ts';
import { floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';

/** onnxruntime element types edgerun serves, with their IR dtype (the names coincide). */
const ORT_TO_DTYPE: Partial<Record<ort.Tensor.Type, DType>> = {
  float32: 'float32', float16: 'float16', float64: 'float64',
  int8: 'int8', uint8: 'uint8', int16: 'int16', uint16: 'uint16', int32: 'int32', uint32: 'uint32',
  int64: 'int64', uint64: 'uint64', bool: 'bool',
};

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

export function dtypeOfOrtType(type: string): DType | undefined {
  return ORT_TO_DTYPE[type as ort.Tensor.Type];
}

/** The onnxruntime tensor for an IR tensor of the model input's dtype. */
export function toOrtTensor(tensor: Tensor): ort.Tensor {
  const { data, dims } = tensor;
  switch (tensor.dtype) {
    case 'float32': return new ort.Tensor('float32', data instanceof Float32Array ? data : Float32Array.from(data), dims);
    case 'float16': {
      const bits = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) bits[i] = floatToHalfBits(data[i]);
      return new ort.Tensor('float16', bits, dims);
    }
    case 'float64': return new ort.Tensor('float64', Float64Array.from(data), dims);
    case 'int8': return new ort.Tensor('int8', Int8Array.from(data), dims);
    case 'uint8': return new ort.Tensor('uint8', Uint8Array.from(data), dims);
    case 'int16': return new ort.Tensor('int16', Int16Array.from(data), dims);
    case 'uint16': return new ort.Tensor('uint16', Uint16Array.from(data), dims);
    case 'int32': return new ort.Tensor('int32', data instanceof Int32Array ? data : Int32Array.from(data), dims);
    case 'uint32': return new ort.Tensor('uint32', Uint32Array.from(data), dims);
    case 'int64': {
      const wide = new BigInt64Array(data.length);
      for (let i = 0; i < data.length; i++) wide[i] = BigInt(Math.trunc(data[i]));
      return new ort.Tensor('int64', wide, dims);
    }
    case 'uint64': {
      const wide = new BigUint64Array(data.length);
      for (let i = 0; i < data.length; i++) wide[i] = BigInt(Math.max(0, Math.trunc(data[i])));
      return new ort.Tensor('uint64', wide, dims);
    }
    case 'bool': {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data[i] !== 0 ? 1 : 0;
      return new ort.Tensor('bool', bytes, dims);
    }
    default:
      throw new EdgerunError('EDGERUN_ERR_INPUT', `onnxruntime-node cannot take ${tensor.dtype} tensors`, { dtype: tensor.dtype });
  }
}

function saturatedInt32(values: ArrayLike<bigint>): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = v > 2147483647n ? INT32_MAX : v < -2147483648n ? INT32_MIN : Number(v);
  }
  return out;
}

/** The IR tensor of an onnxruntime output: a fresh buffer (transferable), int64/uint64/uint32 saturated to int32. */
export function fromOrtTensor(name: string, value: ort.Tensor): Tensor {
  const dtype = dtypeOfOrtType(value.type);
  if (!dtype) {
    throw new EdgerunError('EDGERUN_ERR_ENGINE', `output '${name}' has element type ${value.type}, which edgerun does not serve`, { output: name, type: value.type });
  }
  const dims = [...value.dims];
  const raw = value.data as ArrayLike<number> | ArrayLike<bigint>;
  let data: HostData;
  switch (value.type) {
    case 'float32': data = (raw as Float32Array).slice(); break;
    case 'float16': {
      const bits = raw as Uint16Array;
      data = new Float32Array(bits.length);
      for (let i = 0; i < bits.length; i++) data[i] = halfBitsToFloat(bits[i]);
      break;
    }
    case 'float64': data = Float32Array.from(raw as Float64Array); break;
    case 'int64': case 'uint64': data = saturatedInt32(raw as ArrayLike<bigint>); break;
    case 'uint32': data = Int32Array.from(raw as Uint32Array, (v) => Math.min(v, INT32_MAX)); break;
    case 'int32': data = (raw as Int32Array).slice(); break;
    default: data = Int32Array.from(raw as ArrayLike<number>); break;
  }
  return { dtype, dims, data };
}
