/**
 * Lossless size reductions of a finished model, which matter once INT8 values are most of the file (a 2.7 MB
 * model carried ~40 KB of names and attributes): doc strings go, identical initializers are merged and unused
 * ones dropped, Conv attributes equal to their ONNX defaults (dilations 1, strides 1, pads 0, group 1) go, and
 * kernel_shape goes too (it must equal the weight's spatial dims, so runtimes read it from there), and
 * every value the graph does not expose gets a short generated name. Graph inputs and outputs keep their names,
 * and so do the nodes named in `keepNodeNames` (the quantized layers the manifest and report list); other node
 * names, which ONNX makes optional, are dropped. Graphs with subgraphs (If/Loop/Scan) are only deduplicated
 * and stripped: their outer names may be captured inside.
 */
import { createHash } from 'node:crypto';
import { intAttribute, intsAttribute, onnx, removeUnusedInitializers, type GraphProto, type ModelProto, type NodeProto } from './model-proto.ts';

export function compactModel(model: ModelProto, keepNodeNames: ReadonlySet<string>): void {
  const graph = model.graph!;
  // protobufjs writes any own field, even an empty string, so empty optional fields are deleted, not cleared.
  delete (model as { docString?: string }).docString;
  delete graph.docString;
  for (const node of graph.node ?? []) {
    delete node.docString;
    if (!node.domain) delete node.domain;
  }
  mergeIdenticalInitializers(graph);
  removeUnusedInitializers(graph);
  for (const node of graph.node ?? []) if (node.opType === 'Conv' && !node.domain) dropDefaultConvAttributes(node);
  if ((graph.node ?? []).some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0))) return;
  shortenNames(graph, keepNodeNames);
}

function mergeIdenticalInitializers(graph: GraphProto): void {
  const inputs = new Set((graph.input ?? []).map((v) => v.name));
  const firstByContent = new Map<string, string>();
  const replacement = new Map<string, string>();
  for (const t of graph.initializer ?? []) {
    if (inputs.has(t.name)) continue;
    const key = createHash('sha256').update(onnx.TensorProto.encode({ ...t, name: '' }).finish()).digest('hex');
    const first = firstByContent.get(key);
    if (first === undefined) firstByContent.set(key, t.name!);
    else replacement.set(t.name!, first);
  }
  if (replacement.size === 0) return;
  const outputs = new Set((graph.output ?? []).map((v) => v.name));
  for (const node of graph.node ?? []) node.input = (node.input ?? []).map((i) => (outputs.has(i) ? i : replacement.get(i) ?? i));
}

function dropDefaultConvAttributes(node: NodeProto): void {
  const isAll = (name: string, n: number): boolean => (intsAttribute(node, name) ?? []).every((v) => v === n);
  const defaults = {
    dilations: isAll('dilations', 1), strides: isAll('strides', 1), pads: isAll('pads', 0), group: intAttribute(node, 'group', 1) === 1,
    kernel_shape: true,
  } as Record<string, boolean>;
  node.attribute = (node.attribute ?? []).filter((a) => !defaults[a.name ?? '']);
}

/** Base-36 names in order of first appearance; names the graph exposes, or that would clash, are skipped. */
function shortenNames(graph: GraphProto, keepNodeNames: ReadonlySet<string>): void {
  const exposed = new Set([...(graph.input ?? []), ...(graph.output ?? [])].map((v) => v.name ?? ''));
  const renamed = new Map<string, string>();
  let counter = 0;
  const rename = (name: string): string => {
    if (!name || exposed.has(name)) return name;
    let short = renamed.get(name);
    if (short === undefined) {
      do short = (counter++).toString(36); while (exposed.has(short));
      renamed.set(name, short);
    }
    return short;
  };
  for (const t of graph.initializer ?? []) t.name = rename(t.name ?? '');
  for (const node of graph.node ?? []) {
    node.input = (node.input ?? []).map(rename);
    node.output = (node.output ?? []).map(rename);
    if (!keepNodeNames.has(node.name ?? '')) delete node.name;
  }
  graph.valueInfo = (graph.valueInfo ?? []).filter((v) => renamed.has(v.name ?? ''));
  for (const v of graph.valueInfo) v.name = renamed.get(v.name!)!;
}
