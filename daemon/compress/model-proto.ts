/**
 * Editing ONNX at the ModelProto level: the compressor decodes the protobuf, changes only what it means to
 * (weights, nodes, opset imports) and encodes it again, so metadata, doc strings, value infos and anything
 * edgerun's own IR does not model survive untouched.
 */
import onnxProto from 'onnx-proto';
import { EdgerunError } from '../errors.ts';
import { floatToHalfBits, halfBitsToFloat } from '../onnx/half-float.ts';
import { OnnxDataType, protoIntToNumber, type ProtoInt } from '../onnx/proto-values.ts';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
const AttributeType = onnx.AttributeProto.AttributeType;

export function decodeModelProto(bytes: Uint8Array, source: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_READ', `${source}: not a readable ONNX model (${(error as Error).message})`,
      { file: source }, { cause: error });
  }
  if (!model.graph) throw new EdgerunError('EDGERUN_ERR_ONNX_READ', `${source}: not an ONNX model (no graph found)`, { file: source });
  return model;
}

export function encodeModelProto(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** A deep copy (encode + decode), so a pass can be tried on a model without touching the original. */
export function cloneModelProto(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(encodeModelProto(model));
}

export function graphOf(model: ModelProto): GraphProto {
  return model.graph!;
}

export function isDefaultDomain(domain: string | null | undefined): boolean {
  return !domain || domain === 'ai.onnx';
}

export function opsetVersion(model: ModelProto, domain = ''): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => (domain === '' ? isDefaultDomain(o.domain) : o.domain === domain));
  return entry ? protoIntToNumber(entry.version as ProtoInt) : undefined;
}

export function setOpsetVersion(model: ModelProto, domain: string, version: number): void {
  const entry = (model.opsetImport ?? []).find((o) => (domain === '' ? isDefaultDomain(o.domain) : o.domain === domain));
  if (entry) entry.version = version;
  else model.opsetImport = [...(model.opsetImport ?? []), onnx.OperatorSetIdProto.create({ domain, version })];
}

// ---------- attributes ----------

export function findAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = findAttribute(node, name);
  return attribute ? protoIntToNumber(attribute.i as ProtoInt) : fallback;
}

export function intsAttribute(node: NodeProto, name: string): number[] | undefined {
  const attribute = findAttribute(node, name);
  return attribute ? (attribute.ints ?? []).map((v) => protoIntToNumber(v as ProtoInt)) : undefined;
}

export function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = findAttribute(node, name);
  return attribute ? (attribute.f ?? 0) : fallback;
}

export function stringAttribute(node: NodeProto, name: string): string | undefined {
  const attribute = findAttribute(node, name);
  return attribute?.s ? new TextDecoder().decode(attribute.s) : undefined;
}

export function removeAttribute(node: NodeProto, name: string): void {
  node.attribute = (node.attribute ?? []).filter((a) => a.name !== name);
}

export function setAttribute(node: NodeProto, attribute: AttributeProto): void {
  removeAttribute(node, attribute.name!);
  node.attribute = [...(node.attribute ?? []), onnx.AttributeProto.create(attribute)];
}

export const attr = {
  int: (name: string, i: number): AttributeProto => ({ name, type: AttributeType.INT, i }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AttributeType.INTS, ints }),
  float: (name: string, f: number): AttributeProto => ({ name, type: AttributeType.FLOAT, f }),
  string: (name: string, s: string): AttributeProto => ({ name, type: AttributeType.STRING, s: new TextEncoder().encode(s) }),
};

export function makeNode(opType: string, inputs: string[], outputs: string[], name: string,
  attributes: AttributeProto[] = [], domain = ''): NodeProto {
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name, domain, attribute: attributes.map((a) => onnx.AttributeProto.create(a)) });
}

// ---------- tensors ----------

export function tensorDims(tensor: TensorProto): number[] {
  return (tensor.dims ?? []).map((d) => protoIntToNumber(d as ProtoInt));
}

export function elementCountOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function rawView(tensor: TensorProto): DataView | undefined {
  const raw = tensor.rawData;
  return raw && raw.length > 0 ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
}

function unreadable(tensor: TensorProto, reason: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `tensor '${tensor.name ?? ''}' ${reason}`, { tensor: tensor.name ?? '' });
}

/** A float tensor's values as float32 (from float32, float16 or float64 data, raw or typed). */
export function readFloatTensor(tensor: TensorProto): Float32Array {
  if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw unreadable(tensor, 'uses external data, which the compressor does not read');
  const count = elementCountOf(tensorDims(tensor));
  const view = rawView(tensor);
  const out = new Float32Array(count);
  switch (tensor.dataType) {
    case OnnxDataType.FLOAT:
      if (view) for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      else out.set((tensor.floatData ?? []).slice(0, count));
      break;
    case OnnxDataType.FLOAT16:
      if (view) for (let i = 0; i < count; i++) out[i] = halfBitsToFloat(view.getUint16(i * 2, true));
      else for (let i = 0; i < count; i++) out[i] = halfBitsToFloat(tensor.int32Data![i]!);
      break;
    case OnnxDataType.DOUBLE:
      if (view) for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true);
      else out.set((tensor.doubleData ?? []).slice(0, count));
      break;
    default:
      throw unreadable(tensor, `has data type ${tensor.dataType}, not a float type`);
  }
  if (view && view.byteLength < count * ({ 1: 4, 10: 2, 11: 8 } as Record<number, number>)[tensor.dataType]!) {
    throw unreadable(tensor, 'holds fewer bytes than its dims need');
  }
  return out;
}

