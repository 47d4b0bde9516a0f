/**
 * edgerun.QConv end to end: ONNX models with DequantizeLinear(constant weight) → Conv, compiled by the engine
 * (the fuse-dequant pass makes the QConv nodes, activations fuse into them) and compared with onnxruntime-node
 * running the graph as written; and the GPU memory such a model occupies.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { compileModel } from '../../daemon/graph/compile.ts';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { closeSharedEngine, sharedEngine } from '../helpers/engine-oracle.ts';
import { randomTensor, seededRandom } from '../helpers/kernel-harness.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';

t.teardown(closeSharedEngine);

type WeightDType = 'int8' | 'uint8' | 'int4' | 'uint4';
const RANGE: Record<WeightDType, [number, number]> = { int8: [-127, 127], uint8: [0, 255], int4: [-8, 7], uint4: [0, 15] };

function ints(count: number, seed: number, lo: number, hi: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => lo + Math.floor(random() * (hi - lo + 1)));
}

function floats(count: number, seed: number, lo: number, hi: number): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => lo + (hi - lo) * random());
}

interface Branch {
  name: string;
  /** W dims [M, C/group, k…]. */
  w: number[];
  dtype: WeightDType;
  scales: 'tensor' | 'channel' | number;
  zeroPoint?: boolean;
  bias?: boolean;
  conv?: Record<string, number[] | number>;
  /** Activation ops applied after the conv (fused into it as an epilogue). */
  activation?: 'Relu' | 'HardSwish' | 'HardSigmoidMul';
}

const C = 64;
const INPUT = [1, C, 8, 10];

// Every branch reads the same input; each is one DequantizeLinear → Conv (→ activation) to one output.
const branches: Branch[] = [
  { name: 'pw_int8_channel_sym_relu', w: [48, C, 1, 1], dtype: 'int8', scales: 'channel', bias: true, activation: 'Relu' },
  { name: 'k3_uint8_channel_asym_s2_hswish', w: [24, C, 3, 3], dtype: 'uint8', scales: 'channel', zeroPoint: true, conv: { strides: [2, 2], pads: [1, 1, 1, 1] }, activation: 'HardSwish' },
  { name: 'k3_int4_block32_bias', w: [16, C, 3, 3], dtype: 'int4', scales: 32, bias: true, conv: { pads: [1, 1, 1, 1] } },
  { name: 'pw_uint4_block32_zp_chain', w: [40, C, 1, 1], dtype: 'uint4', scales: 32, zeroPoint: true, activation: 'HardSigmoidMul' },
  { name: 'dw_int8_channel_hswish', w: [C, 1, 3, 3], dtype: 'int8', scales: 'channel', bias: true, conv: { group: C, pads: [1, 1, 1, 1] }, activation: 'HardSwish' },
  { name: 'dw_int4_block_s2', w: [C, 1, 3, 3], dtype: 'int4', scales: 32, conv: { group: C, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { name: 'grouped_int8_tensor', w: [32, 16, 3, 3], dtype: 'int8', scales: 'tensor', zeroPoint: true, conv: { group: 4, pads: [0, 1, 0, 1] } },
];

function scaleDims(b: Branch): number[] {
  if (b.scales === 'tensor') return [];
  if (b.scales === 'channel') return [b.w[0]];
  return [b.w[0], Math.ceil(b.w[1] / b.scales), ...b.w.slice(2)];
}

function branchModel(): { bytes: Uint8Array; outputs: string[] } {
  const builder = new ModelBuilder({ opset: 21 }).input('x', 'float32', INPUT);
  let seed = 10;
  for (const b of branches) {
    seed += 10;
    const count = b.w.reduce((a, v) => a * v, 1);
    const sDims = scaleDims(b);
    const sCount = sDims.reduce((a, v) => a * v, 1);
    const [lo, hi] = RANGE[b.dtype];
    // scales about 2/(range · sqrt(fan-in)) keep outputs near unit size, so the activations' kinks matter
    const fanIn = b.w.slice(1).reduce((a, v) => a * v, 1);
    const unit = 4 / ((hi - lo) * Math.sqrt(fanIn));
    builder.initializer(`${b.name}_q`, b.dtype as DType, b.w, ints(count, seed, lo, hi))
      .initializer(`${b.name}_s`, 'float32', sDims, floats(sCount, seed + 1, 0.5 * unit, 1.5 * unit));
    const dqInputs = [`${b.name}_q`, `${b.name}_s`];
    if (b.zeroPoint) {
      const mid = Math.round((lo + hi) / 2);
      const spread = Math.max(1, Math.round((hi - lo) / 16));
      builder.initializer(`${b.name}_z`, b.dtype as DType, sDims, ints(sCount, seed + 2, mid - spread, mid + spread));
      dqInputs.push(`${b.name}_z`);
    }
    const dqAttributes: Record<string, number> = typeof b.scales === 'number' ? { axis: 1, block_size: b.scales } : { axis: 0 };
    builder.node('DequantizeLinear', dqInputs, [`${b.name}_w`], dqAttributes, { name: `${b.name}_dq` });
    const convInputs = ['x', `${b.name}_w`];
    if (b.bias) {
      builder.initializer(`${b.name}_b`, 'float32', [b.w[0]], floats(b.w[0], seed + 3, -0.5, 0.5));
      convInputs.push(`${b.name}_b`);
    }
    const convOut = b.activation ? `${b.name}_conv` : b.name;
    builder.node('Conv', convInputs, [convOut], b.conv ?? {}, { name: `${b.name}_conv` });
    if (b.activation === 'Relu' || b.activation === 'HardSwish') builder.node(b.activation, [convOut], [b.name]);
    if (b.activation === 'HardSigmoidMul') {
      builder.node('HardSigmoid', [convOut], [`${b.name}_gate`]).node('Mul', [convOut, `${b.name}_gate`], [b.name]);
    }
    builder.output(b.name, 'float32');
  }
  return { bytes: builder.toBytes(), outputs: branches.map((b) => b.name) };
}

async function ortAsWritten(bytes: Uint8Array, x: Tensor): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const result = await session.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.dims) });
  await session.release();
  return result;
}

