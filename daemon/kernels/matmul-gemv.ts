/**
 * Matrix-vector products (M == 1): each invocation owns 4 adjacent output columns, so neighbouring
 * invocations read neighbouring vec4s of B's row k — one contiguous stream per workgroup.
 *  - CPU adapters: one invocation walks all of K (no workgroup memory, no barriers).
 *  - GPUs: K is split over 16 invocations per column group and the partial sums are added in workgroup
 *    memory, so a 4096-wide layer still fills the machine.
 */
import type { MatMulProblem } from './matmul-problem.ts';
import { batchCount, batchOffset, finishFunction, matmulBindings, matmulKey } from './matmul-common.ts';
import type { KernelProgram } from './types.ts';

function label(p: MatMulProblem, variant: string): string {
  return `${p.opType} ${variant} ${p.batchShape.length ? `[${p.batchShape}]×` : ''}1x${p.K}x${p.N} (${p.node})`;
}

interface Readers {
  declarations: string;
  bindings: KernelProgram['bindings'];
  /** WGSL statements run once before the loop (clamped column offsets for scalar B). */
  setup: string;
  /** vec4 of A[k..k+3] (k a multiple of 4 when A is vec4-readable). */
  loadA4: (k: string) => string;
  loadA: (k: string) => string;
  /** vec4 of B[k, col..col+3]. */
  loadB: (k: string) => string;
}

function readers(p: MatMulProblem): Readers {
  const { a, b, N } = p;
  const { declarations, bindings } = matmulBindings(p, a.vec4, b.vec4);
  const setup = b.vec4 ? '' : [0, 1, 2, 3].map((j) => `let bCol${j} = ${j === 0 ? 'col' : `min(col + ${j}u, ${N - 1}u)`} * ${b.colStride}u;`).join('\n  ');
  return {
    declarations,
    bindings,
    setup,
    loadA4: (k) => a.vec4 ? `a4[(aBase + ${k}) / 4u]` : `vec4<f32>(${[0, 1, 2, 3].map((i) => `a[aBase + (${k} + ${i}u) * ${a.colStride}u]`).join(', ')})`,
    loadA: (k) => a.vec4 ? `a4[(aBase + ${k}) / 4u][(${k}) % 4u]` : `a[aBase + (${k}) * ${a.colStride}u]`,
    loadB: (k) => b.vec4
      ? `b4[(bBase + (${k}) * ${b.rowStride}u + col) / 4u]`
      : `vec4<f32>(${[0, 1, 2, 3].map((j) => `b[bBase + (${k}) * ${b.rowStride}u + bCol${j}]`).join(', ')})`,
  };
}

function storeColumns(p: MatMulProblem): string {
  return [0, 1, 2, 3].map((j) => {
    const store = `y[yBase + col + ${j}u] = finish(acc[${j}], 0u, col + ${j}u);`;
    return p.N % 4 === 0 || j === 0 ? store : `if (col + ${j}u < ${p.N}u) { ${store} }`;
  }).join('\n  ');
}

/** Workgroup size for the CPU variant: small enough that both cores get several workgroups. */
function cpuWorkgroupSize(groups: number): number {
  let size = 64;
  while (size > 8 && Math.ceil(groups / size) < 8) size /= 2;
  return size;
}

export function gemvCpuProgram(p: MatMulProblem, maxPerDimension: number): KernelProgram {
  const { K, N } = p;
  const r = readers(p);
  const groups = Math.ceil(N / 4);
  const size = cpuWorkgroupSize(groups);
  const k4 = K - (K % 4);
  const body = [
    `let x = ${r.loadA4('k')};`,
    `acc = acc + x.x * ${r.loadB('k')} + x.y * ${r.loadB('k + 1u')} + x.z * ${r.loadB('k + 2u')} + x.w * ${r.loadB('k + 3u')};`,
  ];
  const code = `${r.declarations}

${finishFunction(p)}

@compute @workgroup_size(${size}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  if (gid.x >= ${groups}u) { return; }
  let col = gid.x * 4u;
  let batch = gid.z;
  let aBase = ${batchOffset(p.batchShape, p.a, 'batch')};
  let bBase = ${batchOffset(p.batchShape, p.b, 'batch')};
  let yBase = batch * ${N}u;
  ${r.setup}
  var acc = vec4<f32>(0.0);
  ${k4 ? `for (var k = 0u; k < ${k4}u; k = k + 4u) {\n    ${body.join('\n    ')}\n  }` : ''}
  ${K % 4 ? `for (var k = ${k4}u; k < ${K}u; k = k + 1u) {\n    acc = acc + ${r.loadA('k')} * ${r.loadB('k')};\n  }` : ''}
  ${storeColumns(p)}
}
`;
  return {
    label: label(p, 'gemv'),
    key: matmulKey(p, `gemv-cpu wg${size}`),
    code,
    workgroups: [Math.ceil(groups / size), 1, batchCount(p, maxPerDimension)],
    bindings: r.bindings,
  };
}

const COLUMN_GROUPS = 16;
const K_SPLIT = 16;

export function gemvSplitKProgram(p: MatMulProblem, maxPerDimension: number): KernelProgram {
  const { K, N } = p;
  const r = readers(p);
  const groups = Math.ceil(N / 4);
  const slice = Math.ceil(K / K_SPLIT);
  const reduceSteps: string[] = [];
  for (let s = K_SPLIT / 2; s >= 1; s /= 2) {
    reduceSteps.push(`if (lid.y < ${s}u) { partial[li] = partial[li] + partial[li + ${s * COLUMN_GROUPS}u]; }\n  workgroupBarrier();`);
  }
  const code = `${r.declarations}

var<workgroup> partial: array<vec4<f32>, ${COLUMN_GROUPS * K_SPLIT}>;

${finishFunction(p)}

@compute @workgroup_size(${COLUMN_GROUPS}, ${K_SPLIT}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let group = wid.x * ${COLUMN_GROUPS}u + lid.x;
  // a column group past N computes a clamped copy so that every invocation reaches the barriers
  let col = min(group, ${groups - 1}u) * 4u;
  let batch = wid.z;
  let aBase = ${batchOffset(p.batchShape, p.a, 'batch')};
  let bBase = ${batchOffset(p.batchShape, p.b, 'batch')};
  let yBase = batch * ${N}u;
  ${r.setup}
  var acc = vec4<f32>(0.0);
  let kEnd = min(lid.y * ${slice}u + ${slice}u, ${K}u);
  for (var k = lid.y * ${slice}u; k < kEnd; k = k + 1u) {
    acc = acc + ${r.loadA('k')} * ${r.loadB('k')};
  }
  partial[li] = acc;
  workgroupBarrier();
  ${reduceSteps.join('\n  ')}
  if (lid.y != 0u || group >= ${groups}u) { return; }
  acc = partial[li];
  ${storeColumns(p)}
}
`;
  return {
    label: label(p, 'gemv-splitk'),
    key: matmulKey(p, `gemv-splitk ${COLUMN_GROUPS}x${K_SPLIT}`),
    code,
    workgroups: [Math.ceil(groups / COLUMN_GROUPS), 1, batchCount(p, maxPerDimension)],
    bindings: r.bindings,
  };
}
