/**
 * Structural checks on a decoded graph: single assignment, no dangling references, no cycles; and a
 * topological order that keeps the file's order wherever the file already was in order.
 * Subgraphs (If/Loop/Scan bodies) see every value of the graphs that enclose them.
 */
import { EdgerunError } from '../errors.ts';
import type { Graph, Node } from '../graph/ir.ts';

/**
 * Throws EDGERUN_ERR_ONNX_INVALID when a value is produced twice, a node input or graph output refers to
 * nothing, or the nodes form a cycle. `outerScope` holds the names visible from enclosing graphs.
 */
export function validateGraphStructure(graph: Graph, outerScope: ReadonlySet<string> = new Set()): void {
  const defined = definedValues(graph);
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (input !== '' && !defined.has(input) && !outerScope.has(input)) {
        throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
          `node '${node.name}' (${node.opType}) input '${input}' is not a graph input, initializer or node output`,
          { node: node.name, opType: node.opType, value: input });
      }
    }
  }
  for (const output of graph.outputs) {
    if (!defined.has(output.name) && !outerScope.has(output.name)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
        `graph output '${output.name}' is not produced by any node, input or initializer`, { value: output.name });
    }
  }
  const innerScope = new Set([...outerScope, ...defined]);
  for (const node of graph.nodes) {
    for (const attribute of node.attributes.values()) {
      if (attribute.type === 'graph') validateGraphStructure(attribute.value, innerScope);
    }
  }
  topologicalSort(graph);
}

/** Every value name the graph itself defines; throws on a second definition of any name. */
function definedValues(graph: Graph): Set<string> {
  const defined = new Set<string>(graph.initializers.keys());
  for (const input of graph.inputs) defined.add(input.name);
  const producer = new Map<string, string>();
  for (const node of graph.nodes) {
    for (const output of node.outputs) {
      if (output === '') continue;
      const earlier = producer.get(output) ?? (defined.has(output) ? 'a graph input or initializer' : undefined);
      if (earlier !== undefined) {
        throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
          `value '${output}' is produced by node '${node.name}' (${node.opType}) and also by ` +
          `${producer.has(output) ? `node '${earlier}'` : earlier}`, { node: node.name, value: output });
      }
      producer.set(output, node.name);
      defined.add(output);
    }
  }
  return defined;
}

/**
 * Nodes ordered so each comes after the producers of its inputs (including values its subgraphs read
 * from this graph). Throws EDGERUN_ERR_ONNX_INVALID naming a node on a cycle. Subgraphs are not reordered
 * here; decodeModel sorts them itself.
 */
export function topologicalSort(graph: Graph): Node[] {
  const producerIndex = new Map<string, number>();
  graph.nodes.forEach((node, index) => {
    for (const output of node.outputs) if (output !== '') producerIndex.set(output, index);
  });
  const dependencies = graph.nodes.map((node) => {
    const deps: number[] = [];
    for (const name of [...node.inputs, ...subgraphFreeValues(node)]) {
      const producer = producerIndex.get(name);
      if (producer !== undefined) deps.push(producer);
    }
    return deps;
  });

  // Iterative depth-first search (models reach 10^5 nodes; recursion would overflow the stack).
  const WHITE = 0, GREY = 1, BLACK = 2;
  const state = new Uint8Array(graph.nodes.length);
  const order: Node[] = [];
  const stackNode: number[] = [];
  const stackNext: number[] = [];
  for (let root = 0; root < graph.nodes.length; root++) {
    if (state[root] !== WHITE) continue;
    state[root] = GREY;
    stackNode.push(root);
    stackNext.push(0);
    while (stackNode.length > 0) {
      const top = stackNode.length - 1;
      const current = stackNode[top];
      const deps = dependencies[current];
      if (stackNext[top] < deps.length) {
        const dep = deps[stackNext[top]++];
        if (state[dep] === GREY) {
          const node = graph.nodes[dep];
          throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
            `the graph has a cycle through node '${node.name}' (${node.opType})`, { node: node.name, opType: node.opType });
        }
        if (state[dep] === WHITE) {
          state[dep] = GREY;
          stackNode.push(dep);
          stackNext.push(0);
        }
      } else {
        state[current] = BLACK;
        order.push(graph.nodes[current]);
        stackNode.pop();
        stackNext.pop();
      }
    }
  }
  return order;
}

/** Names a node's subgraphs read from enclosing scopes: its implicit inputs. */
function subgraphFreeValues(node: Node): string[] {
  const free: string[] = [];
  for (const attribute of node.attributes.values()) {
    if (attribute.type === 'graph') free.push(...graphFreeValues(attribute.value));
  }
  return free;
}

function graphFreeValues(graph: Graph): Set<string> {
  const local = new Set<string>(graph.initializers.keys());
  for (const input of graph.inputs) local.add(input.name);
  for (const node of graph.nodes) for (const output of node.outputs) local.add(output);
  const free = new Set<string>();
  const consider = (name: string): void => {
    if (name !== '' && !local.has(name)) free.add(name);
  };
  for (const node of graph.nodes) {
    node.inputs.forEach(consider);
    subgraphFreeValues(node).forEach(consider);
  }
  for (const output of graph.outputs) consider(output.name);
  return free;
}
