/**
 * Hand-written ExecutionPlans of tiny WGSL programs for the GPU layer's tests, with their CPU reference.
 * A helper, not a test file (tap runs only *.test.ts).
 */
import type { ExecutionPlan, PlannedPipeline } from '../../daemon/gpu/plan.ts';

const unary = (name: string, expression: string): string => `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= arrayLength(&dst)) { return; }
  let x = src[i];
  dst[i] = ${expression}; // ${name}
}
`;

/** dst = src * scale[0] + bias[0], scale and bias bound from a constant buffer. */
const affineCode = `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= arrayLength(&dst)) { return; }
  dst[i] = src[i] * params[0] + params[1];
}
`;

export const addOne: PlannedPipeline = { key: 'test.add-one.f32.wg64', label: 'add one (test)', code: unary('add one', 'x + 1.0') };
export const square: PlannedPipeline = { key: 'test.square.f32.wg64', label: 'square (test)', code: unary('square', 'x * x') };
export const affine: PlannedPipeline = { key: 'test.affine.f32.wg64', label: 'affine (test)', code: affineCode };

export const floats = (values: ArrayLike<number>): ArrayBuffer => Float32Array.from(values).buffer;

export interface TinyPlan {
  plan: ExecutionPlan;
  /** The expected output `y` for input `x`, computed on the CPU in f32. */
  reference(x: Float32Array): Float32Array;
  elements: number;
}

const workgroupsFor = (elements: number): [number, number, number] => [Math.ceil(elements / 64), 1, 1];

/**
 * x → add one → affine(scale, bias) → y. Constants live in their own buffer; the intermediate shares a
 * buffer with the constants at an aligned offset to exercise offsets.
 */
export function addOneThenAffine(elements: number, scale: number, bias: number, alignment = 256): TinyPlan {
  const bytes = elements * 4;
  const paramsOffset = Math.ceil(bytes / alignment) * alignment;
  return {
    elements,
    plan: {
      pipelines: [addOne, affine],
      buffers: [{ id: 0, bytes }, { id: 1, bytes: paramsOffset + 8 }, { id: 2, bytes }],
      constants: [{ buffer: 1, offset: paramsOffset, data: floats([scale, bias]) }],
      steps: [
        { pipeline: 0, bindings: [{ buffer: 0, offset: 0, size: bytes }, { buffer: 1, offset: 0, size: bytes }], workgroups: workgroupsFor(elements), node: 'add_one' },
        {
          pipeline: 1,
          bindings: [{ buffer: 1, offset: 0, size: bytes }, { buffer: 1, offset: paramsOffset, size: 8 }, { buffer: 2, offset: 0, size: bytes }],
          workgroups: workgroupsFor(elements),
          node: 'affine',
        },
      ],
      inputs: [{ name: 'x', buffer: 0, offset: 0, bytes }],
      outputs: [{ name: 'y', buffer: 2, offset: 0, bytes }],
    },
    reference: (x) => x.map((v) => Math.fround(Math.fround(v + 1) * Math.fround(scale) + Math.fround(bias))),
  };
}

/** x → square → add one → square → y, ping-ponging between two buffers; also outputs the first square `s`. */
export function squareChain(elements: number): TinyPlan {
  const bytes = elements * 4;
  const whole = (buffer: number) => ({ buffer, offset: 0, size: bytes });
  return {
    elements,
    plan: {
      pipelines: [square, addOne],
      buffers: [{ id: 10, bytes }, { id: 11, bytes }, { id: 12, bytes }, { id: 13, bytes }],
      constants: [],
      steps: [
        { pipeline: 0, bindings: [whole(10), whole(11)], workgroups: workgroupsFor(elements), node: 'square_1' },
        { pipeline: 1, bindings: [whole(11), whole(12)], workgroups: workgroupsFor(elements), node: 'add_one' },
        { pipeline: 0, bindings: [whole(12), whole(13)], workgroups: workgroupsFor(elements), node: 'square_2' },
      ],
      inputs: [{ name: 'x', buffer: 10, offset: 0, bytes }],
      outputs: [{ name: 'y', buffer: 13, offset: 0, bytes }, { name: 's', buffer: 11, offset: 0, bytes }],
    },
    reference: (x) => x.map((v) => { const s = Math.fround(v * v); const t = Math.fround(s + 1); return Math.fround(t * t); }),
  };
}

export function randomInput(elements: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length: elements }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32) * 4 - 2;
  });
}

/** Largest |a - b|; the GPU may fuse a*b+c into one rounding, so affine results are compared with a tolerance. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** y[i] = the LCG x ↦ x·1664525 + 1013904223 (mod 2³²) applied `rounds` times to x[i]: exact, and as slow as wanted. */
export function lcgRounds(elements: number, rounds: number): TinyPlan & { referenceU32(x: Uint32Array): Uint32Array } {
  const bytes = elements * 4;
  const code = `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let i = gid.x;
  if (i >= arrayLength(&dst)) { return; }
  var state = src[i];
  for (var k = 0u; k < ${rounds}u; k++) { state = state * 1664525u + 1013904223u; }
  dst[i] = state;
}
`;
  const referenceU32 = (x: Uint32Array): Uint32Array => x.map((seed) => {
    let state = seed;
    for (let k = 0; k < rounds; k++) state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  });
  return {
    elements,
    plan: {
      pipelines: [{ key: `test.lcg.rounds${rounds}`, label: `lcg ${rounds} rounds (test)`, code }],
      buffers: [{ id: 0, bytes }, { id: 1, bytes }],
      constants: [],
      steps: [{ pipeline: 0, bindings: [{ buffer: 0, offset: 0, size: bytes }, { buffer: 1, offset: 0, size: bytes }], workgroups: workgroupsFor(elements), node: 'lcg' }],
      inputs: [{ name: 'x', buffer: 0, offset: 0, bytes }],
      outputs: [{ name: 'y', buffer: 1, offset: 0, bytes }],
    },
    reference: (x) => new Float32Array(referenceU32(new Uint32Array(x.buffer, x.byteOffset, x.length)).buffer),
    referenceU32,
  };
}

/**
 * Reads a[i + 64] from a 64-element workgroup array (64 = src[1] * 64 with input x = 0, 1, 2, …, so the
 * compiler cannot see it). With Dawn's robustness the index is clamped and every y is a[63] = 63; with
 * `disable_robustness` the read lands in the neighbouring workgroup array (on lavapipe: 1000 + i).
 * Only ever out of bounds within the workgroup allocation.
 */
export function workgroupOverread(): TinyPlan {
  const code = `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<workgroup> a: array<f32, 64>;
var<workgroup> b: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32) {
  a[i] = src[i];
  b[i] = 1000.0 + src[i];
  workgroupBarrier();
  dst[i] = a[i + u32(src[1]) * 64u];
}
`;
  return {
    elements: 64,
    plan: {
      pipelines: [{ key: 'test.workgroup-overread', label: 'workgroup overread (test)', code }],
      buffers: [{ id: 0, bytes: 256 }, { id: 1, bytes: 256 }],
      constants: [],
      steps: [{ pipeline: 0, bindings: [{ buffer: 0, offset: 0, size: 256 }, { buffer: 1, offset: 0, size: 256 }], workgroups: [1, 1, 1], node: 'overread' }],
      inputs: [{ name: 'x', buffer: 0, offset: 0, bytes: 256 }],
      outputs: [{ name: 'y', buffer: 1, offset: 0, bytes: 256 }],
    },
    reference: () => new Float32Array(64).fill(63),
  };
}
