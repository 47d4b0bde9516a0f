/**
 * Activation quantization (W8A8) on top of INT8 weights:
 *  - static: QuantizeLinear → DequantizeLinear (uint8, per tensor) on the input of every INT8 layer, with the
 *    range from an observer (min-max, percentile, entropy/KL: daemon/quant/observers.ts) over the calibration
 *    samples run through the FP32 model. onnxruntime fuses Q/DQ around Conv and MatMul into integer kernels.
 *  - dynamic: INT8 MatMul/Gemm layers of at least MIN_DYNAMIC_PARAMS weights become DynamicQuantizeLinear →
 *    MatMulInteger → Cast → Mul(x scale · weight scales): the activation scale is computed per run. Convs and
 *    smaller matrices keep weight-only INT8, where run-time activation quantization costs more than it saves
 *    (measurements at MIN_DYNAMIC_PARAMS).
 */
import { EdgerunError } from '../errors.ts';
import { OnnxDataType } from '../onnx/proto-values.ts';
import { activationQParams, EntropyObserver, MinMaxObserver, PercentileObserver, type RangeObserver } from '../quant/observers.ts';
import type { QuantLayer } from './layers.ts';
import {
  attr, floatAttribute, floatTensor, intAttribute, makeNode, rawTensor, type ModelProto, type NameAllocator, type NodeProto,
} from './model-proto.ts';
import { OrtModel, withExtraOutputs } from './ort-runner.ts';
import type { Progress } from './progress.ts';
import type { LayerChoice } from './quantize-weights.ts';
import type { ActivationStep } from './recipes.ts';
import type { Sample } from './sample-folder.ts';

/**
 * onnxruntime-node 1.30, one thread, M = 8–64 rows: DynamicQuantizeLinear + MatMulInteger beat the float MatMul
 * from about 64K weights (256×256: 0.013 vs 0.016 ms; 120×6625: 0.51 vs 0.68 ms) and lost below (120×360:
 * 0.039 vs 0.026 ms). Dynamic ConvInteger was 3–4× slower than the float conv on PP-OCR's 1×1 convs.
 */
export const MIN_DYNAMIC_PARAMS = 65_536;

export interface ActivationReport {
  mode: 'static' | 'dynamic';
  observer?: string;
  /** Quantized activations (static: tensor → range, scale, zero point) or layers turned dynamic. */
  tensors: { name: string; min?: number; max?: number; scale?: number; zeroPoint?: number }[];
  layers: string[];
}

export interface ActivationInput {
  model: ModelProto;
  fp32: ModelProto;
  layers: readonly QuantLayer[];
  choices: readonly LayerChoice[];
  step: ActivationStep;
  calibration: readonly Sample[];
  names: NameAllocator;
  progress: Progress;
}

export async function quantizeActivations(input: ActivationInput): Promise<ActivationReport> {
  const int8 = new Set(input.choices.filter((c) => c.precision === 'int8' && c.format.kind === 'dq').map((c) => c.layer.name));
  const layers = input.layers.filter((l) => int8.has(l.name));
  return input.step.mode === 'static' ? quantizeStatic(input, layers) : quantizeDynamic(input, layers);
}

/**
 * The entropy observer's level count depends on the sign of the data (256 uint8 levels for non-negative data such
 * as ReLU outputs, 128 per side otherwise), which is known only after observing: both run, the extremes decide.
 */
class SignAwareEntropyObserver implements RangeObserver {
  private readonly extremes: MinMaxObserver;
  private readonly signed: EntropyObserver;
  private readonly nonNegative: EntropyObserver;

  constructor(name: string) {
    this.extremes = new MinMaxObserver(name);
    this.signed = new EntropyObserver({ name, levels: 128 });
    this.nonNegative = new EntropyObserver({ name, levels: 256 });
  }

  observe(batch: Float32Array): void {
    this.extremes.observe(batch);
    this.signed.observe(batch);
    this.nonNegative.observe(batch);
  }

  range(): ReturnType<RangeObserver['range']> {
    return this.extremes.range().min >= 0 ? this.nonNegative.range() : this.signed.range();
  }
}

function observerFor(step: ActivationStep, name: string): RangeObserver {
  switch (step.observer) {
    case 'minmax': return new MinMaxObserver(name);
    case 'percentile': return new PercentileObserver(step.percentile, 8192, name);
    case 'entropy': return new SignAwareEntropyObserver(name);
  }
}

