/**
 * Times the MatMul kernels on the local adapter: `node --import tsx bench/matmul-kernels.ts [--gpu-tiling]`.
 * Each case is built through the op registry (what the engine would compile), dispatched `REPEATS` times
 * per submission, and reported as the best and the median over submissions, in ms per dispatch and GFLOP/s
 * (the best is the steadier figure on a shared machine).
 */
import { buildSingleOp, randomTensor, testDevice, type SingleOpCase } from '../test/helpers/kernel-harness.ts';
import { msPerDispatch } from './dispatch-timer.ts';

const REPEATS = 5;
const SUBMISSIONS = 11;

interface BenchCase {
  name: string;
  a: number[];
  b: number[];
  constantB: boolean;
}

const CASES: BenchCase[] = [
  { name: '256³ (B constant)', a: [256, 256], b: [256, 256], constantB: true },
  { name: '256³ (B dynamic)', a: [256, 256], b: [256, 256], constantB: false },
  { name: '512³ (B constant)', a: [512, 512], b: [512, 512], constantB: true },
  { name: '512³ (B dynamic)', a: [512, 512], b: [512, 512], constantB: false },
  { name: 'GEMV 1×4096·4096×4096 (B constant)', a: [1, 4096], b: [4096, 4096], constantB: true },
  { name: 'rec attention [8,40,15]·[8,15,40]', a: [1, 8, 40, 15], b: [1, 8, 15, 40], constantB: false },
  { name: 'rec classifier [1,40,120]·[120,6625]', a: [1, 40, 120], b: [120, 6625], constantB: true },
];

async function timeCase(c: BenchCase, gpuTiling: boolean): Promise<{ best: number; median: number; gflops: number; label: string }> {
  const { device } = await testDevice();
  const single: SingleOpCase = {
    opType: 'MatMul', opset: 13, inputs: [randomTensor(c.a, 1), randomTensor(c.b, 2)],
    constantInputs: c.constantB ? [1] : [], ...(gpuTiling ? { device: { isCpu: false } } : {}),
  };
  const { programs, outputs } = await buildSingleOp(single);
  const program = programs[0];
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const upload = (data: Float32Array | Int32Array | Uint32Array): GPUBuffer => {
    const buffer = device.createBuffer({ size: Math.ceil(data.byteLength / 16) * 16, usage });
    device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  };
  const output = device.createBuffer({ size: Math.ceil(outputs[0].shape.reduce((x, y) => x * y, 1) * 4 / 16) * 16, usage });
  const module = device.createShaderModule({ code: program.code });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const entries = program.bindings.map((binding, index) => {
    let buffer: GPUBuffer;
    if (binding.kind === 'input') buffer = upload(single.inputs[binding.index]!.data as Float32Array);
    else if (binding.kind === 'constant') buffer = upload(binding.data);
    else if (binding.kind === 'output') buffer = output;
    else throw new Error('matmul kernels use no scratch');
    return { binding: index, resource: { buffer } };
  });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const times: number[] = [];
  for (let s = 0; s < SUBMISSIONS + 1; s++) {
    const ms = await msPerDispatch(device, pipeline, bindGroup, program.workgroups, REPEATS);
    if (s > 0) times.push(ms);
  }
  times.sort((x, y) => x - y);
  const best = times[0];
  const median = times[Math.floor(times.length / 2)];
  const M = c.a[c.a.length - 2] * (c.a.length > 2 ? c.a.slice(0, -2).reduce((x, y) => x * y, 1) : 1);
  const flops = 2 * M * c.a[c.a.length - 1] * c.b[c.b.length - 1];
  return { best, median, gflops: flops / best / 1e6, label: program.label };
}

const gpuTiling = process.argv.includes('--gpu-tiling');
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
for (const c of CASES) {
  if (only && !c.name.includes(only)) continue;
  const { best, median, gflops, label } = await timeCase(c, gpuTiling);
  process.stdout.write(`${c.name.padEnd(40)} best ${best.toFixed(2).padStart(8)} ms  median ${median.toFixed(2).padStart(8)} ms  ${gflops.toFixed(2).padStart(6)} GFLOP/s (best)  ${label}\n`);
}
process.exit(0);
