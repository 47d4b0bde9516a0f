/**
 * Writes a layer's chosen weight format into the graph:
 *  - 'dq': the quantized initializer (int8/uint8, or int4/uint4 packed two per byte, data types 22/21) with its
 *    scale (and zero point) feeding DequantizeLinear (axis, block_size) whose output replaces the weight;
 *  - 'matmulnbits': MatMul with a 4-bit block-quantized weight becomes com.microsoft MatMulNBits;
 *  - 'fp16': a float16 initializer and a Cast back to float32 (weight-only: the model keeps float32 I/O);
 *  - 'fp32': left as it is.
 * AWQ input scales s (the weight holds W·diag(s)) add Mul(input, 1/s) in front of the layer. Scales and biases
 * are written float32 here; storage.ts turns them into float16 + Cast where the recipe's storage asks for it.
 */
import { ONNX_DATA_TYPE_INT4, ONNX_DATA_TYPE_UINT4, packInt4, packInt8 } from '../quant/packing.ts';
import type { QuantizedTensor } from '../quant/types.ts';
import { OnnxDataType } from '../onnx/proto-values.ts';
import type { QuantLayer } from './layers.ts';
import {
  attr, float16Tensor, floatTensor, makeNode, readFloatTensor, rawTensor, setOpsetVersion,
  type GraphProto, type ModelProto, type NameAllocator, type NodeProto, type TensorProto,
} from './model-proto.ts';

export const MS_DOMAIN = 'com.microsoft';

export type LayerFormat =
  | { kind: 'fp32' }
  | { kind: 'fp16' }
  | { kind: 'dq'; quantized: QuantizedTensor; inputScales?: Float32Array }
  | { kind: 'matmulnbits'; quantized: QuantizedTensor; inputScales?: Float32Array };

/** Bytes the layer's weight occupies in each format (values, scales at the precision they are stored in, zero points). */
export function quantizedBytes(q: QuantizedTensor): number {
  const count = q.values.length;
  const scales = q.scale.length;
  const valueBytes = q.spec.bits === 4 ? Math.ceil(count / 2) : count;
  const zeroBytes = q.zeroPoint ? (q.spec.bits === 4 ? Math.ceil(scales / 2) : scales) : 0;
  return valueBytes + scales * (q.spec.scaleFormat === 'float16' ? 2 : 4) + zeroBytes;
}

export function formatBytes(format: LayerFormat, params: number): number {
  switch (format.kind) {
    case 'fp32': return params * 4;
    case 'fp16': return params * 2;
    default: return quantizedBytes(format.quantized);
  }
}

/** Whether a layer and quantized tensor fit MatMulNBits: a MatMul weight [K,N], 4 bits, blocks along K. */
export function fitsMatMulNBits(layer: QuantLayer, q: QuantizedTensor): boolean {
  const g = q.spec.granularity;
  return layer.kind === 'matmul' && q.spec.bits === 4 && g.kind === 'block' && g.axis === 0;
}

export function applyLayerFormat(model: ModelProto, layer: QuantLayer, format: LayerFormat, names: NameAllocator): void {
  const graph = model.graph!;
  const index = graph.initializer!.findIndex((t) => t.name === layer.weightName);
  const weight = graph.initializer![index]!;
  const base = layer.weightName;
  switch (format.kind) {
    case 'fp32': return;
    case 'fp16': {
      const half = names.take(`${base}_fp16`);
      graph.initializer![index] = float16Tensor(half, layer.dims, readFloatTensor(weight));
      insertBefore(graph.node!, layer.node, makeNode('Cast', [half], [base], names.take(`${base}_cast`), [attr.int('to', OnnxDataType.FLOAT)]));
      return;
    }
    case 'dq': {
      if (format.inputScales) scaleLayerInput(graph, layer, format.inputScales, names);
      const { tensors, inputs } = dqTensors(format.quantized, base, names);
      graph.initializer!.splice(index, 1, ...tensors);
      const g = format.quantized.spec.granularity;
      const attributes = [attr.int('axis', g.axis)];
      if (g.kind === 'block') attributes.push(attr.int('block_size', g.blockSize));
      insertBefore(graph.node!, layer.node, makeNode('DequantizeLinear', inputs, [base], names.take(`${base}_dequantize`), attributes));
      return;
    }
    case 'matmulnbits': {
      if (format.inputScales) scaleLayerInput(graph, layer, format.inputScales, names);
      const { tensors, inputs } = matMulNBitsTensors(format.quantized, base, names);
      graph.initializer!.splice(index, 1, ...tensors);
      const q = format.quantized;
      const [k, n] = q.dims as [number, number];
      const blockSize = (q.spec.granularity as { blockSize: number }).blockSize;
      const replacement = makeNode('MatMulNBits', [layer.inputName, ...inputs], [...layer.node.output!], layer.node.name!,
        [attr.int('K', k), attr.int('N', n), attr.int('bits', 4), attr.int('block_size', blockSize)], MS_DOMAIN);
      graph.node![graph.node!.indexOf(layer.node)] = replacement;
      layer.node = replacement;
      setOpsetVersion(model, MS_DOMAIN, 1);
      return;
    }
  }
}

