/**
 * A small typed builder for ONNX test models (onnx-proto), producing files onnxruntime-node loads.
 *
 *   const bytes = new ModelBuilder({ opset: 17 })
 *     .input('x', 'float32', [1, 4])
 *     .initializer('w', 'float32', [4, 2], [...])
 *     .node('MatMul', ['x', 'w'], ['y'])
 *     .output('y', 'float32', [1, 2])
 *     .toBytes();
 *
 * Numeric attributes: an integer becomes INT (a whole-number array INTS), anything else FLOAT(S); wrap a
 * value in floatAttr/floatsAttr to force FLOAT(S) (e.g. alpha = 1).
 */
import onnxProto from 'onnx-proto';
import type { Dim, DType } from '../../daemon/graph/ir.ts';
import { floatToHalfBits } from '../../daemon/onnx/half-float.ts';
import { onnxTypeOf } from '../../daemon/onnx/proto-values.ts';
import { packInt4 } from '../../daemon/quant/packing.ts';

export const { onnx } = onnxProto;
type AttributeProto = onnxProto.onnx.IAttributeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type ValueInfoProto = onnxProto.onnx.IValueInfoProto;
type NodeProto = onnxProto.onnx.INodeProto;
const AttributeType = onnx.AttributeProto.AttributeType;

export type TensorValues = ArrayLike<number> | BigInt64Array | readonly bigint[];

export interface TensorLike {
  dtype: DType;
  dims: readonly number[];
  data: TensorValues;
}

interface Wrapped<K extends string, V> { readonly kind: K; readonly value: V }
export type FloatAttr = Wrapped<'float', number>;
export type FloatsAttr = Wrapped<'floats', readonly number[]>;
export type GraphAttr = Wrapped<'graph', GraphBuilder>;
export type RawAttr = Wrapped<'raw', AttributeProto>;

export function floatAttr(value: number): FloatAttr { return { kind: 'float', value }; }
export function floatsAttr(value: readonly number[]): FloatsAttr { return { kind: 'floats', value }; }
export function graphAttr(value: GraphBuilder): GraphAttr { return { kind: 'graph', value }; }
/** An AttributeProto written as given (name is filled in), for crafting attributes the helpers cannot. */
export function rawAttr(value: AttributeProto): RawAttr { return { kind: 'raw', value }; }

export type AttrValue = number | bigint | readonly number[] | string | readonly string[] | TensorLike
  | FloatAttr | FloatsAttr | GraphAttr | RawAttr;

export interface TensorEncodingOptions {
  /** 'raw' (default, as PyTorch writes) uses raw_data; 'typed' the float_data/int32_data/int64_data/... fields. */
  encoding?: 'raw' | 'typed';
}

/** A graph under construction; ModelBuilder adds the model wrapper, GraphBuilder alone is a subgraph body. */
export class GraphBuilder {
  protected readonly inputs: ValueInfoProto[] = [];
  protected readonly outputs: ValueInfoProto[] = [];
  protected readonly initializers: TensorProto[] = [];
  protected readonly nodes: NodeProto[] = [];

  constructor(readonly name = 'graph') {}

  /** dims null: no shape at all; a null entry: an unknown dim; a string: a symbolic dim. */
  input(name: string, dtype: DType, dims: readonly Dim[] | null): this {
    this.inputs.push(valueInfo(name, dtype, dims));
    return this;
  }

  output(name: string, dtype: DType, dims?: readonly Dim[] | null): this {
    this.outputs.push(valueInfo(name, dtype, dims ?? null));
    return this;
  }

  initializer(name: string, dtype: DType, dims: readonly number[], values: TensorValues,
    options: TensorEncodingOptions = {}): this {
    this.initializers.push(tensorProto(name, dtype, dims, values, options));
    return this;
  }

  /** Adds a hand-made TensorProto as an initializer (for malformed-model tests). */
  initializerProto(proto: TensorProto): this {
    this.initializers.push(proto);
    return this;
  }

  node(opType: string, inputs: readonly string[], outputs: readonly string[],
    attributes: Record<string, AttrValue> = {}, options: { name?: string; domain?: string } = {}): this {
    this.nodes.push({
      opType,
      input: [...inputs],
      output: [...outputs],
      name: options.name ?? '',
      domain: options.domain ?? '',
      attribute: Object.entries(attributes).map(([attrName, value]) => attributeProto(attrName, value)),
    });
    return this;
  }

  /** A Constant node holding the given tensor (the `value` attribute). */
  constant(output: string, dtype: DType, dims: readonly number[], values: TensorValues): this {
    return this.node('Constant', [], [output], { value: { dtype, dims, data: values } });
  }

  toGraphProto(): GraphProto {
    return {
      name: this.name,
      input: [...this.inputs],
      output: [...this.outputs],
      initializer: [...this.initializers],
      node: [...this.nodes],
    };
  }
}

export interface ModelBuilderOptions {
  /** ai.onnx opset version. */
  opset: number;
  /** Default: 8, or 10 for opset 21 and later (the IR version those opsets came with). */
  irVersion?: number;
  /** Further opset imports, e.g. { 'com.microsoft': 1 }. */
  domains?: Record<string, number>;
  graphName?: string;
}

export class ModelBuilder extends GraphBuilder {
  constructor(private readonly options: ModelBuilderOptions) {
    super(options.graphName ?? 'main');
  }

