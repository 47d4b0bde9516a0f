/**
 * onnxruntime-node as the compressor's numerical oracle: runs the FP32 model for calibration statistics (with
 * any intermediate value exposed as an extra graph output), measures output error for sensitivity, and computes
 * the reference outputs the package's eval set promises.
 */
import ort from 'onnxruntime-node';
import { EdgerunError } from '../errors.ts';
import type { Dim, DType, Tensor } from '../graph/ir.ts';
import { elementTypeOf, onnxTypeName, protoIntToNumber, type ProtoInt } from '../onnx/proto-values.ts';
import { cloneModelProto, encodeModelProto, initializerMap, onnx, type ModelProto } from './model-proto.ts';

export interface ValueSpec {
  name: string;
  dtype: DType;
  dims: Dim[];
}

function valueSpecs(model: ModelProto, which: 'input' | 'output'): ValueSpec[] {
  const initializers = initializerMap(model.graph!);
  return (model.graph![which] ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => {
    const tensorType = v.type?.tensorType;
    const element = elementTypeOf(tensorType?.elemType ?? 0);
    if (!element) {
      throw new EdgerunError('EDGERUN_ERR_COMPRESS', `graph ${which} '${v.name}' has element type ${onnxTypeName(tensorType?.elemType ?? 0)}, which the compressor cannot feed`,
        { step: 'load', value: v.name });
    }
    const dims = (tensorType?.shape?.dim ?? []).map((d): Dim => (d.dimValue !== undefined && d.dimValue !== null && protoIntToNumber(d.dimValue as ProtoInt) > 0
      ? protoIntToNumber(d.dimValue as ProtoInt) : d.dimParam || null));
    return { name: v.name ?? '', dtype: element.dtype, dims };
  });
}

export function modelInputs(model: ModelProto): ValueSpec[] {
  return valueSpecs(model, 'input');
}

export function modelOutputs(model: ModelProto): ValueSpec[] {
  return valueSpecs(model, 'output');
}

/** A copy of the model that also outputs the named intermediate values (onnxruntime infers their types). */
export function withExtraOutputs(model: ModelProto, names: readonly string[]): Uint8Array {
  const copy = cloneModelProto(model);
  const existing = new Set((copy.graph!.output ?? []).map((o) => o.name));
  for (const name of names) if (!existing.has(name)) copy.graph!.output!.push(onnx.ValueInfoProto.create({ name }));
  return encodeModelProto(copy);
}

export class OrtModel {
  private constructor(private readonly session: ort.InferenceSession, readonly label: string) {}

  /**
   * `optimization` 'all' (default) is what the daemon's onnxruntime engine uses; it fuses weight-only
   * DequantizeLinear → MatMul into integer kernels that also quantize the activation, so outputs differ from the
   * ONNX semantics by up to about 0.3 % of their range. 'disabled' computes exactly what the graph says.
   */
  static async open(bytes: Uint8Array, label: string, optimization: 'disabled' | 'all' = 'all'): Promise<OrtModel> {
    try {
      const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: optimization, intraOpNumThreads: 2 });
      return new OrtModel(session, label);
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_COMPRESS', `${label}: onnxruntime cannot load the model (${(error as Error).message})`,
        { step: label }, { cause: error });
    }
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Record<string, Tensor>, outputs?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = outputs ? await this.session.run(ortFeeds, [...outputs]) : await this.session.run(ortFeeds);
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_COMPRESS', `${this.label}: onnxruntime failed to run the model (${(error as Error).message})`,
        { step: this.label }, { cause: error });
    }
    const out: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(result)) out[name] = fromOrt(value as ort.Tensor);
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

function toOrt(t: Tensor): ort.Tensor {
  switch (t.dtype) {
    case 'float32': return new ort.Tensor('float32', t.data as Float32Array, t.dims);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(v)), t.dims);
    case 'int32': return new ort.Tensor('int32', Int32Array.from(t.data), t.dims);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from(t.data), t.dims);
    default: return new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
  }
}

function fromOrt(t: ort.Tensor): Tensor {
  const dims = [...t.dims];
  if (t.type === 'float32') return { dtype: 'float32', dims, data: t.data as Float32Array };
  if (t.type === 'float16' || t.type === 'float64') return { dtype: 'float32', dims, data: Float32Array.from(t.data as ArrayLike<number>) };
  if (t.type === 'int64') return { dtype: 'int64', dims, data: Int32Array.from(t.data as BigInt64Array, (v) => Number(BigInt.asIntN(32, v))) };
  return { dtype: t.type === 'bool' ? 'bool' : 'int32', dims, data: Int32Array.from(t.data as ArrayLike<number>) };
}
