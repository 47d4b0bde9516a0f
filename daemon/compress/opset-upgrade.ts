/**
 * Upgrades a model's default-domain opset (7 or later) to 21, the first opset with blocked and int4
 * DequantizeLinear. Each operator whose signature or meaning changed between the model's opset and 21 is
 * rewritten to an exact equivalent; operators known to be unchanged pass through; anything else is refused with
 * EDGERUN_ERR_COMPRESS naming the node, so the upgraded model never silently computes something else.
 */
import { EdgerunError } from '../errors.ts';
import {
  attr, findAttribute, floatAttribute, floatTensor, int64Tensor, intAttribute, intsAttribute, isDefaultDomain,
  makeNode, NameAllocator, onnx, opsetVersion, removeAttribute, setAttribute, setOpsetVersion, stringAttribute,
  type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from './model-proto.ts';

export const TARGET_OPSET = 21;
const MIN_SOURCE_OPSET = 7;
/** IR version 10 came with opset 21 and is the first to allow int4/uint4 tensors. */
const TARGET_IR_VERSION = 10;

/** Operators whose meaning (for the attributes and inputs a valid model gives them) is the same from opset 7 to 21. */
const UNCHANGED = new Set([
  'Abs', 'Acos', 'Acosh', 'Add', 'And', 'ArgMax', 'ArgMin', 'Asin', 'Asinh', 'Atan', 'Atanh', 'AveragePool',
  'BitShift', 'Cast', 'Ceil', 'Celu', 'Compress', 'Concat', 'Constant', 'ConstantOfShape', 'Conv', 'ConvInteger',
  'ConvTranspose', 'Cos', 'Cosh', 'CumSum', 'DepthToSpace', 'DequantizeLinear', 'Det', 'Div', 'DynamicQuantizeLinear',
  'Einsum', 'Elu', 'Equal', 'Erf', 'Exp', 'Expand', 'EyeLike', 'Flatten', 'Floor', 'GRU', 'Gather', 'GatherElements',
  'GatherND', 'Gelu', 'Gemm', 'GlobalAveragePool', 'GlobalLpPool', 'GlobalMaxPool', 'Greater', 'GreaterOrEqual',
  'HardSigmoid', 'HardSwish', 'Identity', 'If', 'InstanceNormalization', 'IsInf', 'IsNaN', 'LRN', 'LSTM',
  'LayerNormalization', 'LeakyRelu', 'Less', 'LessOrEqual', 'Log', 'Loop', 'LpNormalization', 'LpPool', 'MatMul',
  'MatMulInteger', 'Max', 'MaxPool', 'MaxRoiPool', 'MaxUnpool', 'Mean', 'MeanVarianceNormalization', 'Min', 'Mish',
  'Mod', 'Mul', 'Multinomial', 'Neg', 'NonMaxSuppression', 'NonZero', 'Not', 'OneHot', 'Or', 'PRelu', 'Pow',
  'QLinearConv', 'QLinearMatMul', 'QuantizeLinear', 'RNN', 'RandomNormal', 'RandomNormalLike', 'RandomUniform',
  'RandomUniformLike', 'Range', 'Reciprocal', 'Relu', 'Reshape', 'ReverseSequence', 'Round', 'Scan',
  'ScatterElements', 'ScatterND', 'Selu', 'Shape', 'Shrink', 'Sigmoid', 'Sign', 'Sin', 'Sinh', 'Size', 'Softplus',
  'Softsign', 'SpaceToDepth', 'Sqrt', 'Sub', 'Sum', 'Tan', 'Tanh', 'ThresholdedRelu', 'Tile', 'Transpose', 'Trilu',
  'Unique', 'Where', 'Xor',
]);

/** Opset at which an operator's axes moved from an attribute to an input. */
const AXES_TO_INPUT: Record<string, number> = {
  Squeeze: 13, Unsqueeze: 13, ReduceSum: 13,
  ReduceMean: 18, ReduceMax: 18, ReduceMin: 18, ReduceProd: 18, ReduceL1: 18, ReduceL2: 18, ReduceLogSum: 18,
  ReduceLogSumExp: 18, ReduceSumSquare: 18,
};

export interface UpgradeOptions {
  /** Ranks of values, where known (e.g. probed with onnxruntime), used to keep old-style Softmax as one node. */
  ranks?: ReadonlyMap<string, number>;
}

export interface UpgradeResult {
  fromOpset: number;
  toOpset: number;
  /** Nodes rewritten, by operator type. */
  rewritten: Record<string, number>;
}

interface Rewriter {
  from: number;
  graph: GraphProto;
  names: NameAllocator;
  ranks: ReadonlyMap<string, number>;
  added: TensorProto[];
  rewritten: Record<string, number>;
}

function refuse(node: NodeProto, reason: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_COMPRESS',
    `opset upgrade: node '${node.name ?? ''}' (${node.opType}) ${reason}`, { step: 'opset-upgrade', node: node.name ?? '', op: node.opType });
}