  toProto(): onnxProto.onnx.IModelProto {
    const { opset, domains = {} } = this.options;
    return {
      irVersion: this.options.irVersion ?? (opset >= 21 ? 10 : 8),
      producerName: 'edgerun-test-builder',
      opsetImport: [{ domain: '', version: opset },
        ...Object.entries(domains).map(([domain, version]) => ({ domain, version }))],
      graph: this.toGraphProto(),
    };
  }

  toBytes(): Uint8Array {
    return onnx.ModelProto.encode(onnx.ModelProto.create(this.toProto())).finish();
  }
}

function valueInfo(name: string, dtype: DType, dims: readonly Dim[] | null): ValueInfoProto {
  const tensorType: onnxProto.onnx.TypeProto.ITensor = { elemType: onnxTypeOf(dtype) };
  if (dims !== null) {
    tensorType.shape = {
      dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})),
    };
  }
  return { name, type: { tensorType } };
}

function attributeProto(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? { name, type: AttributeType.INT, i: value } : { name, type: AttributeType.FLOAT, f: value };
  }
  if (typeof value === 'bigint') return { name, type: AttributeType.INT, i: toLong(value) };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (isArray(value)) {
    if (value.every((v) => typeof v === 'string')) {
      if (value.length > 0) {
        return { name, type: AttributeType.STRINGS, strings: (value as string[]).map((s) => new TextEncoder().encode(s)) };
      }
    }
    const numbers = value as readonly number[];
    return numbers.every(Number.isInteger)
      ? { name, type: AttributeType.INTS, ints: [...numbers] }
      : { name, type: AttributeType.FLOATS, floats: [...numbers] };
  }
  if ('kind' in value) {
    switch (value.kind) {
      case 'float': return { name, type: AttributeType.FLOAT, f: value.value };
      case 'floats': return { name, type: AttributeType.FLOATS, floats: [...value.value] };
      case 'graph': return { name, type: AttributeType.GRAPH, g: value.value.toGraphProto() };
      case 'raw': return { ...value.value, name };
    }
  }
  return { name, type: AttributeType.TENSOR, t: tensorProto(name, value.dtype, value.dims, value.data) };
}

function isArray(value: AttrValue): value is readonly number[] | readonly string[] {
  return Array.isArray(value);
}

/** Builds a TensorProto; values are given in the dtype's natural JS form (bool as 0/1, int64 as number or bigint). */
export function tensorProto(name: string, dtype: DType, dims: readonly number[], values: TensorValues,
  options: TensorEncodingOptions = {}): TensorProto {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`tensor '${name}': dims [${dims}] need ${count} values, got ${values.length}`);
  const proto: TensorProto = { name, dataType: onnxTypeOf(dtype), dims: [...dims] };
  const list = Array.from(values as ArrayLike<number | bigint>);
  if (options.encoding === 'typed') return { ...proto, ...typedFields(dtype, list) };
  return { ...proto, rawData: rawBytes(dtype, list) };
}

function typedFields(dtype: DType, list: (number | bigint)[]): Partial<TensorProto> {
  const numbers = (): number[] => list.map(Number);
  switch (dtype) {
    case 'float32': return { floatData: numbers() };
    case 'float64': return { doubleData: numbers() };
    case 'int64': return { int64Data: list.map((v) => toLong(BigInt(v))) };
    case 'uint32': case 'uint64': return { uint64Data: list.map((v) => toLong(BigInt(v), true)) };
    case 'float16': return { int32Data: numbers().map(floatToHalfBits) };
    case 'int4': case 'uint4': return { int32Data: [...packInt4(numbers(), dtype === 'int4')] };
    case 'bfloat16': return { int32Data: numbers().map(floatToBfloat16Bits) };
    default: return { int32Data: numbers() };
  }
}

function rawBytes(dtype: DType, list: (number | bigint)[]): Uint8Array {
  if (dtype === 'int4' || dtype === 'uint4') return packInt4(list.map(Number), dtype === 'int4');
  const size = { float32: 4, float64: 8, float16: 2, bfloat16: 2, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4,
    uint32: 4, int64: 8, uint64: 8, bool: 1, int4: 0, uint4: 0 }[dtype];
  const out = new Uint8Array(list.length * size);
  const view = new DataView(out.buffer);
  list.forEach((v, i) => {
    const at = i * size;
    switch (dtype) {
      case 'float32': view.setFloat32(at, Number(v), true); break;
      case 'float64': view.setFloat64(at, Number(v), true); break;
      case 'float16': view.setUint16(at, floatToHalfBits(Number(v)), true); break;
      case 'bfloat16': view.setUint16(at, floatToBfloat16Bits(Number(v)), true); break;
      case 'int8': view.setInt8(at, Number(v)); break;
      case 'uint8': case 'bool': view.setUint8(at, Number(v)); break;
      case 'int16': view.setInt16(at, Number(v), true); break;
      case 'uint16': view.setUint16(at, Number(v), true); break;
      case 'int32': view.setInt32(at, Number(v), true); break;
      case 'uint32': view.setUint32(at, Number(v), true); break;
      case 'int64': view.setBigInt64(at, BigInt(v), true); break;
      case 'uint64': view.setBigUint64(at, BigInt(v), true); break;
    }
  });
  return out;
}

function floatToBfloat16Bits(value: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  const bits = view.getUint32(0);
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** protobufjs takes 64-bit integers as { low, high } pairs. */
export function toLong(value: bigint, unsigned = false): { low: number; high: number; unsigned: boolean } {
  const bits = BigInt.asUintN(64, value);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned };
}
