/** AttributeProto → the tagged AttributeValue union, with caps on counts and lengths. */
import onnxProto from 'onnx-proto';
import { EdgerunError } from '../errors.ts';
import type { AttributeValue, Graph } from '../graph/ir.ts';
import type { DecodeContext } from './decode-context.ts';
import { protoIntToInt32 } from './proto-values.ts';
import { decodeTensor } from './tensor-decode.ts';

type AttributeProto = onnxProto.onnx.IAttributeProto;
type GraphProto = onnxProto.onnx.IGraphProto;
const AttributeType = onnxProto.onnx.AttributeProto.AttributeType;

export interface NodeLabel {
  name: string;
  opType: string;
}

/** Decodes one subgraph attribute; supplied by the graph decoder so the two modules do not import each other. */
export type SubgraphDecoder = (proto: GraphProto, what: string) => Graph;

const utf8 = new TextDecoder('utf-8');

export function decodeAttributes(protos: readonly AttributeProto[], node: NodeLabel, ctx: DecodeContext,
  decodeSubgraph: SubgraphDecoder): Map<string, AttributeValue> {
  const nodeContext = { file: ctx.source, node: node.name, opType: node.opType };
  if (protos.length > ctx.limits.maxAttributesPerNode) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${ctx.source}: node '${node.name}' (${node.opType}) has ${protos.length} attributes, over the cap of ` +
      `${ctx.limits.maxAttributesPerNode}`, nodeContext);
  }
  const attributes = new Map<string, AttributeValue>();
  for (const proto of protos) {
    const name = proto.name ?? '';
    if (attributes.has(name)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
        `${ctx.source}: node '${node.name}' (${node.opType}) has attribute '${name}' twice`, { ...nodeContext, attribute: name });
    }
    attributes.set(name, decodeAttribute(proto, name, node, ctx, decodeSubgraph));
  }
  return attributes;
}

function decodeAttribute(proto: AttributeProto, name: string, node: NodeLabel, ctx: DecodeContext,
  decodeSubgraph: SubgraphDecoder): AttributeValue {
  const what = `attribute '${name}' of node '${node.name}' (${node.opType})`;
  const context = { file: ctx.source, node: node.name, opType: node.opType, attribute: name };
  const checkCount = (count: number): void => {
    if (count > ctx.limits.maxAttributeElements) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
        `${ctx.source}: ${what} has ${count} elements, over the cap of ${ctx.limits.maxAttributeElements}`, context);
    }
  };
  const decodeString = (bytes: Uint8Array | null | undefined): string => {
    const length = bytes?.length ?? 0;
    if (length > ctx.limits.maxStringLength) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
        `${ctx.source}: ${what} holds a ${length}-byte string, over the cap of ${ctx.limits.maxStringLength}`, context);
    }
    return bytes ? utf8.decode(bytes) : '';
  };

  switch (attributeType(proto)) {
    case AttributeType.FLOAT: return { type: 'float', value: proto.f ?? 0 };
    case AttributeType.INT: return { type: 'int', value: protoIntToInt32(proto.i) };
    case AttributeType.STRING: return { type: 'string', value: decodeString(proto.s) };
    case AttributeType.TENSOR: {
      if (!proto.t) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: ${what} has no tensor`, context);
      return { type: 'tensor', value: decodeTensor(proto.t, what, ctx) };
    }
    case AttributeType.GRAPH: {
      if (!proto.g) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${ctx.source}: ${what} has no graph`, context);
      return { type: 'graph', value: decodeSubgraph(proto.g, what) };
    }
    case AttributeType.FLOATS: {
      const values = proto.floats ?? [];
      checkCount(values.length);
      return { type: 'floats', value: Array.from(values) };
    }
    case AttributeType.INTS: {
      const values = proto.ints ?? [];
      checkCount(values.length);
      return { type: 'ints', value: values.map(protoIntToInt32) };
    }
    case AttributeType.STRINGS: {
      const values = proto.strings ?? [];
      checkCount(values.length);
      return { type: 'strings', value: values.map(decodeString) };
    }
    default: {
      const typeName = AttributeType[attributeType(proto)] ?? String(proto.type);
      throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
        `${ctx.source}: ${what} has type ${typeName}, which edgerun does not support`, context);
    }
  }
}

/** Old exporters leave `type` unset; the field that carries a value then tells the type. */
function attributeType(proto: AttributeProto): number {
  if (proto.type) return proto.type;
  if (proto.ints && proto.ints.length > 0) return AttributeType.INTS;
  if (proto.floats && proto.floats.length > 0) return AttributeType.FLOATS;
  if (proto.strings && proto.strings.length > 0) return AttributeType.STRINGS;
  if (proto.t) return AttributeType.TENSOR;
  if (proto.g) return AttributeType.GRAPH;
  if (proto.s && proto.s.length > 0) return AttributeType.STRING;
  if (proto.i !== undefined && protoIntToInt32(proto.i) !== 0) return AttributeType.INT;
  return AttributeType.FLOAT;
}
