/**
 * Quantized-weight fusion, run on the decoded graph before analysis: constant folding would otherwise turn
 * every DequantizeLinear of a weight into a float32 copy (8× the bytes of an INT4 weight). Rewrites
 *  - DequantizeLinear(constant) whose every consumer takes it as MatMul's B (2-D) or Gemm's B → edgerun.QMatMul;
 *  - com.microsoft.MatMulNBits (constant B) → edgerun.QMatMul with its weights unpacked to the [K, N] form;
 *  - DequantizeLinear(constant) whose every consumer takes it as Conv's weight → edgerun.QConv.
 * A DequantizeLinear constant with any other consumer (a bias, a Gather, a graph output) is left alone and
 * folds normally. The fused kernels keep the weights packed on the GPU (kernels/quant-weights.ts).
 * Static activation quantization — QuantizeLinear → DequantizeLinear with per-tensor constant scales and zero
 * points — becomes the elementwise chain Div, Round, Add, Clip, Sub, Mul (the same arithmetic: round half to
 * even, saturation), which the elementwise pass then fuses, usually into the producing conv's epilogue: no
 * dispatch of its own and no int tensor in memory.
 *
 * Node contracts:
 *  edgerun.QMatMul — inputs: 0 A [..., K] float; 1 B [K, N] int8|uint8|int4|uint4 (constant); 2 scale (float32
 *    constant: [] per tensor, [N] per column (axis 1), or [ceil(K/block_size), N] blocked along axis 0); 3 zero
 *    point (constant of B's dtype, the scale's dims) or ''; 4 bias [N] (float32 constant, optional; from Gemm's
 *    C or MatMulNBits' bias). Attributes: axis (int), block_size (int, 0 unless blocked).
 *    Y [..., N] = A · ((B − zero point) · scale) + bias. Implemented in kernels/quant-matmul.ts.
 *  edgerun.QConv — inputs: 0 X; 1 quantized weight constant (int8|uint8|int4|uint4, dims [M, C/g, kh, kw]);
 *    2 scale (float32 constant: [] per tensor, [M] per channel (axis 0), or [M, ceil((C/g)/block), kh, kw]
 *    blocked along axis 1); 3 zero point (constant of the weight dtype, the scale's dims) or ''; 4 bias
 *    (optional, float32). Attributes: every attribute of the original Conv plus axis (int) and block_size (int,
 *    0 unless blocked). Implemented in kernels/quant-conv.ts.
 * Both are epilogue producers: activation chains after them fuse into their stores (fuse-elementwise.ts).
 * A Cast of a constant that only feeds DequantizeLinear's scale or zero point, or a Conv/Gemm bias — how
 * `edgerun compress` stores float16 scales and biases — is folded into a constant first (foldSideCasts), so the
 * weight still fuses and the kernels get the float32 scales the contracts above ask for.
 */
import { findOp } from '../kernels/registry.ts';
import { nbitsToQuantized, nbitsWeights } from '../kernels/quant-nbits.ts';
import { quantLayout, type QuantLayout } from '../kernels/quant-params.ts';
import type { OpContext } from '../kernels/types.ts';
import { Attributes } from './attributes.ts';
import { elementCount, makeTensor, type AttributeValue, type Graph, type Node, type Tensor } from './ir.ts';

export interface DequantFusionResult {
  graph: Graph;
  quantizedMatMuls: number;
  quantizedConvs: number;
  /** QuantizeLinear → DequantizeLinear activation pairs turned into elementwise chains. */
  activationQdqPairs: number;
}

/** The domain's opset (ai.onnx for ''), as the op definitions see it. */
function opsetOf(opsets: Map<string, number>, domain: string): number {
  return opsets.get(domain) ?? opsets.get('') ?? 1;
}

/** Initializers and Constant-node values by name. */
function knownConstants(graph: Graph): Map<string, Tensor> {
  const constants = new Map(graph.initializers);
  for (const node of graph.nodes) {
    const value = node.opType === 'Constant' && node.domain === '' ? node.attributes.get('value') : undefined;
    if (value?.type === 'tensor') constants.set(node.outputs[0], value.value);
  }
  return constants;
}

