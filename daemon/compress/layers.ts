/**
 * The quantizable layers of a model: Conv, ConvTranspose, MatMul and Gemm nodes whose weight is a float32
 * initializer read by that node alone. Gemm with transB=1 is rewritten to transB=0 with the weight stored
 * transposed ([K,N]), so every matrix weight has the MatMul layout the quantizers and kernels expect.
 */
import { OnnxDataType } from '../onnx/proto-values.ts';
import {
  attr, consumersOf, floatTensor, initializerMap, intAttribute, isDefaultDomain, NameAllocator, readFloatTensor,
  setAttribute, tensorDims, type GraphProto, type NodeProto, type TensorProto,
} from './model-proto.ts';

export type LayerKind = 'conv' | 'conv-transpose' | 'matmul' | 'gemm';

export interface QuantLayer {
  /** The node's name (one is given to unnamed nodes). */
  name: string;
  node: NodeProto;
  kind: LayerKind;
  weightName: string;
  dims: number[];
  /** The activation the weight multiplies. */
  inputName: string;
  group: number;
  /** A conv whose every group sees one input channel. */
  depthwise: boolean;
  /** Axis of the stored weight along which output channels run (per-channel scales). */
  channelAxis: number;
  /** Axis along which input features run (block scales). */
  reductionAxis: number;
  params: number;
  /** Position among the quantizable layers in graph order. */
  index: number;
}

export function findQuantLayers(graph: GraphProto): QuantLayer[] {
  const initializers = initializerMap(graph);
  const consumers = consumersOf(graph);
  const names = new NameAllocator(graph);
  const layers: QuantLayer[] = [];
  for (const node of graph.node ?? []) {
    if (!isDefaultDomain(node.domain)) continue;
    const kind = ({ Conv: 'conv', ConvTranspose: 'conv-transpose', MatMul: 'matmul', Gemm: 'gemm' } as const)[node.opType as string];
    if (!kind) continue;
    const weightName = node.input?.[1];
    const weight = weightName ? initializers.get(weightName) : undefined;
    if (!weight || weight.dataType !== OnnxDataType.FLOAT || (consumers.get(weightName!) ?? []).length !== 1) continue;
    if ((consumers.get(weightName!) ?? [])[0]!.input!.filter((i) => i === weightName).length !== 1) continue;
    let dims = tensorDims(weight);
    if ((kind === 'matmul' || kind === 'gemm') && dims.length !== 2) continue;
    if ((kind === 'conv' || kind === 'conv-transpose') && dims.length < 3) continue;
    if (kind === 'gemm') {
      if (intAttribute(node, 'transA', 0) !== 0) continue;
      if (intAttribute(node, 'transB', 0) === 1) dims = storeTransposed(graph, weight, dims, node);
    }
    if (!node.name) node.name = names.take(`${node.opType}_${layers.length}`);
    const group = kind === 'conv' || kind === 'conv-transpose' ? intAttribute(node, 'group', 1) : 1;
    const inputFeatures = kind === 'conv' ? dims[1]! : kind === 'conv-transpose' ? dims[0]! / group : dims[0]!;
    layers.push({
      name: node.name,
      node,
      kind,
      weightName: weightName!,
      dims,
      inputName: node.input![0]!,
      group,
      depthwise: kind === 'conv' && group > 1 && inputFeatures === 1,
      channelAxis: kind === 'conv' ? 0 : 1,
      reductionAxis: kind === 'conv' ? 1 : 0,
      params: dims.reduce((a, b) => a * b, 1),
      index: layers.length,
    });
  }
  return layers;
}

function storeTransposed(graph: GraphProto, weight: TensorProto, dims: number[], node: NodeProto): number[] {
  const [n, k] = dims as [number, number];
  const values = readFloatTensor(weight);
  const transposed = new Float32Array(values.length);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) transposed[c * n + r] = values[r * k + c]!;
  const replacement = floatTensor(weight.name!, [k, n], transposed);
  graph.initializer = (graph.initializer ?? []).map((t) => (t === weight ? replacement : t));
  setAttribute(node, attr.int('transB', 0));
  return [k, n];
}

export function layerWeight(graph: GraphProto, layer: QuantLayer): Float32Array {
  return readFloatTensor(initializerMap(graph).get(layer.weightName)!);
}
