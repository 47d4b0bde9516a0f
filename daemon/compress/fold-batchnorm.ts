/**
 * Folds inference-mode BatchNormalization into the Conv that feeds it: W'[m] = W[m]·γ[m]/√(σ²[m]+ε),
 * b'[m] = (b[m] − μ[m])·γ[m]/√(σ²[m]+ε) + β[m]. Done before quantizing so the quantized conv weights carry
 * the normalisation and the BN parameters are neither stored nor counted.
 */
import {
  consumersOf, floatAttribute, floatTensor, initializerMap, isDefaultDomain, isGraphOutput, NameAllocator,
  producerOf, readFloatTensor, removeUnusedInitializers, tensorDims, type GraphProto, type NodeProto,
} from './model-proto.ts';

export function foldBatchNorms(graph: GraphProto): number {
  const initializers = initializerMap(graph);
  const producers = producerOf(graph);
  const consumers = consumersOf(graph);
  const names = new NameAllocator(graph);
  const removed = new Set<NodeProto>();
  for (const bn of graph.node ?? []) {
    if (bn.opType !== 'BatchNormalization' || !isDefaultDomain(bn.domain) || (bn.output ?? []).filter(Boolean).length !== 1) continue;
    const conv = producers.get(bn.input![0]!);
    if (!conv || conv.opType !== 'Conv' || !isDefaultDomain(conv.domain)) continue;
    const convOut = conv.output![0]!;
    if ((consumers.get(convOut) ?? []).length !== 1 || isGraphOutput(graph, convOut)) continue;
    const weight = initializers.get(conv.input![1]!);
    const params = bn.input!.slice(1, 5).map((name) => initializers.get(name));
    if (!weight || params.some((p) => !p) || (consumers.get(weight.name!) ?? []).length !== 1) continue;
    const bias = conv.input![2] ? initializers.get(conv.input![2]) : undefined;
    if (conv.input![2] && !bias) continue;

    const dims = tensorDims(weight);
    const channels = dims[0]!;
    const perChannel = dims.slice(1).reduce((a, b) => a * b, 1);
    const [gamma, beta, mean, variance] = params.map((p) => readFloatTensor(p!));
    if ([gamma, beta, mean, variance].some((p) => p!.length !== channels)) continue;
    const epsilon = floatAttribute(bn, 'epsilon', 1e-5);
    const w = readFloatTensor(weight);
    const b = bias ? readFloatTensor(bias) : new Float32Array(channels);
    const newBias = new Float32Array(channels);
    for (let m = 0; m < channels; m++) {
      const factor = gamma![m]! / Math.sqrt(variance![m]! + epsilon);
      for (let i = 0; i < perChannel; i++) w[m * perChannel + i]! *= factor;
      newBias[m] = (b[m]! - mean![m]!) * factor + beta![m]!;
    }
    const folded = floatTensor(weight.name!, dims, w);
    graph.initializer = (graph.initializer ?? []).map((t) => (t === weight ? folded : t));
    initializers.set(weight.name!, folded);
    const biasName = names.take(`${conv.name || weight.name}_folded_bias`);
    graph.initializer!.push(floatTensor(biasName, [channels], newBias));
    conv.input = [conv.input![0]!, weight.name!, biasName];
    conv.output = [bn.output![0]!];
    removed.add(bn);
  }
  graph.node = (graph.node ?? []).filter((n) => !removed.has(n));
  if (removed.size > 0) removeUnusedInitializers(graph);
  return removed.size;
}