function contextOf(node: Node, opset: number, constants: Map<string, Tensor>): OpContext {
  const tensors = node.inputs.map((name) => (name === '' ? null : constants.get(name) ?? null));
  return { node, opset, inputs: tensors.map((t) => (t ? { dtype: t.dtype, shape: t.dims } : null)), constants: tensors };
}

interface Dequantized {
  node: Node;
  q: Tensor;
  scale: Tensor;
  zeroPoint: Tensor | null;
  layout: QuantLayout;
}

function transpose2d(t: Tensor): Tensor {
  const [rows, cols] = t.dims;
  const out = makeTensor(t.dtype, [cols, rows]);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out.data[c * rows + r] = t.data[r * cols + c];
  return out;
}

/** A fresh graph being assembled: new constants get unique names derived from the node they serve. */
class Rewriter {
  readonly initializers: Map<string, Tensor>;
  private readonly taken: Set<string>;

  constructor(graph: Graph) {
    this.initializers = new Map(graph.initializers);
    this.taken = new Set([...graph.initializers.keys(), ...graph.inputs.map((i) => i.name), ...graph.nodes.flatMap((n) => n.outputs)]);
  }

  /** A value name not used anywhere in the graph. */
  name(base: string): string {
    let unique = base;
    for (let i = 1; this.taken.has(unique); i++) unique = `${base}_${i}`;
    this.taken.add(unique);
    return unique;
  }

  constant(name: string, tensor: Tensor): string {
    const unique = this.name(name);
    this.initializers.set(unique, tensor);
    return unique;
  }
}

function intAttr(value: number): AttributeValue {
  return { type: 'int', value };
}

/** The QMatMul replacing MatMul(A, DQ), or null when B's layout does not fit the kernel. */
function qmatmulForMatMul(consumer: Node, dq: Dequantized): Node | null {
  const { layout } = dq;
  if (dq.q.dims.length !== 2 || (layout.kind === 'axis' && layout.axis !== 1) || (layout.kind === 'block' && layout.axis !== 0)) return null;
  return {
    name: consumer.name, opType: 'QMatMul', domain: 'edgerun',
    inputs: [consumer.inputs[0], dq.node.inputs[0], dq.node.inputs[1], dq.node.inputs[2] ?? ''],
    outputs: [...consumer.outputs],
    attributes: new Map([['axis', intAttr(layout.kind === 'block' ? 0 : 1)], ['block_size', intAttr(layout.blockSize)]]),
  };
}

/**
 * The QMatMul replacing Gemm(A, DQ, C): transA must be 0; transB transposes the quantized weight (and its
 * scales) at load; alpha scales the scales; a constant C of N (or 1) values becomes the bias.
 */