export function upgradeOpset(model: ModelProto, options: UpgradeOptions = {}): UpgradeResult {
  const from = opsetVersion(model) ?? 1;
  if (from > TARGET_OPSET) {
    throw new EdgerunError('EDGERUN_ERR_COMPRESS', `opset upgrade: the model uses opset ${from}, newer than ${TARGET_OPSET}`, { step: 'opset-upgrade' });
  }
  if (from < MIN_SOURCE_OPSET) {
    throw new EdgerunError('EDGERUN_ERR_COMPRESS', `opset upgrade: opset ${from} is older than ${MIN_SOURCE_OPSET}, which the compressor cannot upgrade`, { step: 'opset-upgrade' });
  }
  const rewritten: Record<string, number> = {};
  upgradeGraph(model.graph!, from, options.ranks ?? new Map(), rewritten);
  setOpsetVersion(model, '', TARGET_OPSET);
  model.irVersion = Math.max(TARGET_IR_VERSION, Number(model.irVersion ?? 0));
  return { fromOpset: from, toOpset: TARGET_OPSET, rewritten };
}

function upgradeGraph(graph: GraphProto, from: number, ranks: ReadonlyMap<string, number>, rewritten: Record<string, number>): void {
  const rewriter: Rewriter = { from, graph, names: new NameAllocator(graph), ranks, added: [], rewritten };
  const nodes: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    for (const a of node.attribute ?? []) {
      if (a.g) upgradeGraph(a.g, from, ranks, rewritten);
      for (const sub of a.graphs ?? []) upgradeGraph(sub, from, ranks, rewritten);
    }
    const before = nodeBytes(node);
    const replacement = isDefaultDomain(node.domain) ? upgradeNode(node, rewriter) : [node];
    if (replacement.length !== 1 || !sameBytes(before, nodeBytes(replacement[0]!))) {
      rewritten[node.opType!] = (rewritten[node.opType!] ?? 0) + 1;
    }
    nodes.push(...replacement);
  }
  graph.node = nodes;
  graph.initializer = [...(graph.initializer ?? []), ...rewriter.added];
}

