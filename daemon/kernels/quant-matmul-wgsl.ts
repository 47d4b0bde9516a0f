/**
 * The fused dequantizing matmul: Y[M, N] = A[M, K] · dequant(B) with B packed (quant-weights.ts). Every
 * invocation owns a slot of 8 output columns — one u32 word of a B row in int4, two in int8 — for R rows of A
 * (R = 1 for GEMV, 4 for the small-M / GEMM tiling), and walks K block by block, unpacking each word into f32
 * vec4s inside the loop. Weights are read once per R rows and never exist dequantized in memory.
 *
 * CPU adapters (lavapipe) read the shapes from a params buffer so loops stay loops and every QMatMul of the
 * same structure shares one pipeline (see matmul-cpu.ts for the compile-time figures behind this); GPUs get
 * them baked. On GPUs a single-row problem splits K over 16 invocations per column slot and adds the partial
 * sums in workgroup memory, so a 4096-wide layer still fills the machine.
 */
import { epilogueFunction } from './matmul-common.ts';
import { elementwiseProgramKey } from './elementwise-expr.ts';
import type { PackedMatmulWeights } from './quant-weights.ts';
import { valuesPerWord } from './quant-weights.ts';
import { ShapeValues } from './shader-util.ts';
import type { Binding, DeviceCaps, Epilogue, KernelProgram } from './types.ts';

export interface QMatMulProblem {
  node: string;
  opType: string;
  /** Rows of A (all batch dims folded in). */
  M: number;
  weights: PackedMatmulWeights;
  bias: Float32Array | null;
  epilogue?: Epilogue;
}

const SPLIT_K = 16;
/** K steps per iteration of the inner loop (the loop bound is not baked on CPU adapters, so no driver unrolls it). */
const UNROLL = 4;
const GPU_SPLIT_COLUMNS = 16;

/** WGSL vec4<f32> of the fields g*4 .. g*4+3 of word `w`. */
function unpack(w: string, group: number, bits: number): string {
  const shifts = [0, 1, 2, 3].map((j) => `${(group * 4 + j) * bits}u`).join(', ');
  return `vec4<f32>((vec4<u32>(${w}) >> vec4<u32>(${shifts})) & vec4<u32>(${(1 << bits) - 1}u))`;
}

/** Workgroup width for CPU adapters: small enough that both cores get several workgroups. */
function cpuWorkgroupWidth(words: number): number {
  let size = 64;
  while (size > 8 && Math.ceil(words / size) < 8) size /= 2;
  return size;
}

interface Variant {
  name: string;
  rows: number;
  workgroup: [number, number];
  splitK: boolean;
}

function variantFor(p: QMatMulProblem, device: DeviceCaps, slotsPerRow: number): Variant {
  if (p.M === 1) {
    if (!device.isCpu) return { name: `gemv-splitk${SPLIT_K}`, rows: 1, workgroup: [GPU_SPLIT_COLUMNS, SPLIT_K], splitK: true };
    return { name: 'gemv', rows: 1, workgroup: [cpuWorkgroupWidth(slotsPerRow), 1], splitK: false };
  }
  return { name: 'tile4', rows: 4, workgroup: device.isCpu ? [8, 4] : [16, 4], splitK: false };
}

