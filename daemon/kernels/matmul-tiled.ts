/**
 * Shared-memory tiled batched matrix multiplication for GPUs: 64×64 output tiles whose A and B slices are
 * staged through workgroup memory with coalesced loads, every invocation computing a 4×4 block of outputs.
 * CPU adapters use the register-tiled kernels of matmul-cpu.ts instead.
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
