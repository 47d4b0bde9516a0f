/**
 * Elementwise fusion: connected chains of elementwise nodes whose intermediate values are used nowhere
 * else become one `edgerun.FusedElementwise` node (one kernel, one pass over memory). A chain whose only
 * tensor input is the output of a Conv / ConvTranspose / MatMul / Gemm (or their quantized forms QConv /
 * QMatMul) becomes that producer's epilogue
 * (activation fused into the producer's store), so e.g. Conv → Add(3) → Clip(0,6) → Mul → Div(6) runs as
 * one kernel.
 */
import { makeFusedElementwiseNode } from '../kernels/elementwise.ts';
import { opFor } from '../kernels/registry.ts';
import type { ElementwiseArg, ElementwiseProgram, Epilogue } from '../kernels/types.ts';
import { contextFor, consumersOf, type AnalyzedGraph } from './analyze.ts';
import type { Node } from './ir.ts';

const EPILOGUE_PRODUCERS: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'MatMul', 'Gemm']);
/** The packed-weight kernels made by fuse-dequant.ts store through an epilogue the same way. */
const QUANTIZED_EPILOGUE_PRODUCERS: ReadonlySet<string> = new Set(['QMatMul', 'QConv']);

function isEpilogueProducer(node: Node): boolean {
  if (node.domain === '') return EPILOGUE_PRODUCERS.has(node.opType);
  return node.domain === 'edgerun' && QUANTIZED_EPILOGUE_PRODUCERS.has(node.opType);
}
const MAX_STEPS = 48;

export interface ElementwiseFusionResult {
  nodes: Node[];
  epilogues: Map<Node, Epilogue>;
  fusedGroups: number;
  fusedEpilogues: number;
}

interface FusionInfo {
  arity: number;
  attributes: Record<string, number>;
}

/** The inputs an elementwise node computes on (Clip's min/max inputs are captured as attributes). */
function tensorArgs(node: Node, arity?: number): string[] {
  return node.inputs.slice(0, arity ?? node.inputs.length).filter((input) => input !== '');
}

interface Group {
  root: Node;
  members: Set<Node>;
}

