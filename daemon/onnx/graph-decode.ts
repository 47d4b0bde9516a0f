/** GraphProto → Graph: initializers, declared inputs/outputs, nodes (subgraphs recursively). */
import onnxProto from 'onnx-proto';
import { EdgerunError } from '../errors.ts';
import type { Dim, Graph, Node, Tensor, ValueInfo } from '../graph/ir.ts';
import { decodeAttributes } from './attribute-decode.ts';
import { normalizeConstantValue } from './constant-value.ts';
import type { DecodeContext } from './decode-context.ts';
import { elementTypeOf, onnxTypeName } from './proto-values.ts';
import { checkDims, decodeTensor } from './tensor-decode.ts';

type GraphProto = onnxProto.onnx.IGraphProto;
type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** ONNX writes the default domain as '' or 'ai.onnx'; the IR always uses ''. */
export function normalizeDomain(domain: string | null | undefined): string {
  return !domain || domain === 'ai.onnx' ? '' : domain;
}

/** `what` names the graph in errors: "graph 'main'" or "attribute 'then_branch' of node 'If_3' (If)". */
export function decodeGraph(proto: GraphProto, ctx: DecodeContext, depth: number, what: string): Graph {
  const graphName = proto.name ?? '';
  if (depth > ctx.limits.maxSubgraphDepth) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: ${what} nests subgraphs ${depth} deep, over the cap of ${ctx.limits.maxSubgraphDepth}`,
      { file: ctx.source, graph: graphName });
  }
  const nodeProtos = proto.node ?? [];
  ctx.nodeCount += nodeProtos.length;
  if (ctx.nodeCount > ctx.limits.maxNodes) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: the model has more than ${ctx.limits.maxNodes} nodes (counting subgraphs)`,
      { file: ctx.source, graph: graphName });
  }
  if ((proto.sparseInitializer ?? []).length > 0) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `${ctx.source}: ${what} has sparse initializers, which edgerun does not support`, { file: ctx.source, graph: graphName });
  }

  const initializers = new Map<string, Tensor>();
  for (const tensorProto of proto.initializer ?? []) {
    const name = tensorProto.name ?? '';
    if (!name || initializers.has(name)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
        `${ctx.source}: ${what} has ${name ? `two initializers named '${name}'` : 'an unnamed initializer'}`,
        { file: ctx.source, tensor: name });
    }
    initializers.set(name, decodeTensor(tensorProto, `initializer '${name}'`, ctx));
  }

  const inputs: ValueInfo[] = [];
  const inputNames = new Set<string>();
  for (const valueProto of proto.input ?? []) {
    const info = decodeValueInfo(valueProto, 'input', ctx);
    if (inputNames.has(info.name)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: ${what} declares input '${info.name}' twice`,
        { file: ctx.source, value: info.name });
    }
    inputNames.add(info.name);
    // Older exporters list every initializer as an input too; those are weights, not real inputs.
    if (!initializers.has(info.name)) inputs.push(info);
  }
  const outputs = (proto.output ?? []).map((valueProto) => decodeValueInfo(valueProto, 'output', ctx));

  const usedNodeNames = new Set<string>();
  const nodes = nodeProtos.map((nodeProto, index): Node => {
    const opType = nodeProto.opType ?? '';
    const domain = normalizeDomain(nodeProto.domain);
    const name = uniqueNodeName(nodeProto.name || `${opType}_${index}`, usedNodeNames);
    let attributes = decodeAttributes(nodeProto.attribute ?? [], { name, opType }, ctx,
      (subgraph, subgraphWhat) => decodeGraph(subgraph, ctx, depth + 1, subgraphWhat));
    if (opType === 'Constant' && domain === '') attributes = normalizeConstantValue(name, attributes, ctx.source);
    return {
      name,
      opType,
      domain,
      inputs: Array.from(nodeProto.input ?? []),
      outputs: Array.from(nodeProto.output ?? []),
      attributes,
    };
  });

  return { name: graphName, nodes, inputs, outputs, initializers };
}

/** Node names are for diagnostics only in ONNX and may repeat; the IR promises unique ones. */
function uniqueNodeName(wanted: string, used: Set<string>): string {
  let name = wanted;
  for (let suffix = 1; used.has(name); suffix++) name = `${wanted}_${suffix}`;
  used.add(name);
  return name;
}

function decodeValueInfo(proto: ValueInfoProto, role: 'input' | 'output', ctx: DecodeContext): ValueInfo {
  const name = proto.name ?? '';
  const what = `graph ${role} '${name}'`;
  const context = { file: ctx.source, value: name };
  if (!name) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: a graph ${role} has no name`, context);
  const tensorType = proto.type?.tensorType;
  if (!tensorType) {
    const kind = proto.type ? Object.keys(proto.type).find((key) => key.endsWith('Type')) ?? 'no type' : 'no type';
    throw new EdgerunError(proto.type ? 'EDGERUN_ERR_UNSUPPORTED_OP' : 'EDGERUN_ERR_ONNX_INVALID',
      `${ctx.source}: ${what} is ${proto.type ? `a ${kind}, not a tensor` : 'declared without a type'}`, context);
  }
  const elemType = tensorType.elemType ?? 0;
  const element = elementTypeOf(elemType);
  if (element === undefined) {
    throw new EdgerunError(elemType === 0 ? 'EDGERUN_ERR_ONNX_INVALID' : 'EDGERUN_ERR_UNSUPPORTED_OP',
      `${ctx.source}: ${what} has element type ${onnxTypeName(elemType)}, which edgerun does not support`, context);
  }
  if (!tensorType.shape) return { name, dtype: element.dtype, dims: null };
  const protoDims = tensorType.shape.dim ?? [];
  const hasValue = protoDims.map((d) => !d.dimParam && d.dimValue !== null && d.dimValue !== undefined);
  const numericDims = checkDims(protoDims.map((d, i) => (hasValue[i] ? d.dimValue : 0)), what, context, ctx);
  const dims = protoDims.map((d, i): Dim => (d.dimParam ? d.dimParam : hasValue[i] ? numericDims[i] : null));
  return { name, dtype: element.dtype, dims };
}
