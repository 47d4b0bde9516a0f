/**
 * Adds a per-output bias delta (daemon/quant/bias-correction.ts) to a quantized layer: into the Conv/Gemm bias
 * input, into the bias of an Add that follows a MatMul, or as a new bias (input or Add node) where none exists.
 */
import type { QuantLayer } from './layers.ts';
import {
  consumersOf, floatTensor, initializerMap, makeNode, readFloatTensor, tensorDims, type GraphProto, type NameAllocator,
} from './model-proto.ts';

export function addBiasDelta(graph: GraphProto, layer: QuantLayer, delta: Float32Array, names: NameAllocator): void {
  const initializers = initializerMap(graph);
  const node = layer.node;
  const replaceOrAdd = (name: string | undefined, dims: number[]): string => {
    const existing = name ? initializers.get(name) : undefined;
    const values = existing ? readFloatTensor(existing) : new Float32Array(delta.length);
    for (let i = 0; i < delta.length; i++) values[i] += delta[i]!;
    const target = existing ? name! : names.take(`${layer.name}_bias`);
    const tensor = floatTensor(target, existing ? tensorDims(existing) : dims, values);
    if (existing) graph.initializer = graph.initializer!.map((t) => (t === existing ? tensor : t));
    else graph.initializer!.push(tensor);
    return target;
  };
  if (layer.kind === 'conv' || layer.kind === 'gemm') {
    const biasName = node.input![2];
    const shared = biasName && (consumersOf(graph).get(biasName) ?? []).length > 1;
    const usable = biasName && !shared && initializers.has(biasName) && readFloatTensor(initializers.get(biasName)!).length === delta.length;
    if (biasName && !usable) return;
    node.input = [node.input![0]!, node.input![1]!, replaceOrAdd(biasName, [delta.length])];
    return;
  }
  // MatMul: an Add right after it with a [N] initializer is the layer's bias.
  const output = node.output![0]!;
  const consumers = consumersOf(graph).get(output) ?? [];
  const add = consumers.length === 1 && consumers[0]!.opType === 'Add' ? consumers[0]! : undefined;
  const addBias = add?.input?.find((i) => i !== output && initializers.has(i)
    && tensorDims(initializers.get(i)!).reduce((a, b) => a * b, 1) === delta.length
    && (consumersOf(graph).get(i) ?? []).length === 1);
  if (addBias) {
    replaceOrAdd(addBias, [delta.length]);
    return;
  }
  const corrected = names.take(`${output}_uncorrected`);
  node.output = [corrected];
  const bias = replaceOrAdd(undefined, [delta.length]);
  const nodes = graph.node!;
  nodes.splice(nodes.indexOf(node) + 1, 0, makeNode('Add', [corrected, bias], [output], names.take(`${layer.name}_bias_correction`)));
}