export function fuseElementwise(graph: AnalyzedGraph, graphOutputs: ReadonlySet<string>, maxTensorInputs: number): ElementwiseFusionResult {
  const consumers = consumersOf(graph.nodes);
  const producers = new Map<string, Node>();
  for (const node of graph.nodes) for (const output of node.outputs) producers.set(output, node);
  const attributesOf = new Map<Node, FusionInfo>();
  for (const node of graph.nodes) {
    const ctx = contextFor(node, graph.opsets, graph.types, graph.constants);
    const op = opFor(node, ctx.opset);
    if (!op.elementwise || node.outputs.length !== 1) continue;
    // Only Clip folds extra (constant) inputs into attributes; other ops must take exactly `arity` tensors.
    const tensorInputs = node.inputs.filter((input) => input !== '').length;
    if (tensorInputs !== op.elementwise.arity && node.opType !== 'Clip') continue;
    const attrs = op.elementwise.fusionAttributes ? op.elementwise.fusionAttributes(ctx) : {};
    if (attrs) attributesOf.set(node, { arity: op.elementwise.arity, attributes: attrs });
  }

  const assigned = new Set<Node>();
  const groups: Group[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const root = graph.nodes[i];
    if (assigned.has(root) || !attributesOf.has(root)) continue;
    const members = new Set<Node>([root]);
    let grew = true;
    while (grew && members.size < MAX_STEPS) {
      grew = false;
      for (const member of [...members]) {
        for (const input of tensorArgs(member, attributesOf.get(member)!.arity)) {
          const producer = producers.get(input);
          if (!producer || members.has(producer) || assigned.has(producer) || !attributesOf.has(producer)) continue;
          if (graphOutputs.has(input)) continue;
          if (!(consumers.get(input) ?? []).every((c) => members.has(c))) continue;
          if (externalInputs(new Set([...members, producer]), graph, attributesOf).length > maxTensorInputs) continue;
          members.add(producer);
          grew = true;
        }
      }
    }
    for (const member of members) assigned.add(member);
    groups.push({ root, members });
  }

  const epilogues = new Map<Node, Epilogue>();
  const replacement = new Map<Node, Node>();
  const removed = new Set<Node>();
  let fusedGroups = 0;
  let fusedEpilogues = 0;
  for (const group of groups) {
    const external = externalInputs(group.members, graph, attributesOf);
    const program = buildProgram(group, graph, external, attributesOf);
    const producer = external.length === 1 ? producers.get(external[0]) : undefined;
    const rootShape = graph.types.get(group.root.outputs[0])!.shape;
    if (producer && isEpilogueProducer(producer) && !epilogues.has(replacement.get(producer) ?? producer)
      && !graphOutputs.has(external[0])
      && (consumers.get(external[0]) ?? []).every((c) => group.members.has(c))
      && graph.types.get(external[0])!.shape.join(',') === rootShape.join(',')
      && graph.types.get(external[0])!.dtype === graph.types.get(group.root.outputs[0])!.dtype) {
      const fusedProducer: Node = { ...producer, outputs: [group.root.outputs[0], ...producer.outputs.slice(1)] };
      replacement.set(producer, fusedProducer);
      epilogues.set(fusedProducer, program);
      for (const member of group.members) removed.add(member);
      fusedEpilogues++;
      continue;
    }
    if (group.members.size < 2) continue;
    // makeFusedElementwiseNode keeps non-finite literals (e.g. -Infinity in attention masks), which JSON.stringify loses
    const fused = makeFusedElementwiseNode(`${group.root.name}::fused`, program, external, group.root.outputs[0]);
    for (const member of group.members) removed.add(member);
    replacement.set(group.root, fused);
    fusedGroups++;
  }
  const nodes: Node[] = [];
  for (const node of graph.nodes) {
    const replaced = replacement.get(node);
    if (replaced) nodes.push(replaced);
    else if (!removed.has(node)) nodes.push(node);
  }
  return { nodes, epilogues, fusedGroups, fusedEpilogues };
}

function isInlinableConstant(graph: AnalyzedGraph, name: string): boolean {
  const constant = graph.constants.get(name);
  return constant !== undefined && constant.data.length === 1;
}

/** Tensor inputs the group reads from outside (scalar constants are inlined, so they do not count). */
function externalInputs(members: Set<Node>, graph: AnalyzedGraph, attributesOf: Map<Node, FusionInfo>): string[] {
  const produced = new Set<string>();
  for (const member of members) for (const output of member.outputs) produced.add(output);
  const external: string[] = [];
  for (const member of members) {
    for (const input of tensorArgs(member, attributesOf.get(member)!.arity)) {
      if (produced.has(input) || isInlinableConstant(graph, input) || external.includes(input)) continue;
      external.push(input);
    }
  }
  return external;
}

function buildProgram(group: Group, graph: AnalyzedGraph, external: string[], attributesOf: Map<Node, FusionInfo>): ElementwiseProgram {
  const ordered = graph.nodes.filter((node) => group.members.has(node));
  const stepOf = new Map<string, number>();
  const steps = ordered.map((node, index) => {
    const info = attributesOf.get(node)!;
    const args: ElementwiseArg[] = tensorArgs(node, info.arity).map((input) => {
      const step = stepOf.get(input);
      if (step !== undefined) return { step };
      if (isInlinableConstant(graph, input)) return { literal: graph.constants.get(input)!.data[0] };
      return { input: external.indexOf(input) };
    });
    stepOf.set(node.outputs[0], index);
    return { opType: node.opType, args, attributes: info.attributes, dtype: graph.types.get(node.outputs[0])!.dtype };
  });
  return { steps, result: steps.length - 1 };
}