export function qmatmulProgram(p: QMatMulProblem, device: DeviceCaps): KernelProgram {
  const w = p.weights;
  // every invocation owns a slot of 8 output columns: one word of int4, two words of int8
  const perWord = valuesPerWord(w.bits);
  const wordsPerSlot = 8 / perWord;
  const groups = 2;
  const slotsPerRow = w.nPad / 8;
  const wordOffset = (g: number) => (wordsPerSlot === 1 ? 0 : g);
  const fieldGroup = (g: number) => (wordsPerSlot === 1 ? g : 0);
  const wordOffsets = Array.from({ length: wordsPerSlot }, (_, o) => o);
  const variant = variantFor(p, device, slotsPerRow);
  const { rows, workgroup, splitK } = variant;
  const shapes = new ShapeValues(device.isCpu);
  const M = shapes.value(p.M, 'M');
  const N = shapes.value(w.N, 'N');
  const K = shapes.value(w.K, 'K');
  const WPR = shapes.value(slotsPerRow * wordsPerSlot, 'WPR');
  const SPR = shapes.value(slotsPerRow, 'SPR');
  const BLOCK = shapes.value(w.blockSize, 'BLOCK');
  const BLOCKS = shapes.value(w.blocks, 'BLOCKS');

  const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'constant', data: w.words }, { kind: 'constant', data: w.scales }];
  const declarations = [
    '@group(0) @binding(0) var<storage, read> a: array<f32>;',
    '@group(0) @binding(1) var<storage, read> words: array<u32>;',
    '@group(0) @binding(2) var<storage, read> scales: array<vec4<f32>>;',
  ];
  if (w.zeros) {
    declarations.push(`@group(0) @binding(${bindings.length}) var<storage, read> zeros: array<u32>;`);
    bindings.push({ kind: 'constant', data: w.zeros });
  }
  if (p.bias) {
    declarations.push(`@group(0) @binding(${bindings.length}) var<storage, read> bias: array<f32>;`);
    bindings.push({ kind: 'constant', data: p.bias });
  }
  declarations.push(`@group(0) @binding(${bindings.length}) var<storage, read_write> y: array<f32>;`);
  bindings.push({ kind: 'output', index: 0 });

  const rowIds = Array.from({ length: rows }, (_, r) => r);
  const groupIds = Array.from({ length: groups }, (_, g) => g);
  const zeroSetup = w.zeros
    ? [...wordOffsets.map((o) => `let zw${o} = zeros[kb * ${WPR} + slot * ${wordsPerSlot}u + ${o}u];`), ...groupIds.map((g) => `let z${g} = ${unpack(`zw${wordOffset(g)}`, fieldGroup(g), w.bits)};`)]
    : w.zeroConstant !== 0 ? groupIds.map((g) => `let z${g} = vec4<f32>(${w.zeroConstant}.0);`) : [];
  const subtractZero = (g: number) => (w.zeros || w.zeroConstant !== 0 ? ` - z${g}` : '');
  const kStart = splitK ? 'max(k0, kLo)' : 'k0';
  const kLimit = splitK ? `min(min(k0 + ${BLOCK}, ${K}), kHi)` : `min(k0 + ${BLOCK}, ${K})`;
  // one step of K (k + offset); UNROLL steps per iteration of the main loop, the rest one by one
  // Several rows: each weight is dequantized once ((q - z)·s) and multiplied into every row's accumulator, so
  // no per-block partial sums occupy registers. One row: partial sums x·(q - z) per block, scaled at its end.
  const scaleInLoop = rows > 1;
  // One row of int4: the zero point leaves the inner loop, Σ x·(q - z) = Σ x·q - z·Σ x per block (q ≤ 15 and
  // blocks are short, so the difference loses nothing that matters); two vec4 subtractions fewer per step.
  const zeroAfterBlock = !scaleInLoop && w.bits === 4 && subtractZero(0) !== '';
  const target = (r: number, g: number) => (scaleInLoop ? `acc${r}_${g}` : `d${r}_${g}`);
  const step = (offset: number): string[] => {
    const k = offset ? `k + ${offset}u` : 'k';
    const v = `_${offset}`;
    const dequantized = (g: number) => {
      const q = `${unpack(`wd${wordOffset(g)}${v}`, fieldGroup(g), w.bits)}${zeroAfterBlock ? '' : subtractZero(g)}`;
      return scaleInLoop ? `(${q}) * s${g}` : q;
    };
    return [
      ...wordOffsets.map((o) => `let wd${o}${v} = words[(${k}) * ${WPR} + slot * ${wordsPerSlot}u + ${o}u];`),
      ...groupIds.map((g) => `let q${g}${v} = ${dequantized(g)};`),
      ...rowIds.flatMap((r) => [`let x${r}${v} = a[aRow${r} + ${k}];`, ...groupIds.map((g) => `${target(r, g)} = ${target(r, g)} + x${r}${v} * q${g}${v};`),
        ...(zeroAfterBlock ? [`sx${r} = sx${r} + x${r}${v};`] : [])]),
    ];
  };
  const loadScales = groupIds.map((g) => `let s${g} = scales[kb * ${SPR} * 2u + slot * 2u + ${g}u];`).join('\n    ');
  const unrolled = Array.from({ length: UNROLL }, (_, i) => step(i)).flat();
  const blockLoop = `for (var kb = ${splitK ? 'kLo / BLOCK_BAKED' : '0u'}; kb < ${BLOCKS}; kb = kb + 1u) {
    let k0 = kb * ${BLOCK};
    ${splitK ? 'if (k0 >= kHi) { break; }' : ''}
    ${zeroSetup.join('\n    ')}
    ${scaleInLoop ? loadScales : rowIds.flatMap((r) => groupIds.map((g) => `var d${r}_${g} = vec4<f32>(0.0);`)).join('\n    ')}
    ${zeroAfterBlock ? rowIds.map((r) => `var sx${r} = 0.0;`).join('\n    ') : ''}
    let kEnd = ${kLimit};
    var k = ${kStart};
    for (; k + ${UNROLL - 1}u < kEnd; k = k + ${UNROLL}u) {
      ${unrolled.join('\n      ')}
    }
    for (; k < kEnd; k = k + 1u) {
      ${step(0).join('\n      ')}
    }
    ${scaleInLoop ? '' : loadScales}
    ${scaleInLoop ? '' : rowIds.flatMap((r) => groupIds.map((g) => `acc${r}_${g} = acc${r}_${g} + ${zeroAfterBlock ? `(d${r}_${g} - z${g} * sx${r})` : `d${r}_${g}`} * s${g};`)).join('\n    ')}
  }`.replaceAll('BLOCK_BAKED', BLOCK);

  const stores: string[] = [];
  for (const r of rowIds) {
    const lines: string[] = [];
    for (const g of groupIds) {
      for (let j = 0; j < 4; j++) {
        const n = `col + ${g * 4 + j}u`;
        const store = `y[yRow${r} + ${n}] = finish(acc${r}_${g}[${j}], ${n});`;
        lines.push(w.N % 8 === 0 ? store : `if (${n} < ${N}) { ${store} }`);
      }
    }
    const body = [`let yRow${r} = (row + ${r}u) * ${N};`, ...lines].join('\n    ');
    stores.push(r === 0 || p.M % rows === 0 ? `{\n    ${body}\n  }` : `if (row + ${r}u < ${M}) {\n    ${body}\n  }`);
  }
  const finish = epilogueFunction(p.epilogue, 'fn finish(acc: f32, n: u32) -> f32', p.bias ? 'acc + bias[n]' : 'acc');
  const accumulators = rowIds.flatMap((r) => groupIds.map((g) => `var acc${r}_${g} = vec4<f32>(0.0);`)).join('\n  ');

  let main: string;
  if (splitK) {
    // each of the SPLIT_K invocations of a column slot takes a contiguous slice of K; slices are reduced in
    // workgroup memory, one vec4 per output group
    const slice = Math.ceil(w.K / SPLIT_K);
    const reduce: string[] = [];
    for (let s = SPLIT_K / 2; s >= 1; s /= 2) {
      reduce.push(`if (lid.y < ${s}u) {\n    ${groupIds.map((g) => `partial${g}[li] = partial${g}[li] + partial${g}[li + ${s * GPU_SPLIT_COLUMNS}u];`).join('\n    ')}\n  }\n  workgroupBarrier();`);
    }
    main = `${groupIds.map((g) => `var<workgroup> partial${g}: array<vec4<f32>, ${GPU_SPLIT_COLUMNS * SPLIT_K}>;`).join('\n')}

@compute @workgroup_size(${workgroup[0]}, ${workgroup[1]}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let slotIndex = wid.x * ${GPU_SPLIT_COLUMNS}u + lid.x;
  // slots past the row compute a clamped copy so that every invocation reaches the barriers
  let slot = min(slotIndex, ${SPR} - 1u);
  let col = slot * 8u;
  let row = 0u;
  let aRow0 = 0u;
  let kLo = lid.y * ${slice}u;
  let kHi = min(kLo + ${slice}u, ${K});
  ${accumulators}
  ${blockLoop}
  ${groupIds.map((g) => `partial${g}[li] = acc0_${g};`).join('\n  ')}
  workgroupBarrier();
  ${reduce.join('\n  ')}
  if (lid.y != 0u || slotIndex >= ${SPR}) { return; }
  ${groupIds.map((g) => `acc0_${g} = partial${g}[li];`).join('\n  ')}
  ${stores.join('\n  ')}
}`;
  } else {
    main = `@compute @workgroup_size(${workgroup[0]}, ${workgroup[1]}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${shapes.loads().join('\n  ')}
  let slot = gid.x;
  let row = gid.y * ${rows}u;
  if (slot >= ${SPR} || row >= ${M}) { return; }
  let col = slot * 8u;
  ${rowIds.map((r) => `let aRow${r} = ${r === 0 ? 'row' : `min(row + ${r}u, ${M} - 1u)`} * ${K};`).join('\n  ')}
  ${accumulators}
  ${blockLoop}
  ${stores.join('\n  ')}
}`;
  }
  const paramsBinding = shapes.binding();
  const paramsDeclaration = shapes.declaration(bindings.length);
  if (paramsBinding) bindings.push(paramsBinding);
  const code = `${declarations.join('\n')}
${paramsDeclaration}

${finish}

${main}
`;
  const structure = [
    `int${w.bits}`, w.zeros ? 'zp' : `z${w.zeroConstant}`, p.bias ? 'bias' : 'nobias',
    w.N % 8 === 0 ? 'n' : 'N', p.M % rows === 0 ? 'm' : 'M', scaleInLoop ? 'sl' : zeroAfterBlock ? 'sbz' : 'sb',
  ].join(' ');
  return {
    label: `${p.opType} ${variant.name} int${w.bits} ${p.M}x${w.K}x${w.N} blk${w.blockSize} (${p.node})`,
    key: `QMatMul ${variant.name} wg${workgroup.join('x')} u${UNROLL} ${structure} ${shapes.key()} ep{${elementwiseProgramKey(p.epilogue)}}`,
    code,
    workgroups: splitK
      ? [Math.ceil(slotsPerRow / GPU_SPLIT_COLUMNS), 1, 1]
      : [Math.ceil(slotsPerRow / workgroup[0]), Math.ceil(p.M / rows / workgroup[1]), 1],
    bindings,
  };
}