/** An integer tensor's values (int64 or int32) as numbers. */
export function readIntTensor(tensor: TensorProto): number[] {
  const count = elementCountOf(tensorDims(tensor));
  const view = rawView(tensor);
  if (tensor.dataType === OnnxDataType.INT64) {
    if (view) return Array.from({ length: count }, (_, i) => Number(view.getBigInt64(i * 8, true)));
    return (tensor.int64Data ?? []).map((v) => protoIntToNumber(v as ProtoInt));
  }
  if (tensor.dataType === OnnxDataType.INT32) {
    if (view) return Array.from({ length: count }, (_, i) => view.getInt32(i * 4, true));
    return [...(tensor.int32Data ?? [])];
  }
  throw unreadable(tensor, `has data type ${tensor.dataType}, not int64 or int32`);
}

export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  const data = Float32Array.from(values);
  return onnx.TensorProto.create({ name, dataType: OnnxDataType.FLOAT, dims: [...dims], rawData: new Uint8Array(data.buffer) });
}

export function float16Tensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = floatToHalfBits(values[i]!);
  return onnx.TensorProto.create({ name, dataType: OnnxDataType.FLOAT16, dims: [...dims], rawData: new Uint8Array(bits.buffer) });
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return onnx.TensorProto.create({ name, dataType: OnnxDataType.INT64, dims: [...dims], rawData: new Uint8Array(data.buffer) });
}

/** A tensor of already-encoded bytes: int8/uint8 values, or int4/uint4 (data types 22/21) packed by packing.ts. */
export function rawTensor(name: string, dataType: number, dims: readonly number[], rawData: Uint8Array): TensorProto {
  return onnx.TensorProto.create({ name, dataType, dims: [...dims], rawData });
}

/** Bytes a tensor occupies in the file: its raw data or typed fields at their element size. */
export function tensorStoredBytes(tensor: TensorProto): number {
  if (tensor.rawData && tensor.rawData.length > 0) return tensor.rawData.length;
  const size = { [OnnxDataType.FLOAT]: 4, [OnnxDataType.DOUBLE]: 8, [OnnxDataType.INT64]: 8, [OnnxDataType.FLOAT16]: 2 }[tensor.dataType ?? 0] ?? 4;
  return elementCountOf(tensorDims(tensor)) * size;
}

// ---------- graph structure ----------

export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  return new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
}

export function consumersOf(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const node of graph.node ?? []) {
    for (const input of node.input ?? []) {
      if (!input) continue;
      const list = map.get(input) ?? [];
      if (!list.includes(node)) list.push(node);
      map.set(input, list);
    }
  }
  return map;
}

export function producerOf(graph: GraphProto): Map<string, NodeProto> {
  const map = new Map<string, NodeProto>();
  for (const node of graph.node ?? []) for (const output of node.output ?? []) if (output) map.set(output, node);
  return map;
}

export function isGraphOutput(graph: GraphProto, name: string): boolean {
  return (graph.output ?? []).some((o) => o.name === name);
}

/** Hands out names no value, node or initializer in the graph uses yet. */
export class NameAllocator {
  private readonly used = new Set<string>();

  constructor(graph: GraphProto) {
    for (const node of graph.node ?? []) {
      if (node.name) this.used.add(node.name);
      for (const name of [...(node.input ?? []), ...(node.output ?? [])]) this.used.add(name);
    }
    for (const t of graph.initializer ?? []) this.used.add(t.name ?? '');
    for (const v of [...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])]) this.used.add(v.name ?? '');
  }

  take(base: string): string {
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }
}

/**
 * Turns every Constant node holding a tensor (`value`) into an initializer of the same name. Exporters such as
 * paddle2onnx store all weights as Constant nodes; as initializers they are recognisable as weights, and
 * an initializer is what DequantizeLinear's quantized input must be for runtimes to fold it.
 */
export function constantsToInitializers(graph: GraphProto): number {
  const kept: NodeProto[] = [];
  let moved = 0;
  for (const node of graph.node ?? []) {
    const value = node.opType === 'Constant' && isDefaultDomain(node.domain) && node.attribute?.length === 1
      ? findAttribute(node, 'value') : undefined;
    if (value?.t && node.output?.length === 1) {
      graph.initializer = [...(graph.initializer ?? []), onnx.TensorProto.create({ ...value.t, name: node.output[0] })];
      moved++;
    } else {
      kept.push(node);
    }
  }
  graph.node = kept;
  return moved;
}

/** Drops initializers no node (in this graph or a subgraph) reads and that are not graph outputs. */
export function removeUnusedInitializers(graph: GraphProto): void {
  const read = new Set<string>();
  const visit = (g: GraphProto): void => {
    for (const node of g.node ?? []) {
      for (const input of node.input ?? []) read.add(input);
      for (const a of node.attribute ?? []) {
        if (a.g) visit(a.g);
        for (const sub of a.graphs ?? []) visit(sub);
      }
    }
    for (const o of g.output ?? []) read.add(o.name ?? '');
  };
  visit(graph);
  graph.initializer = (graph.initializer ?? []).filter((t) => read.has(t.name ?? ''));
}
