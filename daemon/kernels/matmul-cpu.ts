/**
 * Register-tiled batched matrix multiplication for CPU adapters (lavapipe), shape-generic: M, N, K and the
 * operand strides come from a small params buffer instead of being baked into the WGSL, so problems with
 * the same structure (operand layouts, bias, epilogue, alignment) share one pipeline.
 *
 * Why: lavapipe compiles a pipeline on its first dispatch, and that compile, not the run, dominates a model's
 * first inference. Measured there (Mesa 25, 2 busy cores, CPU time of the first dispatch): a trivial shader
 * costs ~80 ms, every load or store the compiled code contains ~10-15 ms per scalar component (a vec4 load
 * ~50 ms), and loops with a constant trip count are fully unrolled first (a [8]×40×15×40 attention MatMul
 * with K baked took 3.2-4.4 s; the same loop with K read from a buffer ~0.4 s). Reading the bounds from the
 * params buffer keeps every loop a loop, and sharing the pipeline saves the rest.
 *
 * Tilings of the same arithmetic, no workgroup memory and no barriers (lavapipe's caches do what shared
 * tiles do on a GPU, and barriers split the shader into costly coroutine resumes):
 *  - CPU_TILED: every invocation computes 4 rows × 4 columns, K advancing by 4 with vec4 loads where the
 *    layout allows. The fastest steady state for large problems, ~550-950 ms to compile.
 *  - CPU_COMPACT: 4 rows × 4 columns, K advancing by 1 (a quarter of the load sites), ~200-300 ms to
 *    compile and as fast as CPU_TILED up to a few million multiply-adds (see matmul.ts).
 *  - CPU_COMPACT_ROW: 1 row × 4 columns, K advancing by 1, for small single-row problems.
 */
import { wgslLiteral } from './elementwise-expr.ts';
import { batchCount, epilogueFunction, matmulBindings, matmulKey } from './matmul-common.ts';
import type { MatMulProblem, OperandAccess } from './matmul-problem.ts';
import { stridesOf } from './shader-util.ts';
import type { KernelProgram } from './types.ts';

/**
 * Output rows per invocation (each a vec4 of 4 columns), how far K advances per loop iteration, and the
 * workgroup size along columns (x) and rows (y).
 */
export interface CpuTiling { rows: number; kStep: 1 | 4; workgroup: [number, number] }

export const CPU_TILED: CpuTiling = { rows: 4, kStep: 4, workgroup: [8, 8] };
export const CPU_COMPACT: CpuTiling = { rows: 4, kStep: 1, workgroup: [8, 8] };
/** For single-row problems (M = 1): a quarter of the compact kernel's load and store sites. */
export const CPU_COMPACT_ROW: CpuTiling = { rows: 1, kStep: 1, workgroup: [64, 1] };

/**
 * How an operand's batch offset is computed: none (one matrix), linear in the flat batch index (stride
 * from the params), or an expression with the batch shape baked in (broadcast batch dims).
 */
type BatchAccess = { kind: 'none' } | { kind: 'linear'; stride: number } | { kind: 'baked'; expr: string; key: string };

function batchAccess(batchShape: number[], operand: OperandAccess): BatchAccess {
  const strides = operand.batchStrides;
  if (strides.every((s) => s === 0)) return { kind: 'none' };
  const inner = stridesOf(batchShape);
  const active = batchShape.map((_, d) => d).filter((d) => strides[d] !== 0 && batchShape[d] > 1);
  const unit = strides[active[0]] / inner[active[0]];
  if (batchShape.every((size, d) => size === 1 || strides[d] === inner[d] * unit)) return { kind: 'linear', stride: unit };
  const expr = active.map((d) => {
    let coordinate = inner[d] === 1 ? 'batch' : `(batch / ${inner[d]}u)`;
    if (d > 0) coordinate = `(${coordinate} % ${batchShape[d]}u)`;
    return `${coordinate} * ${strides[d]}u`;
  }).join(' + ');
  return { kind: 'baked', expr, key: `[${batchShape}]s[${strides}]` };
}

function batchKey(access: BatchAccess): string {
  return access.kind === 'baked' ? access.key : access.kind;
}

