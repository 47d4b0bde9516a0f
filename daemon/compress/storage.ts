/**
 * Stores the quantized layers' float side tensors — DequantizeLinear scales and the layers' biases — as float16
 * initializers, each followed by Cast(to=FLOAT) whose output keeps the tensor's old name, so every consumer still
 * reads float32 (standard ONNX that onnxruntime runs; edgerun folds the Cast at compile time). A tensor stays
 * float32 when float16 cannot hold it: a bias with a value outside float16's range or one that would move by more
 * than the tolerance below; scales that float16 does not hold exactly. Quantization rounds scales to float16
 * first (rtn.ts roundScaleToHalf), so the stored scale is the one the values were chosen for; only scales below
 * 2⁻¹⁶ (near-dead channels) are left inexact, and those are stored rounded when the weight change it causes,
 * |Δscale|·max|q|, stays under SCALE_TOLERANCE of the tensor's largest scale (its worst rounding error is half that).
 */
import { OnnxDataType } from '../onnx/proto-values.ts';
import { floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';
import type { QuantLayer } from './layers.ts';
import type { StorageStep } from './recipes.ts';
import {
  attr, consumersOf, float16Tensor, initializerMap, makeNode, readFloatTensor, tensorDims, type GraphProto, type NameAllocator, type NodeProto, type TensorProto,
} from './model-proto.ts';

/** A bias value may move by this fraction of itself (float16's rounding is ≤ 2⁻¹¹ ≈ 4.9e-4 in its normal range)… */
export const BIAS_RELATIVE_TOLERANCE = 1e-3;
/** …or by this much (float16 subnormals: ≤ 2⁻²⁵). */
export const BIAS_ABSOLUTE_TOLERANCE = 1e-6;

export interface StorageResult {
  halfScales: number;
  halfBiases: number;
  /** Tensors kept float32 because float16 could not hold them, with why. */
  keptFloat32: { tensor: string; reason: string }[];
}

const toHalf = (v: number): number => halfBitsToFloat(floatToHalfBits(v));

export const SCALE_TOLERANCE = 2 ** -9;

/** Largest |q − zero point| per quantized data type (int8, uint8, int4, uint4). */
const LARGEST_STEPS: Record<number, number> = { [OnnxDataType.INT8]: 128, [OnnxDataType.UINT8]: 255, 22: 8, 21: 15 };

/** Why float16 cannot store these scales of a `dataType` weight, or null when it can (see the file comment). */
export function scaleHalfProblem(values: Float32Array, dataType: number): string | null {
  const largestStep = LARGEST_STEPS[dataType] ?? 255;
  const allowed = SCALE_TOLERANCE * values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const change = Math.abs(toHalf(v) - v) * largestStep;
    if (!(change <= allowed)) return `scale ${v} at ${i} would change its weights by up to ${change}`;
  }
  return null;
}

/** Why float16 cannot store this bias within tolerance, or null when it can. */
export function biasHalfProblem(values: Float32Array): string | null {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const error = Math.abs(toHalf(v) - v);
    if (!Number.isFinite(toHalf(v))) return `bias ${v} at ${i} is outside float16's range`;
    if (error > Math.max(BIAS_RELATIVE_TOLERANCE * Math.abs(v), BIAS_ABSOLUTE_TOLERANCE)) return `bias ${v} at ${i} would move by ${error}`;
  }
  return null;
}

export function storeSideTensors(graph: GraphProto, layers: readonly QuantLayer[], storage: StorageStep, names: NameAllocator): StorageResult {
  const result: StorageResult = { halfScales: 0, halfBiases: 0, keptFloat32: [] };
  const initializers = initializerMap(graph);
  const consumers = consumersOf(graph);
  const soleFloat = (name: string | undefined): TensorProto | undefined => {
    const t = name ? initializers.get(name) : undefined;
    return t && t.dataType === OnnxDataType.FLOAT && (consumers.get(name!) ?? []).length === 1 ? t : undefined;
  };
  const toHalfWithCast = (tensor: TensorProto, values: Float32Array): void => {
    const name = tensor.name!;
    const half = names.take(`${name}_f16`);
    graph.initializer![graph.initializer!.indexOf(tensor)] = float16Tensor(half, tensorDims(tensor), values);
    const consumer = consumers.get(name)![0]!;
    graph.node!.splice(graph.node!.indexOf(consumer), 0, makeNode('Cast', [half], [name], '', [attr.int('to', OnnxDataType.FLOAT)]));
  };
  const consider = (tensor: TensorProto, problemOf: (v: Float32Array) => string | null): boolean => {
    const values = readFloatTensor(tensor);
    const problem = problemOf(values);
    if (problem) {
      result.keptFloat32.push({ tensor: tensor.name!, reason: problem });
      return false;
    }
    toHalfWithCast(tensor, values);
    return true;
  };

  if (storage.scales === 'float16') {
    for (const node of [...graph.node!]) {
      if (node.opType !== 'DequantizeLinear' || !initializers.has(node.input![0]!)) continue;
      const scale = soleFloat(node.input![1]);
      const dataType = initializers.get(node.input![0]!)!.dataType ?? 0;
      if (scale && consider(scale, (v) => scaleHalfProblem(v, dataType))) result.halfScales++;
    }
  }
  if (storage.biases === 'float16') {
    for (const layer of layers) {
      const bias = soleFloat(biasOf(graph, layer, consumers));
      if (bias && consider(bias, biasHalfProblem)) result.halfBiases++;
    }
  }
  return result;
}

/** A Conv/Gemm bias input, or the initializer of an Add that alone reads a MatMul's output. */
function biasOf(graph: GraphProto, layer: QuantLayer, consumers: Map<string, NodeProto[]>): string | undefined {
  if (layer.kind === 'conv' || layer.kind === 'gemm' || layer.kind === 'conv-transpose') return layer.node.input![2] || undefined;
  const readers = consumers.get(layer.node.output![0]!) ?? [];
  if (readers.length !== 1 || readers[0]!.opType !== 'Add') return undefined;
  const initializers = initializerMap(graph);
  return readers[0]!.input!.find((i) => i !== layer.node.output![0] && initializers.has(i));
}
