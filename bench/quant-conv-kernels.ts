/**
 * Times FP32 Conv against the INT8 / INT4 edgerun.QConv kernels on the local adapter, one layer shape at a
 * time: `node --import tsx bench/quant-conv-kernels.ts [--gpu-tiling] [--only=TEXT]`.
 * Each case is built through the op registry (what the engine compiles), dispatched REPEATS times per
 * submission, the formats of a layer taking turns; best and median ms per dispatch over SUBMISSIONS
 * submissions, GFLOP/s from the best, and the bytes of the weight buffer the kernel reads.
 */
import type { DType, Tensor } from '../daemon/graph/ir.ts';
import { buildSingleOp, randomTensor, seededRandom, testDevice, type AttrInput, type SingleOpCase } from '../test/helpers/kernel-harness.ts';
import { msPerDispatch } from './dispatch-timer.ts';

const REPEATS = 3;
const SUBMISSIONS = 15;

type Format = 'fp32' | 'int8 per-channel' | 'int4 block32' | 'uint4 block32 + zp';

interface Layer {
  name: string;
  x: number[];
  w: number[];
  attributes?: Record<string, AttrInput>;
}

const LAYERS: Layer[] = [
  { name: 'pointwise 1x256x12x80, 256->512', x: [1, 256, 12, 80], w: [512, 256, 1, 1] },
  { name: '3x3 p1 1x64x24x80, 64->64', x: [1, 64, 24, 80], w: [64, 64, 3, 3], attributes: { pads: [1, 1, 1, 1] } },
  { name: 'depthwise 3x3 p1 1x256x12x80', x: [1, 256, 12, 80], w: [256, 1, 3, 3], attributes: { group: 256, pads: [1, 1, 1, 1] } },
];
const FORMATS: Format[] = ['fp32', 'int8 per-channel', 'int4 block32', 'uint4 block32 + zp'];

function ints(count: number, lo: number, hi: number, seed: number): Int32Array {
  const random = seededRandom(seed);
  return Int32Array.from({ length: count }, () => lo + Math.floor(random() * (hi - lo + 1)));
}

function caseFor(layer: Layer, format: Format, gpuTiling: boolean): SingleOpCase {
  const x = randomTensor(layer.x, 1);
  const bias = randomTensor([layer.w[0]], 3);
  const device = gpuTiling ? { device: { isCpu: false } } : {};
  const count = layer.w.reduce((a, b) => a * b, 1);
  if (format === 'fp32') {
    return { opType: 'Conv', opset: 11, inputs: [x, randomTensor(layer.w, 2, -0.1, 0.1), bias], constantInputs: [1, 2], attributes: layer.attributes, ...device };
  }
  const [m, cg] = layer.w;
  const kernel = layer.w.slice(2);
  const blocked = format !== 'int8 per-channel';
  const dtype: DType = format === 'int8 per-channel' ? 'int8' : format === 'int4 block32' ? 'int4' : 'uint4';
  const scaleDims = blocked ? [m, Math.ceil(cg / 32), ...kernel] : [m];
  const scaleCount = scaleDims.reduce((a, b) => a * b, 1);
  const [lo, hi] = dtype === 'int8' ? [-127, 127] : dtype === 'int4' ? [-8, 7] : [0, 15];
  const scale: Tensor = { dtype: 'float32', dims: scaleDims, data: Float32Array.from({ length: scaleCount }, (_, i) => 0.001 + (i % 7) * 1e-4) };
  const zeroPoint: Tensor | null = dtype === 'uint4' ? { dtype, dims: scaleDims, data: ints(scaleCount, 0, 15, 5) } : null;
  return {
    opType: 'QConv', domain: 'edgerun',
    inputs: [x, { dtype, dims: layer.w, data: ints(count, lo, hi, 4) }, scale, zeroPoint, bias],
    constantInputs: [1, 2, 3, 4],
    attributes: { ...layer.attributes, axis: blocked ? 1 : 0, block_size: blocked ? 32 : 0 },
    ...device,
  };
}

interface Prepared {
  format: Format;
  run(): Promise<number>;
  flops: number;
  weightBytes: number;
}

/** Compiles the case's program and binds its buffers; run() times one submission of REPEATS dispatches. */
async function prepare(layer: Layer, format: Format, gpuTiling: boolean): Promise<Prepared> {
  const { device } = await testDevice();
  const single = caseFor(layer, format, gpuTiling);
  const { programs, outputs } = await buildSingleOp(single);
  if (programs.length !== 1) throw new Error(`${single.opType}: expected one program, got ${programs.length}`);
  const program = programs[0];
  const outPixels = outputs[0].shape.slice(2).reduce((a, b) => a * b, 1);
  const flops = 2 * layer.x[0] * layer.w[0] * outPixels * layer.w.slice(1).reduce((a, b) => a * b, 1);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const upload = (data: Float32Array | Int32Array | Uint32Array): GPUBuffer => {
    const buffer = device.createBuffer({ size: Math.ceil(data.byteLength / 16) * 16, usage });
    device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  };
  const output = device.createBuffer({ size: Math.ceil((outputs[0].shape.reduce((a, b) => a * b, 1) * 4) / 16) * 16, usage });
  const module = device.createShaderModule({ code: program.code });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  let weightBytes = 0;
  const entries = program.bindings.map((binding, index) => {
    let buffer: GPUBuffer;
    if (binding.kind === 'input') buffer = upload(single.inputs[binding.index]!.data);
    else if (binding.kind === 'constant') { buffer = upload(binding.data); weightBytes += binding.data.byteLength; }
    else if (binding.kind === 'output') buffer = output;
    else throw new Error('conv kernels with constant weights use no scratch');
    return { binding: index, resource: { buffer } };
  });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const run = (): Promise<number> => msPerDispatch(device, pipeline, bindGroup, program.workgroups, REPEATS);
  await run();
  return { format, run, flops, weightBytes };
}

const gpuTiling = process.argv.includes('--gpu-tiling');
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
const { caps } = await testDevice();
process.stdout.write(`adapter: ${caps.vendor} ${caps.architecture}${gpuTiling ? ' (GPU tiling)' : ''}\n`);
for (const layer of LAYERS) {
  if (only && !layer.name.includes(only)) continue;
  const prepared: Prepared[] = [];
  for (const format of FORMATS) prepared.push(await prepare(layer, format, gpuTiling));
  // formats take turns, so that load from other processes falls on all of them alike
  const times = prepared.map((): number[] => []);
  for (let s = 0; s < SUBMISSIONS; s++) {
    for (const [i, p] of prepared.entries()) times[i].push(await p.run());
  }
  for (const [i, p] of prepared.entries()) {
    const sorted = times[i].sort((a, b) => a - b);
    const best = sorted[0];
    const median = sorted[Math.floor(sorted.length / 2)];
    process.stdout.write(`${layer.name.padEnd(34)} ${p.format.padEnd(18)} best ${best.toFixed(2).padStart(8)} ms  median ${median.toFixed(2).padStart(8)} ms  ${(p.flops / best / 1e6).toFixed(2).padStart(6)} GFLOP/s  weights ${(p.weightBytes / 1024).toFixed(1).padStart(7)} KiB\n`);
  }
}
process.exit(0);