/** WGSL of the operand's batch offset; `stride` names its params field. */
function batchExpr(access: BatchAccess, stride: string): string {
  if (access.kind === 'none') return '0u';
  if (access.kind === 'linear') return `batch * ${stride}`;
  return access.expr;
}

function label(p: MatMulProblem, tiling: CpuTiling): string {
  return `${p.opType} cpu-${tiling.rows}x4k${tiling.kStep} ${p.batchShape.length ? `[${p.batchShape}]×` : ''}${p.M}x${p.K}x${p.N} (${p.node})`;
}

/**
 * The params buffer, four vec4<u32>:
 *   dims = (M, N, K, K rounded down to a multiple of 4)
 *   sa   = (A row stride, A column stride, A batch stride, unused)
 *   sb   = (B row stride, B column stride, B batch stride, unused)
 *   sc   = (C row stride, C column stride, Y batch stride M·N, unused)
 */
function paramsData(p: MatMulProblem, aBatch: BatchAccess, bBatch: BatchAccess): Uint32Array {
  const batchStride = (access: BatchAccess) => (access.kind === 'linear' ? access.stride : 0);
  return Uint32Array.from([
    p.M, p.N, p.K, p.K - (p.K % 4),
    p.a.rowStride, p.a.colStride, batchStride(aBatch), 0,
    p.b.rowStride, p.b.colStride, batchStride(bBatch), 0,
    p.bias?.rowStride ?? 0, p.bias?.colStride ?? 0, p.M * p.N, 0,
  ]);
}

/** Everything besides the shapes that the generated code depends on. */
function structureKey(p: MatMulProblem, aVec4: boolean, bVec4: boolean, aBatch: BatchAccess, bBatch: BatchAccess, rows: number): string {
  const operand = (vec4: boolean, batch: BatchAccess) => `${vec4 ? 'v' : 's'}${batchKey(batch)}`;
  const flags = [p.M % rows === 0 ? 'm' : 'M', p.N % 4 === 0 ? 'n' : 'N', p.K % 4 === 0 ? 'k' : 'K'].join('');
  return `A(${operand(aVec4, aBatch)}) B(${operand(bVec4, bBatch)}) ${p.bias ? 'bias' : 'nobias'} alpha=${p.alpha} beta=${p.beta} ${flags}`;
}

/**
 * Statements storing acc0..acc{rows-1} (columns col..col+3 of rows row..) through `finish`: one vec4 store
 * per row when N is a multiple of 4, else guarded scalar stores.
 */
function storeBlock(p: MatMulProblem, rows: number): string {
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const m = r === 0 ? 'row' : `row + ${r}u`;
    const values = [0, 1, 2, 3].map((j) => {
      const n = j === 0 ? 'col' : `col + ${j}u`;
      return `finish(acc${r}.${'xyzw'[j]}, ${p.bias ? `(${m}) * sc.x + (${n}) * sc.y` : '0u'})`;
    });
    const stores = p.N % 4 === 0
      ? [`y4[(yBase + (${m}) * N + col) / 4u] = vec4<f32>(${values.join(', ')});`]
      : [`let yRow${r} = yBase + (${m}) * N + col;`, ...values.map((value, j) => {
        const store = `y[yRow${r} + ${j}u] = ${value};`;
        return j === 0 ? store : `if (col + ${j}u < N) { ${store} }`;
      })];
    lines.push(p.M % rows === 0 || r === 0 ? stores.join('\n  ') : `if (${m} < M) {\n    ${stores.join('\n    ')}\n  }`);
  }
  return lines.join('\n  ');
}

