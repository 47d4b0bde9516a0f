/**
 * Register-tiled batched matrix multiplication: every invocation computes a 4×4 block of outputs.
 *
 * Two variants of the same arithmetic:
 *  - `registerTiledProgram` reads A and B straight from storage (vec4 loads where the layout allows) with no
 *    workgroup memory and no barriers. CPU adapters (lavapipe) run it fastest: their caches do what shared
 *    tiles do on a GPU, and barriers split the shader into costly coroutine resumes.
 *  - `sharedTiledProgram` stages 64×64 output tiles' A and B slices through workgroup memory with coalesced
 *    loads, the usual shape for discrete and integrated GPUs.
 */
import type { MatMulProblem } from './matmul-problem.ts';
import { batchCount, batchOffset, finishFunction, matmulBindings, matmulKey } from './matmul-common.ts';
import type { KernelProgram } from './types.ts';

function label(p: MatMulProblem, variant: string): string {
  return `${p.opType} ${variant} ${p.batchShape.length ? `[${p.batchShape}]×` : ''}${p.M}x${p.K}x${p.N} (${p.node})`;
}

/** WGSL statements storing acc0..acc{rows-1} (rows row.., columns col..col+3) with bounds checks where needed. */
function storeBlock(p: MatMulProblem, rows: number): string {
  const lines: string[] = [];
  for (let r = 0; r < rows; r++) {
    const rowGuard = p.M % rows === 0 ? '' : `if (row + ${r}u < ${p.M}u) `;
    const stores: string[] = [];
    for (let j = 0; j < 4; j++) {
      const column = `col + ${j}u`;
      const store = `y[yRow${r} + ${column}] = finish(acc${r}[${j}], row + ${r}u, ${column});`;
      stores.push(p.N % 4 === 0 || j === 0 ? store : `if (${column} < ${p.N}u) { ${store} }`);
    }
    lines.push(`let yRow${r} = yBase + (row + ${r}u) * ${p.N}u;`);
    lines.push(`${rowGuard}{\n    ${stores.join('\n    ')}\n  }`);
  }
  return lines.join('\n  ');
}

export interface RegisterTiling {
  /** Output rows per invocation (each row is one vec4 accumulator of 4 columns). */
  rows: number;
  /** Workgroup size along columns (x) and rows (y). */
  workgroup: [number, number];
}

export const DEFAULT_REGISTER_TILING: RegisterTiling = { rows: 4, workgroup: [8, 8] };

export function registerTiledProgram(p: MatMulProblem, maxPerDimension: number, tiling = DEFAULT_REGISTER_TILING): KernelProgram {
  const { M, K, N, a, b } = p;
  const { rows, workgroup } = tiling;
  const aVec4 = a.vec4;
  const bVec4 = b.vec4;
  const { declarations, bindings } = matmulBindings(p, aVec4, bVec4);
  const batches = batchCount(p, maxPerDimension);
  const k4 = K - (K % 4);
  const rowIndices = Array.from({ length: rows }, (_, r) => r);
  const lines: string[] = [];
  // rows past M are clamped to M-1: their loads stay inside A and their results are never stored
  for (const r of rowIndices) {
    const row = r === 0 ? 'row' : `min(row + ${r}u, ${M - 1}u)`;
    lines.push(`let aRow${r} = aBase + ${row} * ${a.rowStride}u;`);
  }
  const loadA = (r: number, k: string): string => aVec4
    ? `a4[(aRow${r} + ${k}) / 4u]`
    : `vec4<f32>(${[0, 1, 2, 3].map((i) => `a[aRow${r} + (${k} + ${i}u) * ${a.colStride}u]`).join(', ')})`;
  const scalarA = (r: number, k: string): string => aVec4 ? `a4[(aRow${r} + ${k}) / 4u][${k} % 4u]` : `a[aRow${r} + ${k} * ${a.colStride}u]`;
  if (!bVec4) {
    // columns past N are clamped likewise
    for (let j = 0; j < 4; j++) lines.push(`let bCol${j} = ${j === 0 ? 'col' : `min(col + ${j}u, ${N - 1}u)`} * ${b.colStride}u;`);
  }
  const loadB = (k: string): string => bVec4
    ? `b4[(bBase + (${k}) * ${b.rowStride}u + col) / 4u]`
    : `vec4<f32>(${[0, 1, 2, 3].map((j) => `b[bBase + (${k}) * ${b.rowStride}u + bCol${j}]`).join(', ')})`;
  const accumulate: string[] = [];
  for (let i = 0; i < 4; i++) accumulate.push(`let w${i} = ${loadB(`k + ${i}u`)};`);
  for (const r of rowIndices) {
    accumulate.push(`let x${r} = ${loadA(r, 'k')};`);
    accumulate.push(`acc${r} = acc${r} + x${r}.x * w0 + x${r}.y * w1 + x${r}.z * w2 + x${r}.w * w3;`);
  }
  const mainLoop = k4 > 0
    ? `for (var k = 0u; k < ${k4}u; k = k + 4u) {\n    ${accumulate.join('\n    ')}\n  }`
    : '';
  const tailBody = [`let w = ${loadB('k')};`, ...rowIndices.map((r) => `acc${r} = acc${r} + ${scalarA(r, 'k')} * w;`)];
  const tail = K % 4
    ? `for (var k = ${k4}u; k < ${K}u; k = k + 1u) {\n    ${tailBody.join('\n    ')}\n  }`
    : '';
  const code = `${declarations}

${finishFunction(p)}

@compute @workgroup_size(${workgroup[0]}, ${workgroup[1]}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x * 4u;
  let row = gid.y * ${rows}u;
  if (col >= ${N}u || row >= ${M}u) { return; }
  let batch = gid.z;
  let aBase = ${batchOffset(p.batchShape, a, 'batch')};
  let bBase = ${batchOffset(p.batchShape, b, 'batch')};
  let yBase = batch * ${M * N}u;
  ${lines.join('\n  ')}
  ${rowIndices.map((r) => `var acc${r} = vec4<f32>(0.0);`).join('\n  ')}
  ${mainLoop}
  ${tail}
  ${storeBlock(p, rows)}
}
`;
  return {
    label: label(p, `tiled${rows}x4`),
    key: matmulKey(p, `tiled${rows}x4 wg${workgroup.join('x')}`),
    code,
    workgroups: [Math.ceil(N / 4 / workgroup[0]), Math.ceil(M / rows / workgroup[1]), batches],
    bindings,
  };
}