/** Divides the layer's input by AWQ's per-input-channel scales: Mul by 1/s, shaped [K] or [C, 1, …] for a conv. */
function scaleLayerInput(graph: GraphProto, layer: QuantLayer, scales: Float32Array, names: NameAllocator): void {
  const inverse = names.take(`${layer.weightName}_awq_inverse_scale`);
  const scaled = names.take(`${layer.inputName}_awq_scaled_for_${layer.name}`);
  const dims = layer.kind === 'conv' ? [scales.length, ...layer.dims.slice(2).map(() => 1)] : [scales.length];
  graph.initializer!.push(floatTensor(inverse, dims, Array.from(scales, (s) => 1 / s)));
  insertBefore(graph.node!, layer.node, makeNode('Mul', [layer.inputName, inverse], [scaled], names.take(`${layer.name}_awq_scale`)));
  layer.node.input![0] = scaled;
  layer.inputName = scaled;
}

function insertBefore(nodes: NodeProto[], before: NodeProto, node: NodeProto): void {
  nodes.splice(nodes.indexOf(before), 0, node);
}

function dqTensors(q: QuantizedTensor, base: string, names: NameAllocator): { tensors: TensorProto[]; inputs: string[] } {
  const signed = q.spec.scheme === 'symmetric';
  const qName = names.take(`${base}_quantized`);
  const scaleName = names.take(`${base}_scale`);
  const tensors: TensorProto[] = [];
  if (q.spec.bits === 4) {
    tensors.push(rawTensor(qName, signed ? ONNX_DATA_TYPE_INT4 : ONNX_DATA_TYPE_UINT4, q.dims, packInt4(q.values, signed)));
  } else {
    tensors.push(rawTensor(qName, signed ? OnnxDataType.INT8 : OnnxDataType.UINT8, q.dims, packInt8(q.values, signed)));
  }
  tensors.push(floatTensor(scaleName, q.scaleDims, q.scale));
  const inputs = [qName, scaleName];
  if (q.zeroPoint) {
    const zeroName = names.take(`${base}_zero_point`);
    tensors.push(q.spec.bits === 4
      ? rawTensor(zeroName, ONNX_DATA_TYPE_UINT4, q.scaleDims, packInt4(q.zeroPoint, false))
      : rawTensor(zeroName, OnnxDataType.UINT8, q.scaleDims, q.zeroPoint.slice()));
    inputs.push(zeroName);
  }
  return { tensors, inputs };
}

/** MatMulNBits layout (packing.ts): B [N, blocks, blockSize/2] unsigned nibbles, scales [N·blocks], zero points packed per column. */
function matMulNBitsTensors(q: QuantizedTensor, base: string, names: NameAllocator): { tensors: TensorProto[]; inputs: string[] } {
  const [k, n] = q.dims as [number, number];
  const blockSize = (q.spec.granularity as { blockSize: number }).blockSize;
  const blocks = Math.ceil(k / blockSize);
  const signed = q.spec.scheme === 'symmetric';
  const packed = new Uint8Array(n * blocks * (blockSize / 2));
  const scales = new Float32Array(n * blocks);
  const zeroBytesPerColumn = Math.ceil(blocks / 2);
  const zeros = q.zeroPoint ? new Uint8Array(n * zeroBytesPerColumn) : null;
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < blocks; b++) {
      const zero = q.zeroPoint ? q.zeroPoint[b * n + col]! : 8;
      scales[col * blocks + b] = q.scale[b * n + col]!;
      if (zeros) zeros[col * zeroBytesPerColumn + (b >> 1)]! |= zero << ((b & 1) * 4);
      for (let j = 0; j < blockSize; j++) {
        const row = b * blockSize + j;
        // Rows past K pad the last block with the zero point, so they dequantize to 0.
        const value = row < k ? q.values[row * n + col]! + (signed ? 8 : 0) : zero;
        packed[(col * blocks + b) * (blockSize / 2) + (j >> 1)]! |= value << ((j & 1) * 4);
      }
    }
  }
  const tensors = [
    rawTensor(names.take(`${base}_nbits`), OnnxDataType.UINT8, [n, blocks, blockSize / 2], packed),
    floatTensor(names.take(`${base}_nbits_scales`), [n * blocks], scales),
  ];
  if (zeros) tensors.push(rawTensor(names.take(`${base}_nbits_zero_points`), OnnxDataType.UINT8, [n * zeroBytesPerColumn], zeros));
  return { tensors, inputs: tensors.map((t) => t.name!) };
}