function qmatmulForGemm(consumer: Node, dq: Dequantized, constants: Map<string, Tensor>, rewriter: Rewriter): Node | null {
  const attrs = new Attributes(consumer);
  if (attrs.int('transA', 0) !== 0 || dq.q.dims.length !== 2) return null;
  const transB = attrs.int('transB', 0) !== 0;
  const alpha = attrs.float('alpha', 1);
  const beta = attrs.float('beta', 1);
  const { layout } = dq;
  // B's output axis is 1 ([K, N]) or 0 with transB ([N, K]); blocks run along the other one
  const columnAxis = transB ? 0 : 1;
  if ((layout.kind === 'axis' && layout.axis !== columnAxis) || (layout.kind === 'block' && layout.axis !== 1 - columnAxis)) return null;
  const N = dq.q.dims[columnAxis];
  let bias: Tensor | null = null;
  if (consumer.inputs[2]) {
    const c = constants.get(consumer.inputs[2]);
    if (!c || c.dims.length > 2 || (elementCount(c.dims) !== N && elementCount(c.dims) !== 1) || (c.dims.length === 2 && c.dims[0] !== 1)) return null;
    bias = makeTensor('float32', [N], Float32Array.from({ length: N }, (_, n) => beta * c.data[c.data.length === 1 ? 0 : n]));
  }
  const base = consumer.name;
  const perBlock = layout.kind === 'block';
  const reorient = (t: Tensor): Tensor => (transB && perBlock ? transpose2d(t) : t);
  let q = dq.node.inputs[0];
  let scaleName = dq.node.inputs[1];
  let zeroName = dq.node.inputs[2] ?? '';
  if (transB) {
    q = rewriter.constant(`${base}::q`, transpose2d(dq.q));
    if (perBlock) {
      scaleName = rewriter.constant(`${base}::scale`, reorient(dq.scale));
      if (dq.zeroPoint) zeroName = rewriter.constant(`${base}::zero_point`, reorient(dq.zeroPoint));
    }
  }
  if (alpha !== 1) {
    const scaled = reorient(dq.scale);
    scaleName = rewriter.constant(`${base}::scale_alpha`, { ...scaled, data: Float32Array.from(scaled.data, (s) => s * alpha) });
  }
  const inputs = [consumer.inputs[0], q, scaleName, zeroName];
  if (bias) inputs.push(rewriter.constant(`${base}::bias`, bias));
  return {
    name: consumer.name, opType: 'QMatMul', domain: 'edgerun', inputs, outputs: [...consumer.outputs],
    attributes: new Map([['axis', intAttr(perBlock ? 0 : 1)], ['block_size', intAttr(layout.blockSize)]]),
  };
}

/** The QConv replacing Conv(X, DQ, B): per tensor, per output channel (axis 0) or blocked along axis 1. */
function qconvForConv(consumer: Node, dq: Dequantized, rewriter: Rewriter): Node | null {
  const { layout } = dq;
  if ((layout.kind === 'axis' && layout.axis !== 0) || (layout.kind === 'block' && layout.axis !== 1)) return null;
  let scaleName = dq.node.inputs[1];
  let zeroName = dq.node.inputs[2] ?? '';
  if (layout.kind === 'tensor' && dq.scale.dims.length !== 0) {
    // the contract's per-tensor scale is a scalar
    scaleName = rewriter.constant(`${consumer.name}::scale`, { ...dq.scale, dims: [] });
    if (dq.zeroPoint) zeroName = rewriter.constant(`${consumer.name}::zero_point`, { ...dq.zeroPoint, dims: [] });
  }
  const attributes = new Map(consumer.attributes);
  attributes.set('axis', intAttr(layout.kind === 'tensor' ? 0 : layout.axis));
  attributes.set('block_size', intAttr(layout.blockSize));
  const inputs = [consumer.inputs[0], dq.node.inputs[0], scaleName, zeroName];
  if (consumer.inputs[2]) inputs.push(consumer.inputs[2]);
  return { name: consumer.name, opType: 'QConv', domain: 'edgerun', inputs, outputs: [...consumer.outputs], attributes };
}

/** MatMulNBits with constant weights → QMatMul over the unpacked [K, N] int4/uint4 weight. */
function qmatmulForNBits(node: Node, opsets: Map<string, number>, constants: Map<string, Tensor>, rewriter: Rewriter): Node | null {
  const ctx = contextOf(node, opsetOf(opsets, node.domain), constants);
  if (!ctx.constants[1] || !ctx.constants[2] || (node.inputs[3] && !ctx.constants[3]) || (node.inputs[5] && !ctx.constants[5])) return null;
  const shape = nbitsWeights(ctx);
  const quantized = nbitsToQuantized(shape, ctx.constants[1], ctx.constants[2], ctx.constants[3] ?? null);
  const base = node.name;
  const inputs = [
    node.inputs[0],
    rewriter.constant(`${base}::q`, quantized.q),
    rewriter.constant(`${base}::scale`, quantized.scale),
    quantized.zeroPoint ? rewriter.constant(`${base}::zero_point`, quantized.zeroPoint) : '',
  ];
  if (node.inputs[5]) inputs.push(node.inputs[5]);
  return {
    name: node.name, opType: 'QMatMul', domain: 'edgerun', inputs, outputs: [node.outputs[0]],
    attributes: new Map([['axis', intAttr(0)], ['block_size', intAttr(shape.blockSize)]]),
  };
}