async function quantizeStatic(input: ActivationInput, layers: readonly QuantLayer[]): Promise<ActivationReport> {
  if (input.calibration.length === 0) {
    throw new EdgerunError('EDGERUN_ERR_CALIBRATION', 'static activation quantization needs calibration data: give --calib DIR', { step: 'quantize-activations' });
  }
  const tensors = [...new Set(layers.map((l) => l.inputName))];
  const observers = new Map(tensors.map((t) => [t, observerFor(input.step, t)]));
  const session = await OrtModel.open(withExtraOutputs(input.fp32, tensors), 'activation calibration');
  try {
    const task = input.progress.start('activation ranges', input.calibration.length);
    for (const sample of input.calibration) {
      const outputs = await session.run(sample.feeds, tensors);
      for (const t of tensors) observers.get(t)!.observe(outputs[t]!.data as Float32Array);
      task.tick();
    }
    task.done();
  } finally {
    await session.close();
  }
  const graph = input.model.graph!;
  const report: ActivationReport = { mode: 'static', observer: input.step.observer, tensors: [], layers: layers.map((l) => l.name) };
  for (const tensor of tensors) {
    const range = observers.get(tensor)!.range();
    const { scale, zeroPoint } = activationQParams(range, 'uint8');
    const scaleName = input.names.take(`${tensor}_act_scale`);
    const zeroName = input.names.take(`${tensor}_act_zero_point`);
    const quantized = input.names.take(`${tensor}_act_quantized`);
    const dequantized = input.names.take(`${tensor}_act_dequantized`);
    graph.initializer!.push(floatTensor(scaleName, [], [scale]), rawTensor(zeroName, OnnxDataType.UINT8, [], Uint8Array.of(zeroPoint)));
    const readers = layers.filter((l) => l.inputName === tensor);
    const first = Math.min(...readers.map((l) => graph.node!.indexOf(l.node)));
    graph.node!.splice(first, 0,
      makeNode('QuantizeLinear', [tensor, scaleName, zeroName], [quantized], input.names.take(`${tensor}_quantize`)),
      makeNode('DequantizeLinear', [quantized, scaleName, zeroName], [dequantized], input.names.take(`${tensor}_dequantize`)));
    for (const layer of readers) layer.node.input![0] = dequantized;
    report.tensors.push({ name: tensor, min: range.min, max: range.max, scale, zeroPoint });
  }
  return report;
}

function quantizeDynamic(input: ActivationInput, layers: readonly QuantLayer[]): ActivationReport {
  const graph = input.model.graph!;
  const report: ActivationReport = { mode: 'dynamic', tensors: [], layers: [] };
  for (const layer of layers) {
    if (layer.kind !== 'matmul' && layer.kind !== 'gemm') continue;
    if (layer.params < MIN_DYNAMIC_PARAMS) continue;
    const node = layer.node;
    if (layer.kind === 'gemm' && (floatAttribute(node, 'alpha', 1) !== 1 || floatAttribute(node, 'beta', 1) !== 1 || intAttribute(node, 'transA', 0) !== 0)) continue;
    const dq = graph.node!.find((n) => n.opType === 'DequantizeLinear' && n.output?.[0] === layer.weightName);
    if (!dq || (dq.input ?? []).length !== 2) continue;
    const [weightQ, weightScale] = dq.input as [string, string];
    const base = layer.name;
    const xq = input.names.take(`${base}_x_quantized`);
    const xs = input.names.take(`${base}_x_scale`);
    const xz = input.names.take(`${base}_x_zero_point`);
    const acc = input.names.take(`${base}_int32`);
    const accFloat = input.names.take(`${base}_int32_float`);
    const scale = input.names.take(`${base}_output_scale`);
    const output = node.output![0]!;
    const product = layer.kind === 'gemm' && node.input![2] ? input.names.take(`${base}_unbiased`) : output;
    const replacement: NodeProto[] = [
      makeNode('DynamicQuantizeLinear', [layer.inputName], [xq, xs, xz], input.names.take(`${base}_quantize_input`)),
      makeNode('MatMulInteger', [xq, weightQ, xz], [acc], input.names.take(`${base}_matmul_integer`)),
      makeNode('Cast', [acc], [accFloat], input.names.take(`${base}_cast`), [attr.int('to', OnnxDataType.FLOAT)]),
      makeNode('Mul', [xs, weightScale], [scale], input.names.take(`${base}_scale_product`)),
      makeNode('Mul', [accFloat, scale], [product], base),
    ];
    if (product !== output) replacement.push(makeNode('Add', [product, node.input![2]!], [output], input.names.take(`${base}_bias`)));
    graph.node = graph.node!.filter((n) => n !== dq);
    graph.node.splice(graph.node.indexOf(node), 1, ...replacement);
    report.layers.push(layer.name);
  }
  return report;
}
