/**
 * MatMul (NumPy semantics: 1-D promotion, broadcast batch dims) and Gemm (transA/transB, alpha, beta,
 * unidirectionally broadcast C). Both become a MatMulProblem; the kernel is picked by shape and adapter.
 */
import { EdgerunError } from '../errors.ts';
import { elementCount } from '../graph/ir.ts';
import { gemmProblem, gemmShapes, matmulProblem, matmulShapes, type MatMulProblem } from './matmul-problem.ts';
import { gemvCpuProgram, gemvSplitKProgram } from './matmul-gemv.ts';
import { CPU_COMPACT, CPU_COMPACT_ROW, CPU_TILED, cpuMatmulProgram } from './matmul-cpu.ts';
import { sharedTiledProgram } from './matmul-tiled.ts';
import type { BuildContext, DeviceCaps, KernelProgram, OpDefinition } from './types.ts';

/**
 * Below this many multiply-adds, CPU adapters take the compact shape-generic kernel: it compiles in
 * ~200-300 ms instead of ~550-950 ms (lavapipe, first dispatch) and runs as fast as the 4×4/K-by-4 tiling
 * up to a few million multiply-adds (40×120×360: 0.6 vs 0.7 ms; 256³: 6.8 vs 6.3 ms; 40×120×6625: 70 vs
 * 30 ms, where B no longer fits the caches).
 */
const CPU_COMPACT_MAX_MACS = 2 ** 21;

/**
 * Which kernels CPU adapters run: picked by size ('auto'), or forced to the small-problem kernel or to the
 * large-problem ones (the GEMV kernel for M = 1, else the 4×4 tiling), so tests and benchmarks reach each.
 */
export type CpuKernelChoice = 'auto' | 'small' | 'large';

/** The kernel for a problem on a device; exported so benchmarks and tests can see what was chosen. */
export function matmulPrograms(p: MatMulProblem, device: DeviceCaps, cpuChoice: CpuKernelChoice = 'auto'): KernelProgram[] {
  if (p.M * p.N === 0) return [];
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  const small = cpuChoice === 'auto' ? elementCount(p.batchShape) * p.M * p.N * p.K < CPU_COMPACT_MAX_MACS : cpuChoice === 'small';
  let program: KernelProgram;
  if (!device.isCpu) program = p.M === 1 ? gemvSplitKProgram(p, max) : sharedTiledProgram(p, max);
  else if (small) program = cpuMatmulProgram(p, max, p.M === 1 ? CPU_COMPACT_ROW : CPU_COMPACT);
  else program = p.M === 1 ? gemvCpuProgram(p, max) : cpuMatmulProgram(p, max, CPU_TILED);
  if (program.workgroups.some((count) => count > max)) {
    throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
      `node '${p.node}' (${p.opType}): ${p.M}x${p.K}x${p.N} needs ${program.workgroups.join('x')} workgroups, over ${max} per dimension`,
      { node: p.node, workgroups: program.workgroups });
  }
  return [program];
}

export const ops: OpDefinition[] = [
  {
    opType: 'MatMul',
    sinceVersion: 1,
    infer(ctx) {
      const { outputShape } = matmulShapes(ctx);
      return [{ dtype: ctx.inputs[0]!.dtype, shape: outputShape }];
    },
    build(ctx: BuildContext) {
      return matmulPrograms(matmulProblem(ctx), ctx.device);
    },
  },
  {
    opType: 'Gemm',
    sinceVersion: 1,
    infer(ctx) {
      const { M, N } = gemmShapes(ctx);
      return [{ dtype: ctx.inputs[0]!.dtype, shape: [M, N] }];
    },
    build(ctx: BuildContext) {
      if (elementCount(ctx.outputs[0].shape) === 0) return [];
      return matmulPrograms(gemmProblem(ctx), ctx.device);
    },
  },
];