export function cpuMatmulProgram(p: MatMulProblem, maxPerDimension: number, tiling: CpuTiling): KernelProgram {
  const { rows, kStep, workgroup } = tiling;
  // stepping K by 1 reads A as scalars whatever its layout
  const aVec4 = kStep === 4 && p.a.vec4;
  const bVec4 = p.b.vec4;
  const aBatch = batchAccess(p.batchShape, p.a);
  const bBatch = batchAccess(p.batchShape, p.b);
  const { declarations, bindings } = matmulBindings(p, aVec4, bVec4, p.N % 4 === 0);
  bindings.push({ kind: 'constant', data: paramsData(p, aBatch, bBatch) });
  const paramsBinding = `@group(0) @binding(${bindings.length - 1}) var<storage, read> params: array<vec4<u32>, 4>;`;

  const rowIndices = Array.from({ length: rows }, (_, r) => r);
  const setup: string[] = [];
  // rows past M are clamped to M-1 (columns past N to N-1): their loads stay inside the operands and their
  // results are never stored
  for (const r of rowIndices) setup.push(`let aRow${r} = aBase + ${r === 0 ? 'row' : `min(row + ${r}u, M - 1u)`} * sa.x;`);
  if (!bVec4) for (let j = 0; j < 4; j++) setup.push(`let bCol${j} = ${j === 0 ? 'col' : `min(col + ${j}u, N - 1u)`} * sb.y;`);
  const loadB = (k: string) => bVec4
    ? `b4[(bBase + ${k} * sb.x + col) / 4u]`
    : `vec4<f32>(${[0, 1, 2, 3].map((j) => `b[bBase + ${k} * sb.x + bCol${j}]`).join(', ')})`;
  const scalarA = (r: number, k: string) => aVec4 ? `a4[(aRow${r} + ${k}) / 4u][${k} % 4u]` : `a[aRow${r} + ${k} * sa.y]`;
  const loops: string[] = [];
  if (kStep === 4) {
    const body: string[] = [];
    for (let i = 0; i < 4; i++) body.push(`let w${i} = ${loadB(`(k + ${i}u)`)};`);
    for (const r of rowIndices) {
      body.push(`let x${r} = ${aVec4 ? `a4[(aRow${r} + k) / 4u]` : `vec4<f32>(${[0, 1, 2, 3].map((i) => `a[aRow${r} + (k + ${i}u) * sa.y]`).join(', ')})`};`);
      body.push(`acc${r} = acc${r} + x${r}.x * w0 + x${r}.y * w1 + x${r}.z * w2 + x${r}.w * w3;`);
    }
    loops.push(`for (var k = 0u; k < dims.w; k = k + 4u) {\n    ${body.join('\n    ')}\n  }`);
  }
  if (kStep === 1 || p.K % 4 !== 0) {
    const start = kStep === 4 ? 'dims.w' : '0u';
    const body = [`let w = ${loadB('k')};`, ...rowIndices.map((r) => `acc${r} = acc${r} + ${scalarA(r, 'k')} * w;`)];
    loops.push(`for (var k = ${start}; k < K; k = k + 1u) {\n    ${body.join('\n    ')}\n  }`);
  }
  const alpha = p.alpha === 1 ? 'acc' : `${wgslLiteral(p.alpha, 'f32')} * acc`;
  const beta = p.beta === 1 ? '' : `${wgslLiteral(p.beta, 'f32')} * `;
  const code = `${declarations}
${paramsBinding}

${epilogueFunction(p.epilogue, 'fn finish(acc: f32, c: u32) -> f32', p.bias ? `${alpha} + ${beta}bias[c]` : alpha)}

@compute @workgroup_size(${workgroup[0]}, ${workgroup[1]}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let dims = params[0];
  let sa = params[1];
  let sb = params[2];
  let sc = params[3];
  let M = dims.x;
  let N = dims.y;
  let K = dims.z;
  let col = gid.x * 4u;
  let row = gid.y * ${rows}u;
  if (col >= N || row >= M) { return; }
  let batch = gid.z;
  let aBase = ${batchExpr(aBatch, 'sa.z')};
  let bBase = ${batchExpr(bBatch, 'sb.z')};
  let yBase = batch * sc.z;
  ${setup.join('\n  ')}
  ${rowIndices.map((r) => `var acc${r} = vec4<f32>(0.0);`).join('\n  ')}
  ${loops.join('\n  ')}
  ${storeBlock(p, rows)}
}
`;
  return {
    label: label(p, tiling),
    key: matmulKey(p, `cpu-${rows}x4k${kStep} wg${workgroup.join('x')}`, structureKey(p, aVec4, bVec4, aBatch, bBatch, rows)),
    code,
    workgroups: [Math.ceil(p.N / 4 / workgroup[0]), Math.ceil(p.M / rows / workgroup[1]), batchCount(p, maxPerDimension)],
    bindings,
  };
}
