/**
 * WGSL pieces shared by the convolution-family generators: the fused epilogue as a function, and the
 * loader for values every invocation of a workgroup needs (packed weights).
 *
 * Why a special loader: on lavapipe (Mesa 25.0) every storage-buffer load whose address is not a
 * compile-time constant runs lane by lane with a bounds check, even when all lanes read the same address.
 * With the `subgroups` feature each lane instead loads a different vec4 and `subgroupBroadcast` hands
 * them around (a register shuffle there), cutting weight loads by 4× per vec4. WebGPU guarantees
 * subgroups of at least 4 invocations, so groups of 4 lanes are always valid.
 */
import { EdgerunError } from '../errors.ts';
import type { Node } from '../graph/ir.ts';
import type { DeviceCaps, Epilogue } from './types.ts';
import { elementwiseHelpers, elementwiseProgramKey, renderEpilogue } from './elementwise-expr.ts';

/** Module-scope WGSL defining `fn epilogue(v: f32) -> f32` (identity when there is none). */
export function epilogueFunction(epilogue: Epilogue | undefined): string {
  const helpers = elementwiseHelpers([epilogue]);
  const rendered = renderEpilogue(epilogue, 'v');
  const body = rendered.statements ? `  ${rendered.statements.split('\n').join('\n  ')}\n` : '';
  return `${helpers ? `${helpers}\n` : ''}fn epilogue(v: f32) -> f32 {\n${body}  return ${rendered.result};\n}`;
}

export function epilogueKey(epilogue: Epilogue | undefined): string {
  return epilogue ? `ep[${elementwiseProgramKey(epilogue)}]` : 'ep[]';
}

/** Whether generated kernels should share uniform loads through subgroup broadcasts on this device. */
export function useSubgroupBroadcast(device: DeviceCaps): boolean {
  return device.isCpu && device.features.has('subgroups');
}

/**
 * Statements loading `count` vec4s `array[base + q]` (base uniform across the subgroup) into
 * `${prefix}0 … ${prefix}{count-1}`. `lane` is the subgroup_invocation_id expression when broadcasting.
 */
export function uniformVec4Loads(array: string, base: string, count: number, prefix: string, lane: string | null): string[] {
  const lines: string[] = [];
  if (lane === null) {
    for (let q = 0; q < count; q++) lines.push(`let ${prefix}${q} = ${array}[${base} + ${q}u];`);
    return lines;
  }
  for (let round = 0; round * 4 < count; round++) {
    const inRound = Math.min(4, count - round * 4);
    const slot = inRound === 4 ? `(${lane} & 3u)` : `min(${lane} & 3u, ${inRound - 1}u)`;
    lines.push(`let ${prefix}r${round} = ${array}[${base} + ${round * 4}u + ${slot}];`);
    for (let j = 0; j < inRound; j++) lines.push(`let ${prefix}${round * 4 + j} = subgroupBroadcast(${prefix}r${round}, ${j}u);`);
  }
  return lines;
}

/** The component of packed float `index` among vec4 names `${prefix}q`. */
export function packedComponent(prefix: string, index: number): string {
  return `${prefix}${Math.floor(index / 4)}.${'xyzw'[index % 4]}`;
}

/** An output-channel tile of at most `cap` that wastes as little as possible on the last tile. */
export function channelTile(channels: number, cap: number): number {
  const tiles = Math.ceil(channels / cap);
  return Math.ceil(channels / tiles);
}

/**
 * A workgroup size for `invocations` pixel tiles that share a channel tile. On lavapipe, large maps run
 * best in workgroups of 64 (neighbouring tiles share input rows in cache); small maps (< 512 tiles) run
 * best in small workgroups (multiples of 8, its SIMD width) that leave the fewest lanes idle, idle lanes
 * being executed too. Measured on the PaddleOCR det/rec layers; GPUs always get 64.
 */
export function workgroupFor(invocations: number, device: DeviceCaps): number {
  if (!device.isCpu || invocations >= 512) return 64;
  let best = 64;
  let bestIdle = Infinity;
  for (const size of [64, 48, 32, 16, 8]) {
    const idle = Math.ceil(invocations / size) * size - invocations;
    if (idle < bestIdle) { best = size; bestIdle = idle; }
  }
  return best;
}

/** The candidate tile (largest first) that pads `extent` least; ties go to the larger tile. */
export function spatialTile(extent: number, candidates: number[]): number {
  let best = candidates[0];
  let bestWaste = Infinity;
  for (const tile of candidates) {
    const waste = Math.ceil(extent / tile) * tile - extent;
    if (waste < bestWaste) { best = tile; bestWaste = waste; }
  }
  return best;
}

/** Throws EDGERUN_ERR_GPU_LIMIT when a dispatch exceeds the adapter's per-dimension workgroup limit. */
export function checkDispatch(node: Node, device: DeviceCaps, workgroups: [number, number, number]): void {
  const limit = device.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((w) => w > limit)) {
    throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
      `node '${node.name}' (${node.opType}) needs ${workgroups.join('x')} workgroups, the adapter allows ${limit} per dimension`,
      { node: node.name, opType: node.opType, workgroups });
  }
}

/**
 * A loop bound equal to `count` that the shader compiler cannot see as a constant. Mesa's NIR fully
 * unrolls constant-trip loops whose body looks small; on lavapipe every storage load then expands into
 * its own per-lane sequence, which made unrolled conv kernels ~9× larger and 2× slower than the loop.
 * `runtime` must be a u32 expression that is 0 at run time in practice but unknown to the compiler
 * (min() keeps the bound exact whatever its value).
 */
export function opaqueBound(count: number, runtime: string): string {
  return `min(${count}u, ${runtime} + ${count}u)`;
}