const QUANT_RANGES: Record<string, [number, number]> = { uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767], uint4: [0, 15], int4: [-8, 7] };

function scalarOf(constants: Map<string, Tensor>, name: string | undefined): Tensor | null {
  if (!name) return null;
  const t = constants.get(name);
  return t && t.data.length === 1 ? t : null;
}

/**
 * The elementwise chain replacing QuantizeLinear(x) → DequantizeLinear with per-tensor constants, or null.
 * Nodes are in domain 'edgerun' (standard ops with their latest semantics: Clip takes min/max inputs).
 */
function fakeQuantChain(q: Node, dq: Node, constants: Map<string, Tensor>, rewriter: Rewriter): Node[] | null {
  const qScale = scalarOf(constants, q.inputs[1]);
  const dqScale = scalarOf(constants, dq.inputs[1]);
  const qZero = q.inputs[2] ? scalarOf(constants, q.inputs[2]) : null;
  const dqZero = dq.inputs[2] ? scalarOf(constants, dq.inputs[2]) : null;
  if (!qScale || !dqScale || qScale.dtype !== 'float32' || dqScale.dtype !== 'float32') return null;
  if ((q.inputs[2] && !qZero) || (dq.inputs[2] && !dqZero)) return null;
  const outputType = new Attributes(q).int('output_dtype', 0);
  if (outputType !== 0 || q.attributes.has('block_size') && new Attributes(q).int('block_size', 0) !== 0) return null;
  const range = QUANT_RANGES[qZero?.dtype ?? 'uint8'];
  if (!range || (dqZero && dqZero.dtype !== (qZero?.dtype ?? 'uint8'))) return null;
  const scalar = (name: string, value: number) => rewriter.constant(`${q.name}::${name}`, makeTensor('float32', [], Float32Array.of(value)));
  const nodes: Node[] = [];
  let value = q.inputs[0];
  const push = (opType: string, extra: string[], output?: string) => {
    const out = output ?? rewriter.name(`${q.outputs[0]}::${opType.toLowerCase()}`);
    nodes.push({ name: rewriter.name(`${q.name}::${opType.toLowerCase()}`), opType, domain: 'edgerun', inputs: [value, ...extra], outputs: [out], attributes: new Map() });
    value = out;
  };
  push('Div', [scalar('scale', qScale.data[0])]);
  push('Round', []);
  if (qZero && qZero.data[0] !== 0) push('Add', [scalar('zero_point', qZero.data[0])]);
  push('Clip', [scalar('min', range[0]), scalar('max', range[1])]);
  if (dqZero && dqZero.data[0] !== 0) push('Sub', [scalar('dq_zero_point', dqZero.data[0])]);
  push('Mul', [scalar('dq_scale', dqScale.data[0])], dq.outputs[0]);
  return nodes;
}

/** Whether every consumer of `name` reads it as a DequantizeLinear scale/zero point or a Conv/Gemm bias. */
function onlySideInput(name: string, consumers: readonly Node[]): boolean {
  return consumers.length > 0 && consumers.every((node) => node.domain === '' && node.inputs.every((input, i) => input !== name
    || (node.opType === 'DequantizeLinear' && (i === 1 || i === 2)) || (['Conv', 'ConvTranspose', 'Gemm'].includes(node.opType) && i === 2)));
}

function foldSideCasts(graph: Graph, opsets: Map<string, number>): Graph {
  const constants = knownConstants(graph);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const consumers = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) if (input !== '') consumers.set(input, [...(consumers.get(input) ?? []), node]);
  }
  const initializers = new Map(graph.initializers);
  const folded = new Set<Node>();
  for (const node of graph.nodes) {
    const output = node.outputs[0];
    if (node.domain !== '' || node.opType !== 'Cast' || !constants.has(node.inputs[0]) || graphOutputs.has(output)) continue;
    if (!onlySideInput(output, consumers.get(output) ?? [])) continue;
    const ctx = contextOf(node, opsetOf(opsets, ''), constants);
    const [value] = findOp('', 'Cast')!.fold!(ctx, ctx.constants);
    initializers.set(output, value);
    folded.add(node);
  }
  return folded.size === 0 ? graph : { ...graph, nodes: graph.nodes.filter((n) => !folded.has(n)), initializers };
}

