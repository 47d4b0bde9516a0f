/**
 * Static analysis of a graph for concrete input shapes: shape/dtype inference for every value and
 * constant folding of every node whose inputs are all known (Constant nodes, shape subgraphs, weight
 * transforms). Nodes must be in topological order (the loader guarantees it).
 */
import { EdgerunError } from '../errors.ts';
import { opFor } from '../kernels/registry.ts';
import type { OpContext } from '../kernels/types.ts';
import { elementCount, type Graph, type Node, type Tensor, type TensorType } from './ir.ts';

export interface AnalyzedGraph {
  /** The nodes that still run on the device, in topological order (folded nodes removed). */
  nodes: Node[];
  /** Type of every value (inputs, constants, node outputs). */
  types: Map<string, TensorType>;
  /** Values known at compile time (initializers and folded outputs). */
  constants: Map<string, Tensor>;
  opsets: Map<string, number>;
  foldedNodes: number;
}

/**
 * Ops whose value depends only on their inputs' static types (shapes are static): they fold even when the
 * input is computed on the GPU, which lets the shape subgraphs behind Reshape/Expand/Slice fold away.
 */
const FOLD_FROM_TYPES: ReadonlySet<string> = new Set(['Shape', 'Size']);

/** Folding evaluates on the CPU; beyond this many output elements a node is left to the GPU. */
const MAX_FOLD_ELEMENTS = 64 * 1024 * 1024;

/** The latest ai.onnx opset whose semantics nodes synthesised by fusion passes (domain 'edgerun') follow. */
export const LATEST_OPSET = 22;

export function opsetFor(opsets: Map<string, number>, domain: string): number {
  if (domain === 'edgerun') return LATEST_OPSET;
  return opsets.get(domain) ?? opsets.get('') ?? 1;
}

export function contextFor(node: Node, opsets: Map<string, number>, types: Map<string, TensorType>, constants: Map<string, Tensor>): OpContext {
  return {
    node,
    opset: opsetFor(opsets, node.domain),
    inputs: node.inputs.map((name) => {
      if (name === '') return null;
      const type = types.get(name);
      if (!type) {
        throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `node '${node.name}' input '${name}' has no producer`, { node: node.name, input: name });
      }
      return type;
    }),
    constants: node.inputs.map((name) => (name === '' ? null : constants.get(name) ?? null)),
  };
}

export function analyzeGraph(graph: Graph, opsets: Map<string, number>, inputShapes: Map<string, number[]>): AnalyzedGraph {
  const types = new Map<string, TensorType>();
  const constants = new Map<string, Tensor>();
  for (const [name, tensor] of graph.initializers) {
    constants.set(name, tensor);
    types.set(name, { dtype: tensor.dtype, shape: tensor.dims });
  }
  for (const input of graph.inputs) {
    const shape = inputShapes.get(input.name);
    if (!shape) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `no shape given for model input '${input.name}'`, { input: input.name });
    }
    checkDeclaredShape(input.name, input.dims, shape);
    types.set(input.name, { dtype: input.dtype, shape });
  }
  for (const name of inputShapes.keys()) {
    if (!graph.inputs.some((input) => input.name === name)) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `'${name}' is not an input of the model (inputs: ${graph.inputs.map((i) => i.name).join(', ')})`, { input: name });
    }
  }

  const nodes: Node[] = [];
  let foldedNodes = 0;
  for (const node of graph.nodes) {
    const ctx = contextFor(node, opsets, types, constants);
    const op = opFor(node, ctx.opset);
    const outputTypes = op.infer(ctx);
    if (outputTypes.length < node.outputs.filter((o) => o !== '').length) {
      throw new EdgerunError('EDGERUN_ERR_SHAPE', `node '${node.name}' (${node.opType}) produces ${outputTypes.length} outputs, the graph uses ${node.outputs.length}`, { node: node.name });
    }
    const foldable = op.fold !== undefined
      && (FOLD_FROM_TYPES.has(node.opType) && node.domain === ''
        || ctx.inputs.every((type, i) => type === null || ctx.constants[i] !== null))
      && outputTypes.every((type) => elementCount(type.shape) <= MAX_FOLD_ELEMENTS);
    if (foldable) {
      const values = op.fold!(ctx, ctx.constants);
      node.outputs.forEach((name, i) => {
        if (name === '') return;
        constants.set(name, values[i]);
        types.set(name, { dtype: values[i].dtype, shape: values[i].dims });
      });
      foldedNodes++;
      continue;
    }
    node.outputs.forEach((name, i) => {
      if (name !== '') types.set(name, outputTypes[i]);
    });
    nodes.push(node);
  }
  for (const output of graph.outputs) {
    if (!types.has(output.name)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `graph output '${output.name}' is produced by no node`, { output: output.name });
    }
  }
  return { nodes, types, constants, opsets, foldedNodes };
}

function checkDeclaredShape(name: string, declared: (number | string | null)[] | null, given: number[]): void {
  for (const dim of given) {
    if (!Number.isInteger(dim) || dim < 0) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${name}': shape [${given.join(', ')}] has an invalid dim`, { input: name, shape: given });
    }
  }
  if (declared === null) return;
  if (declared.length !== given.length) {
    throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${name}' has rank ${declared.length} ([${declared.join(', ')}]), got shape [${given.join(', ')}]`, { input: name, expected: declared, shape: given });
  }
  declared.forEach((dim, i) => {
    if (typeof dim === 'number' && dim > 0 && dim !== given[i]) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${name}' dim ${i} must be ${dim} ([${declared.join(', ')}]), got shape [${given.join(', ')}]`, { input: name, expected: declared, shape: given });
    }
  });
}

/** Consumers of each value among the given nodes (graph outputs are not counted). */
export function consumersOf(nodes: Node[]): Map<string, Node[]> {
  const consumers = new Map<string, Node[]>();
  for (const node of nodes) {
    for (const input of node.inputs) {
      if (input === '') continue;
      const list = consumers.get(input);
      if (list) {
        if (!list.includes(node)) list.push(node);
      } else {
        consumers.set(input, [node]);
      }
    }
  }
  return consumers;
}