function nodeBytes(node: NodeProto): Uint8Array {
  return onnx.NodeProto.encode(onnx.NodeProto.create(node)).finish();
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function constInt64(r: Rewriter, base: string, values: number[]): string {
  const name = r.names.take(base);
  r.added.push(int64Tensor(name, [values.length], values));
  return name;
}

function constFloatScalar(r: Rewriter, base: string, value: number): string {
  const name = r.names.take(base);
  r.added.push(floatTensor(name, [], [value]));
  return name;
}

/** Moves an INTS attribute to an int64 input at `index` (empty name when absent), in place. */
function attributeToInput(node: NodeProto, r: Rewriter, attribute: string, index: number): void {
  const values = intsAttribute(node, attribute);
  removeAttribute(node, attribute);
  const inputs = [...(node.input ?? [])];
  while (inputs.length < index) inputs.push('');
  inputs[index] = values ? constInt64(r, `${node.name || node.opType}_${attribute}`, values) : '';
  while (inputs.length > 0 && inputs[inputs.length - 1] === '') inputs.pop();
  node.input = inputs;
}

function upgradeNode(node: NodeProto, r: Rewriter): NodeProto[] {
  const op = node.opType ?? '';
  const axesAt = AXES_TO_INPUT[op];
  if (axesAt !== undefined) {
    if (r.from < axesAt) attributeToInput(node, r, 'axes', 1);
    return [node];
  }
  switch (op) {
    case 'Softmax': case 'LogSoftmax': case 'Hardmax': return r.from < 13 ? upgradeSoftmax(node, r) : [node];
    case 'Split': return upgradeSplit(node, r);
    case 'Clip': return r.from < 11 ? upgradeClip(node, r) : [node];
    case 'Slice': return r.from < 10 ? upgradeSlice(node, r) : [node];
    case 'Pad': return r.from < 11 ? upgradePad(node, r) : [node];
    case 'TopK':
      if (r.from < 10) {
        const k = intAttribute(node, 'k', 0);
        removeAttribute(node, 'k');
        node.input = [node.input![0]!, constInt64(r, `${node.name || op}_k`, [k])];
      }
      return [node];
    case 'Resize': return upgradeResize(node, r);
    case 'Upsample': return upgradeUpsample(node, r);
    case 'Dropout': return upgradeDropout(node);
    case 'BatchNormalization': return upgradeBatchNorm(node);
    case 'GroupNormalization': throw refuse(node, 'changed meaning at opset 21 (scale per channel, not per group); re-export the model');
    case 'RoiAlign':
      if (r.from < 16 && !findAttribute(node, 'coordinate_transformation_mode')) setAttribute(node, attr.string('coordinate_transformation_mode', 'output_half_pixel'));
      return [node];
    default:
      if (UNCHANGED.has(op)) return [node];
      throw refuse(node, `is not an operator the compressor knows how to carry from opset ${r.from} to ${TARGET_OPSET}`);
  }
}

/**
 * Before opset 13 these operators flattened the input to 2-D at `axis` and normalised over everything after it;
 * from 13 they normalise over `axis` alone. The two agree when `axis` is the last one; otherwise the old meaning is
 * rebuilt exactly as Flatten → op(-1) → Reshape to the input's shape.
 */
function upgradeSoftmax(node: NodeProto, r: Rewriter): NodeProto[] {
  const axis = intAttribute(node, 'axis', 1);
  const input = node.input![0]!;
  const rank = r.ranks.get(input);
  if (axis === -1 || (rank !== undefined && (axis === rank - 1 || axis + rank === rank - 1))) return [node];
  const base = node.name || node.opType!;
  const shape = r.names.take(`${base}_input_shape`);
  const flat = r.names.take(`${base}_flat`);
  const normalised = r.names.take(`${base}_flat_out`);
  return [
    makeNode('Shape', [input], [shape], r.names.take(`${base}_shape`)),
    makeNode('Flatten', [input], [flat], r.names.take(`${base}_flatten`), [attr.int('axis', axis)]),
    makeNode(node.opType!, [flat], [normalised], base, [attr.int('axis', -1)]),
    makeNode('Reshape', [normalised, shape], [node.output![0]!], r.names.take(`${base}_reshape`)),
  ];
}

function upgradeSplit(node: NodeProto, r: Rewriter): NodeProto[] {
  if (r.from < 13) attributeToInput(node, r, 'split', 1);
  // From opset 18 an equal split must say how many parts it makes.
  if (!(node.input?.[1])) {
    node.input = [node.input![0]!];
    setAttribute(node, attr.int('num_outputs', node.output!.length));
  }
  return [node];
}

function upgradeClip(node: NodeProto, r: Rewriter): NodeProto[] {
  const base = node.name || 'Clip';
  const min = findAttribute(node, 'min') ? constFloatScalar(r, `${base}_min`, floatAttribute(node, 'min', 0)) : '';
  const max = findAttribute(node, 'max') ? constFloatScalar(r, `${base}_max`, floatAttribute(node, 'max', 0)) : '';
  removeAttribute(node, 'min');
  removeAttribute(node, 'max');
  node.input = max ? [node.input![0]!, min, max] : min ? [node.input![0]!, min] : [node.input![0]!];
  return [node];
}

function upgradeSlice(node: NodeProto, r: Rewriter): NodeProto[] {
  const base = node.name || 'Slice';
  const starts = intsAttribute(node, 'starts') ?? [];
  const ends = intsAttribute(node, 'ends') ?? [];
  const axes = intsAttribute(node, 'axes');
  for (const name of ['starts', 'ends', 'axes']) removeAttribute(node, name);
  const inputs = [node.input![0]!, constInt64(r, `${base}_starts`, starts), constInt64(r, `${base}_ends`, ends)];
  if (axes) inputs.push(constInt64(r, `${base}_axes`, axes));
  node.input = inputs;
  return [node];
}

function upgradePad(node: NodeProto, r: Rewriter): NodeProto[] {
  const base = node.name || 'Pad';
  const pads = intsAttribute(node, 'pads') ?? intsAttribute(node, 'paddings') ?? [];
  const value = floatAttribute(node, 'value', 0);
  for (const name of ['pads', 'paddings', 'value']) removeAttribute(node, name);
  node.input = [node.input![0]!, constInt64(r, `${base}_pads`, pads), constFloatScalar(r, `${base}_value`, value)];
  return [node];
}

function upgradeResize(node: NodeProto, r: Rewriter): NodeProto[] {
  if (stringAttribute(node, 'coordinate_transformation_mode') === 'tf_half_pixel_for_nn') {
    throw refuse(node, "uses coordinate_transformation_mode 'tf_half_pixel_for_nn', which opset 13 removed");
  }
  if (r.from >= 11) return [node];
  // Resize-10 took (X, scales) and sampled asymmetrically with floor for nearest.
  node.input = [node.input![0]!, '', node.input![1]!];
  setAttribute(node, attr.string('coordinate_transformation_mode', 'asymmetric'));
  if ((stringAttribute(node, 'mode') ?? 'nearest') === 'nearest') setAttribute(node, attr.string('nearest_mode', 'floor'));
  return [node];
}

function upgradeUpsample(node: NodeProto, r: Rewriter): NodeProto[] {
  const base = node.name || 'Upsample';
  const scalesAttr = findAttribute(node, 'scales');
  let scales = node.input![1] ?? '';
  if (scalesAttr) {
    scales = r.names.take(`${base}_scales`);
    r.added.push(floatTensor(scales, [scalesAttr.floats!.length], scalesAttr.floats!));
  }
  const mode = stringAttribute(node, 'mode') ?? 'nearest';
  const attributes = [attr.string('mode', mode === 'bilinear' ? 'linear' : mode), attr.string('coordinate_transformation_mode', 'asymmetric')];
  if (mode === 'nearest') attributes.push(attr.string('nearest_mode', 'floor'));
  return [makeNode('Resize', [node.input![0]!, '', scales], [node.output![0]!], base, attributes)];
}

function upgradeDropout(node: NodeProto): NodeProto[] {
  if ((node.output ?? []).slice(1).some((o) => o)) throw refuse(node, 'uses its mask output, which an inference model cannot carry over');
  return [makeNode('Identity', [node.input![0]!], [node.output![0]!], node.name || 'Dropout')];
}

function upgradeBatchNorm(node: NodeProto): NodeProto[] {
  if (findAttribute(node, 'spatial') && intAttribute(node, 'spatial', 1) !== 1) throw refuse(node, 'uses spatial=0, which later opsets dropped');
  if ((node.output ?? []).slice(1).some((o) => o)) throw refuse(node, 'produces training-mode statistics outputs');
  for (const name of ['spatial', 'consumed_inputs', 'is_test']) removeAttribute(node, name);
  node.output = [node.output![0]!];
  return [node];
}
