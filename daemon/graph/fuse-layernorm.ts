/**
 * Rewrites the decomposed layer normalisation that PyTorch and Paddle export before opset 17
 *   μ = ReduceMean(x) ; d = x − μ ; v = ReduceMean(d²) ; y = d / √(v + ε) [· γ] [+ β]
 * into one LayerNormalization node (domain 'edgerun', latest semantics), so it runs as one kernel.
 */
import type { AnalyzedGraph } from './analyze.ts';
import { consumersOf } from './analyze.ts';
import type { Node, Tensor } from './ir.ts';

function reduceAxes(node: Node, graph: AnalyzedGraph): number[] | null {
  const attr = node.attributes.get('axes');
  if (attr?.type === 'ints') return attr.value;
  if (node.inputs[1]) {
    const axes = graph.constants.get(node.inputs[1]);
    return axes ? Array.from(axes.data) : null;
  }
  return null;
}

function isLastAxisMean(node: Node | undefined, graph: AnalyzedGraph): boolean {
  if (!node || node.opType !== 'ReduceMean' || node.domain !== '') return false;
  const keepdims = node.attributes.get('keepdims');
  if (keepdims?.type === 'int' && keepdims.value === 0) return false;
  const axes = reduceAxes(node, graph);
  const rank = graph.types.get(node.inputs[0])?.shape.length ?? 0;
  return axes !== null && axes.length === 1 && (axes[0] === -1 || axes[0] === rank - 1);
}

function scalarConstant(graph: AnalyzedGraph, name: string): number | null {
  const t = graph.constants.get(name);
  return t && t.data.length === 1 ? t.data[0] : null;
}

function otherInput(node: Node, name: string): string | null {
  if (node.inputs.length !== 2) return null;
  if (node.inputs[0] === name) return node.inputs[1];
  if (node.inputs[1] === name) return node.inputs[0];
  return null;
}

export function fuseLayerNorm(graph: AnalyzedGraph, graphOutputs: ReadonlySet<string>): { nodes: Node[]; fused: number } {
  const consumers = consumersOf(graph.nodes);
  const only = (name: string): Node | undefined => {
    const list = consumers.get(name) ?? [];
    return list.length === 1 && !graphOutputs.has(name) ? list[0] : undefined;
  };
  const removed = new Set<Node>();
  const replacement = new Map<Node, Node>();
  let fused = 0;

  for (const mean of graph.nodes) {
    if (!isLastAxisMean(mean, graph) || removed.has(mean)) continue;
    const x = mean.inputs[0];
    const sub = only(mean.outputs[0]);
    if (!sub || sub.opType !== 'Sub' || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) continue;
    const d = sub.outputs[0];
    const dConsumers = consumers.get(d) ?? [];
    if (dConsumers.length !== 2 || graphOutputs.has(d)) continue;
    const square = dConsumers.find((n) => (n.opType === 'Pow' && n.inputs[0] === d && scalarConstant(graph, n.inputs[1]) === 2)
      || (n.opType === 'Mul' && n.inputs[0] === d && n.inputs[1] === d));
    const div = dConsumers.find((n) => n.opType === 'Div' && n.inputs[0] === d);
    if (!square || !div) continue;
    const variance = only(square.outputs[0]);
    if (!isLastAxisMean(variance, graph)) continue;
    const addEps = only(variance!.outputs[0]);
    if (!addEps || addEps.opType !== 'Add') continue;
    const epsName = otherInput(addEps, variance!.outputs[0]);
    const epsilon = epsName === null ? null : scalarConstant(graph, epsName);
    if (epsilon === null) continue;
    const sqrt = only(addEps.outputs[0]);
    if (!sqrt || sqrt.opType !== 'Sqrt' || div.inputs[1] !== sqrt.outputs[0] || only(sqrt.outputs[0]) !== div) continue;

    const xType = graph.types.get(x)!;
    const width = xType.shape[xType.shape.length - 1];
    const chain: Node[] = [mean, sub, square, variance!, addEps, sqrt, div];
    let output = div.outputs[0];
    let scale: string | null = null;
    let shift: string | null = null;
    const mul = only(output);
    const isVector = (name: string | null): name is string => {
      const t = name === null ? undefined : graph.constants.get(name);
      return t !== undefined && t.data.length === width && (t.dims.length === 1 || t.dims.slice(0, -1).every((dim) => dim === 1));
    };
    if (mul && mul.opType === 'Mul' && isVector(otherInput(mul, output))) {
      scale = otherInput(mul, output);
      chain.push(mul);
      output = mul.outputs[0];
      const add = only(output);
      if (add && add.opType === 'Add' && isVector(otherInput(add, output))) {
        shift = otherInput(add, output);
        chain.push(add);
        output = add.outputs[0];
      }
    }
    const name = `${mean.name}::layernorm`;
    const flat = (tensorName: string | null, fill: number): string => {
      const id = `${name}::${fill === 1 ? 'scale' : 'bias'}`;
      const source = tensorName ? graph.constants.get(tensorName)! : undefined;
      const data = new Float32Array(width);
      if (source) data.set(source.data); else data.fill(fill);
      const tensor: Tensor = { dtype: xType.dtype, dims: [width], data };
      graph.constants.set(id, tensor);
      graph.types.set(id, { dtype: xType.dtype, shape: [width] });
      return id;
    };
    const node: Node = {
      name,
      opType: 'LayerNormalization',
      domain: 'edgerun',
      inputs: [x, flat(scale, 1), flat(shift, 0)],
      outputs: [output],
      attributes: new Map([['axis', { type: 'int', value: -1 }], ['epsilon', { type: 'float', value: epsilon }]]),
    };
    for (const n of chain) removed.add(n);
    replacement.set(chain[chain.length - 1], node);
    fused++;
  }
  const nodes: Node[] = [];
  for (const node of graph.nodes) {
    const replaced = replacement.get(node);
    if (replaced) nodes.push(replaced);
    else if (!removed.has(node)) nodes.push(node);
  }
  return { nodes, fused };
}