const TILE = 64;
const TILE_K = 16;

/**
 * Loads one element per step of a [rows × cols] slice into workgroup memory. The loop runs along the
 * operand's unit-stride axis so that neighbouring invocations read neighbouring addresses.
 */
function stageLoad(rowsFast: boolean, rows: number, cols: number, read: (r: string, c: string) => string, store: (r: string, c: string) => string): string {
  const count = rows * cols;
  const steps = count / 256;
  const [r, c] = rowsFast ? [`(e % ${rows}u)`, `(e / ${rows}u)`] : [`(e / ${cols}u)`, `(e % ${cols}u)`];
  return `for (var s = 0u; s < ${steps}u; s = s + 1u) {
      let e = li + s * 256u;
      ${store(r, c)} = ${read(r, c)};
    }`;
}

export function sharedTiledProgram(p: MatMulProblem, maxPerDimension: number): KernelProgram {
  const { M, K, N, a, b } = p;
  const { declarations, bindings } = matmulBindings(p, false, false);
  const batches = batchCount(p, maxPerDimension);
  const lastK = Math.max(K - 1, 0);
  // A tile: [TILE_K][TILE] (k-major so a thread's 4 rows are one vec4); B tile: [TILE_K][TILE]
  const readA = (r: string, c: string) =>
    `select(0.0, a[aBase + min(tileRow + ${r}, ${M - 1}u) * ${a.rowStride}u + min(k0 + ${c}, ${lastK}u) * ${a.colStride}u], tileRow + ${r} < ${M}u && k0 + ${c} < ${K}u)`;
  const readB = (r: string, c: string) =>
    `select(0.0, b[bBase + min(k0 + ${r}, ${lastK}u) * ${b.rowStride}u + min(tileCol + ${c}, ${N - 1}u) * ${b.colStride}u], k0 + ${r} < ${K}u && tileCol + ${c} < ${N}u)`;
  const loadA = stageLoad(a.colStride !== 1 && a.rowStride === 1, TILE, TILE_K, readA,
    (r, c) => `tileA[${c} * ${TILE / 4}u + ${r} / 4u][${r} % 4u]`);
  const loadB = stageLoad(!(b.colStride === 1), TILE_K, TILE, readB,
    (r, c) => `tileB[${r} * ${TILE / 4}u + ${c} / 4u][${c} % 4u]`);
  const code = `${declarations}

var<workgroup> tileA: array<vec4<f32>, ${(TILE_K * TILE) / 4}>;
var<workgroup> tileB: array<vec4<f32>, ${(TILE_K * TILE) / 4}>;

${finishFunction(p)}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let batch = wid.z;
  let tileRow = wid.y * ${TILE}u;
  let tileCol = wid.x * ${TILE}u;
  let aBase = ${batchOffset(p.batchShape, a, 'batch')};
  let bBase = ${batchOffset(p.batchShape, b, 'batch')};
  let yBase = batch * ${M * N}u;
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k0 = 0u; k0 < ${K}u; k0 = k0 + ${TILE_K}u) {
    ${loadA}
    ${loadB}
    workgroupBarrier();
    for (var k = 0u; k < ${TILE_K}u; k = k + 1u) {
      let x = tileA[k * ${TILE / 4}u + lid.y];
      let w = tileB[k * ${TILE / 4}u + lid.x];
      acc0 = acc0 + x.x * w;
      acc1 = acc1 + x.y * w;
      acc2 = acc2 + x.z * w;
      acc3 = acc3 + x.w * w;
    }
    workgroupBarrier();
  }
  let row = tileRow + lid.y * 4u;
  let col = tileCol + lid.x * 4u;
  if (row >= ${M}u || col >= ${N}u) { return; }
  ${storeBlock(p, 4)}
}
`;
  return {
    label: label(p, 'shared64'),
    key: matmulKey(p, `shared${TILE}k${TILE_K}`),
    code,
    workgroups: [Math.ceil(N / TILE), Math.ceil(M / TILE), batches],
    bindings,
  };
}