export function fuseDequantize(input: Graph, opsets: Map<string, number>): DequantFusionResult {
  const graph = foldSideCasts(input, opsets);
  const constants = knownConstants(graph);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  const consumers = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) if (input !== '') consumers.set(input, [...(consumers.get(input) ?? []), node]);
  }
  const rewriter = new Rewriter(graph);
  const replaced = new Map<Node, Node>();
  const removed = new Set<Node>();
  const convFusable = findOp('edgerun', 'QConv') !== undefined;
  let quantizedMatMuls = 0;
  let quantizedConvs = 0;
  let activationQdqPairs = 0;
  const expanded = new Map<Node, Node[]>();

  for (const node of graph.nodes) {
    if (node.domain === '' && node.opType === 'QuantizeLinear' && !graphOutputs.has(node.outputs[0])) {
      const users = consumers.get(node.outputs[0]) ?? [];
      const [dq] = users;
      if (users.length === 1 && dq.domain === '' && dq.opType === 'DequantizeLinear' && dq.inputs[0] === node.outputs[0] && !removed.has(dq)) {
        const chain = fakeQuantChain(node, dq, constants, rewriter);
        if (chain) {
          expanded.set(node, chain);
          removed.add(dq);
          activationQdqPairs++;
        }
      }
      continue;
    }
    if (node.domain === 'com.microsoft' && node.opType === 'MatMulNBits') {
      const fused = qmatmulForNBits(node, opsets, constants, rewriter);
      if (fused) {
        replaced.set(node, fused);
        quantizedMatMuls++;
      }
      continue;
    }
    if (node.domain !== '' || node.opType !== 'DequantizeLinear') continue;
    const output = node.outputs[0];
    const [q, scale, zeroPoint] = [0, 1, 2].map((i) => (node.inputs[i] ? constants.get(node.inputs[i]) ?? null : null));
    if (!q || !scale || (node.inputs[2] && !zeroPoint) || graphOutputs.has(output)) continue;
    const users = consumers.get(output) ?? [];
    if (users.length === 0) continue;
    const ctx = contextOf(node, opsetOf(opsets, ''), constants);
    // a malformed DequantizeLinear throws here with the same coded error analysis would give
    findOp('', 'DequantizeLinear')!.infer(ctx);
    const dq: Dequantized = { node, q, scale, zeroPoint, layout: quantLayout(ctx, q.dims, ctx.inputs[1]!, ctx.inputs[2] ?? null) };
    const fused: Node[] = [];
    for (const user of users) {
      const onlyAsWeight = user.inputs.filter((input) => input === output).length === 1 && user.inputs[1] === output && !replaced.has(user);
      let replacement: Node | null = null;
      if (onlyAsWeight && user.domain === '' && user.opType === 'MatMul') replacement = qmatmulForMatMul(user, dq);
      else if (onlyAsWeight && user.domain === '' && user.opType === 'Gemm') replacement = qmatmulForGemm(user, dq, constants, rewriter);
      else if (onlyAsWeight && user.domain === '' && user.opType === 'Conv' && convFusable) replacement = qconvForConv(user, dq, rewriter);
      if (!replacement) break;
      fused.push(replacement);
    }
    if (fused.length !== users.length) continue;
    users.forEach((user, i) => {
      replaced.set(user, fused[i]);
      if (fused[i].opType === 'QConv') quantizedConvs++;
      else quantizedMatMuls++;
    });
    removed.add(node);
  }
  const nodes = graph.nodes.filter((node) => !removed.has(node)).flatMap((node) => expanded.get(node) ?? [replaced.get(node) ?? node]);
  return { graph: { ...graph, nodes, initializers: rewriter.initializers }, quantizedMatMuls, quantizedConvs, activationQdqPairs };
}