t.test('DequantizeLinear → Conv models run as fused QConv kernels and match onnxruntime', async (t) => {
  const { bytes, outputs } = branchModel();
  const engine = await sharedEngine();
  const model = decodeModel(bytes);
  const shapes = new Map([['x', INPUT]]);
  const compiled = compileModel(model, { inputShapes: shapes, caps: engine.runtime.caps });
  t.equal(compiled.stats.quantizedConvs, branches.length, 'every Conv runs on packed weights');
  t.notOk(compiled.nodeInfo.some((n) => n.opType === 'DequantizeLinear' || n.opType === 'Conv'), 'no DequantizeLinear or float Conv is left');
  t.notOk(compiled.nodeInfo.some((n) => ['Relu', 'HardSwish', 'HardSigmoid', 'Mul'].includes(n.opType)), 'the activations are fused into the QConvs');

  const x = randomTensor(INPUT, 7);
  const session = await engine.loadModel(model, { inputShapes: shapes });
  const ours = (await session.run(new Map([['x', x]]))).outputs;
  await session.close();
  const expected = await ortAsWritten(bytes, x);
  for (const [index, name] of outputs.entries()) {
    const actual = ours.get(name)!;
    const reference = expected[name];
    t.same(actual.dims, [...reference.dims], `${name}: shape`);
    const data = reference.data as Float32Array;
    let maxAbs = 0;
    let peak = 1;
    for (let i = 0; i < data.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(actual.data[i] - data[i]));
      peak = Math.max(peak, Math.abs(data[i]));
    }
    // f32 rounding of the fan-in's products summed in another order (see quant-conv.test.ts), ×4 for the activation
    const fanIn = branches[index].w.slice(1).reduce((a, v) => a * v, 1) + 1;
    const bound = 4 * fanIn * 2 ** -22 * peak;
    t.ok(maxAbs <= bound, `${name}: max |Δ| ${maxAbs.toExponential(2)} ≤ ${bound.toExponential(2)} (peak ${peak.toFixed(2)})`);
  }
});

t.test('a QConv model occupies about its packed weights and scales in GPU memory', async (t) => {
  // PP-OCR-like pointwise layers: int8 per channel and int4 blocks of 32, with and without zero points
  const layers: { dtype: WeightDType; scales: 'channel' | 32; zeroPoint: boolean }[] = [
    { dtype: 'int8', scales: 'channel', zeroPoint: false },
    { dtype: 'int4', scales: 32, zeroPoint: false },
    { dtype: 'uint4', scales: 32, zeroPoint: true },
    { dtype: 'uint8', scales: 'channel', zeroPoint: true },
  ];
  const channels = 256;
  const shape = [1, channels, 4, 8];
  const builder = new ModelBuilder({ opset: 21 }).input('x', 'float32', shape);
  let input = 'x';
  let onnxBytes = 0;
  layers.forEach((layer, i) => {
    const [lo, hi] = RANGE[layer.dtype];
    const bits = layer.dtype.endsWith('4') ? 4 : 8;
    const sDims = layer.scales === 'channel' ? [channels] : [channels, channels / 32, 1, 1];
    const sCount = sDims.reduce((a, v) => a * v, 1);
    builder.initializer(`q${i}`, layer.dtype as DType, [channels, channels, 1, 1], ints(channels * channels, 80 + i, lo, hi))
      .initializer(`s${i}`, 'float32', sDims, floats(sCount, 90 + i, 0.001, 0.002))
      .initializer(`b${i}`, 'float32', [channels], floats(channels, 100 + i, -0.1, 0.1));
    const dqInputs = [`q${i}`, `s${i}`];
    if (layer.zeroPoint) {
      builder.initializer(`z${i}`, layer.dtype as DType, sDims, ints(sCount, 110 + i, lo, hi));
      dqInputs.push(`z${i}`);
    }
    builder.node('DequantizeLinear', dqInputs, [`w${i}`], layer.scales === 'channel' ? { axis: 0 } : { axis: 1, block_size: 32 })
      .node('Conv', [input, `w${i}`, `b${i}`], [`h${i}`]);
    onnxBytes += (channels * channels * bits) / 8 + sCount * 4 + (layer.zeroPoint ? (sCount * bits) / 8 : 0) + channels * 4;
    input = `h${i}`;
  });
  const bytes = builder.output(input, 'float32', shape).toBytes();
  const engine = await sharedEngine();
  const session = await engine.loadModel(decodeModel(bytes), { inputShapes: new Map([['x', shape]]) });
  const report = await session.prepare(new Map([['x', shape]]));
  await session.close();
  const float32Bytes = layers.length * channels * channels * 4;
  t.ok(report.constantBytes <= 1.2 * onnxBytes, `GPU constants ${report.constantBytes} B ≤ 1.2 × the ONNX weights, scales, zero points and biases (${onnxBytes} B)`);
  t.ok(report.constantBytes < float32Bytes / 4, `GPU constants ${report.constantBytes} B < 1/4 of the float32 weights (${float32Bytes} B)`);
});
