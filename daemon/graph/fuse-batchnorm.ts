/**
 * Folds inference-mode BatchNormalization into the constant weights and bias of the Conv that feeds it:
 *   W'[m] = W[m]·γ[m]/√(σ²[m]+ε),  B'[m] = (B[m] − μ[m])·γ[m]/√(σ²[m]+ε) + β[m]
 */
import type { AnalyzedGraph } from './analyze.ts';
import { consumersOf } from './analyze.ts';
import { Attributes } from './attributes.ts';
import type { Node, Tensor } from './ir.ts';

export function foldBatchNormIntoConv(graph: AnalyzedGraph, graphOutputs: ReadonlySet<string>): { nodes: Node[]; folded: number } {
  const consumers = consumersOf(graph.nodes);
  const producers = new Map<string, Node>();
  for (const node of graph.nodes) for (const output of node.outputs) producers.set(output, node);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  let folded = 0;

  for (const bn of graph.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.domain !== '' || bn.outputs.filter((o) => o !== '').length !== 1) continue;
    const attrs = new Attributes(bn);
    if (attrs.int('training_mode', 0) !== 0) continue;
    const conv = producers.get(bn.inputs[0]);
    if (!conv || conv.opType !== 'Conv' || conv.domain !== '' || replaced.has(conv)) continue;
    if (graphOutputs.has(conv.outputs[0]) || (consumers.get(conv.outputs[0]) ?? []).length !== 1) continue;
    const weight = graph.constants.get(conv.inputs[1]);
    const bias = conv.inputs[2] ? graph.constants.get(conv.inputs[2]) : undefined;
    if (!weight || (conv.inputs[2] && !bias)) continue;
    const [scale, shift, mean, variance] = bn.inputs.slice(1, 5).map((name) => graph.constants.get(name));
    if (!scale || !shift || !mean || !variance) continue;
    const outChannels = weight.dims[0];
    if ([scale, shift, mean, variance].some((t) => t.data.length !== outChannels)) continue;

    const epsilon = attrs.float('epsilon', 1e-5);
    const perChannel = weight.data.length / outChannels;
    const newWeight = new Float32Array(weight.data.length);
    const newBias = new Float32Array(outChannels);
    for (let m = 0; m < outChannels; m++) {
      const factor = scale.data[m] / Math.sqrt(variance.data[m] + epsilon);
      for (let k = 0; k < perChannel; k++) newWeight[m * perChannel + k] = weight.data[m * perChannel + k] * factor;
      newBias[m] = ((bias ? bias.data[m] : 0) - mean.data[m]) * factor + shift.data[m];
    }
    const weightName = `${conv.name}::bn_weight`;
    const biasName = `${conv.name}::bn_bias`;
    const weightTensor: Tensor = { dtype: weight.dtype, dims: weight.dims, data: newWeight };
    const biasTensor: Tensor = { dtype: weight.dtype, dims: [outChannels], data: newBias };
    graph.constants.set(weightName, weightTensor);
    graph.constants.set(biasName, biasTensor);
    graph.types.set(weightName, { dtype: weight.dtype, shape: weight.dims });
    graph.types.set(biasName, { dtype: weight.dtype, shape: [outChannels] });
    replaced.set(conv, {
      ...conv,
      inputs: [conv.inputs[0], weightName, biasName],
      outputs: [bn.outputs[0]],
    });
    removed.add(bn);
    folded++;
  }
  const nodes = graph.nodes.filter((node) => !removed.has(node)).map((node) => replaced.get(node) ?? node);
  return { nodes, folded };
}
