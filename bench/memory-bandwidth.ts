/**
 * The adapter's memory bandwidth as WebGPU kernels see it: a copy kernel (bytes read + bytes written) and a
 * read kernel (every element read once, one partial sum written per invocation; the faster of two access
 * patterns), over a 64 MiB buffer (a multiple of 64 KiB).
 *   node --import tsx bench/memory-bandwidth.ts [--mib 64] [--rounds 20]
 * The kernels are timed in turn for every round (a busy machine slows them alike); prints the best GB/s of each
 * and a JSON summary line. Also exports the timing helpers and the bandwidth figure for bench/int4-gemv.ts.
 */
import { parseArgs } from 'node:util';
import type { KernelProgram } from '../daemon/kernels/types.ts';
import { testDevice } from '../test/helpers/kernel-harness.ts';
import { msPerDispatch } from './dispatch-timer.ts';

export interface Timing {
  /** ms per dispatch: the best and the median over submissions. */
  best: number;
  median: number;
}

export interface PreparedProgram {
  /** Submits `repeats` dispatches and returns the ms per dispatch once the GPU is done. */
  time(repeats: number): Promise<number>;
  dispose(): void;
}

/**
 * Sets one program up for timing: `inputs[i]` backs its i-th input binding, `outputBytes[i]` sizes its i-th
 * output; constants are uploaded and scratch allocated.
 */
export async function prepareProgram(program: KernelProgram, inputs: (Float32Array | Int32Array | null)[], outputBytes: number[]): Promise<PreparedProgram> {
  const { device } = await testDevice();
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const created: GPUBuffer[] = [];
  const buffer = (bytes: number, data?: ArrayBufferView): GPUBuffer => {
    const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    created.push(b);
    if (data) device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  };
  const entries = program.bindings.map((binding, index) => {
    switch (binding.kind) {
      case 'input': {
        const data = inputs[binding.index];
        if (!data) throw new Error(`${program.label}: no data for input ${binding.index}`);
        return { binding: index, resource: { buffer: buffer(data.byteLength, data) } };
      }
      case 'constant': return { binding: index, resource: { buffer: buffer(binding.data.byteLength, binding.data) } };
      case 'scratch': return { binding: index, resource: { buffer: buffer(binding.bytes) } };
      case 'output': return { binding: index, resource: { buffer: buffer(outputBytes[binding.index]) } };
    }
  });
  const module = device.createShaderModule({ code: program.code, label: program.label });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: program.label });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const time = (repeats: number): Promise<number> => msPerDispatch(device, pipeline, bindGroup, program.workgroups, repeats);
  // the first submission compiles the pipeline on lavapipe
  await time(1);
  return { time, dispose: () => { for (const b of created) b.destroy(); } };
}

/** Best and median of a sorted copy of `times`. */
export function summarize(times: number[]): Timing {
  const sorted = [...times].sort((x, y) => x - y);
  return { best: sorted[0], median: sorted[Math.floor(sorted.length / 2)] };
}

const WORKGROUP = 64;

function copyProgram(vec4s: number): KernelProgram {
  const groups = Math.ceil(vec4s / WORKGROUP / 16);
  return {
    label: `copy ${vec4s * 16} B`,
    key: 'bandwidth copy',
    code: `@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(${WORKGROUP}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  // 16 vec4s per invocation, neighbouring invocations on neighbouring addresses
  let stride = ${groups * WORKGROUP}u;
  for (var i = gid.x; i < ${vec4s}u; i = i + stride) {
    dst[i] = src[i];
  }
}
`,
    workgroups: [groups, 1, 1],
    bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
  };
}

/**
 * Read kernels. 'rows': the buffer as rows of 4096 vec4s, each invocation walking one column four rows per
 * iteration (the access pattern of the GEMV kernels: neighbouring invocations read neighbouring addresses);
 * 'chunks': each invocation sums its own contiguous 1 KiB chunk.
 */
function readProgram(vec4s: number, pattern: 'rows' | 'chunks'): KernelProgram {
  const width = 4096;
  const rows = vec4s / width;
  const invocations = pattern === 'rows' ? width : vec4s / 64;
  const groups = Math.ceil(invocations / WORKGROUP);
  const loop = pattern === 'rows'
    ? `for (var r = 0u; r < ${rows}u; r = r + 4u) {
    let i = r * ${width}u + gid.x;
    acc = acc + src[i] + src[i + ${width}u] + src[i + ${2 * width}u] + src[i + ${3 * width}u];
  }`
    : `let start = gid.x * 64u;
  for (var i = start; i < start + 64u; i = i + 4u) { acc = acc + src[i] + src[i + 1u] + src[i + 2u] + src[i + 3u]; }`;
  return {
    label: `read ${pattern} ${vec4s * 16} B`,
    key: `bandwidth read ${pattern}`,
    code: `@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;

@compute @workgroup_size(${WORKGROUP}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var acc = vec4<f32>(0.0);
  ${loop}
  partial[gid.x] = acc.x + acc.y + acc.z + acc.w;
}
`,
    workgroups: [groups, 1, 1],
    bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }],
  };
}

export interface BandwidthResult {
  adapter: string;
  bytes: number;
  /** GB/s (1e9 bytes) of the best submission. */
  copyGBs: number;
  readGBs: number;
}

/** Copy and read bandwidth, the kernels timed in turn for `rounds` rounds (best submission of each). */
export async function measureBandwidth(mib = 64, rounds = 20): Promise<BandwidthResult> {
  const { caps } = await testDevice();
  const bytes = mib * 1024 * 1024;
  const vec4s = bytes / 16;
  const source = new Float32Array(bytes / 4);
  for (let i = 0; i < source.length; i++) source[i] = (i % 97) * 0.01;
  const programs = [copyProgram(vec4s), readProgram(vec4s, 'rows'), readProgram(vec4s, 'chunks')];
  const prepared = [];
  for (const program of programs) prepared.push(await prepareProgram(program, [source], [bytes]));
  const best = programs.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < prepared.length; i++) best[i] = Math.min(best[i], await prepared[i].time(2));
  }
  for (const p of prepared) p.dispose();
  return {
    adapter: `${caps.vendor} ${caps.architecture}`.trim(),
    bytes,
    copyGBs: (2 * bytes) / best[0] / 1e6,
    readGBs: bytes / Math.min(best[1], best[2]) / 1e6,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, rounds: { type: 'string', default: '20' } } });
  const mib = Number(values.mib);
  if (!Number.isInteger(mib) || mib < 1 || mib > 1024) {
    process.stderr.write(`--mib must be an integer in 1..1024, got '${values.mib}'\n`);
    process.exit(2);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) {
    process.stderr.write(`--rounds must be an integer in 1..1000, got '${values.rounds}'\n`);
    process.exit(2);
  }
  const result = await measureBandwidth(mib, rounds);
  process.stdout.write(`adapter: ${result.adapter}\n`);
  process.stdout.write(`copy ${mib} MiB: ${result.copyGBs.toFixed(2)} GB/s (read + write)\n`);
  process.stdout.write(`read ${mib} MiB: ${result.readGBs.toFixed(2)} GB/s\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
