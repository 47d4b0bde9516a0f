/**
 * MatMul (NumPy semantics: 1-D promotion, broadcast batch dims) and Gemm (transA/transB, alpha, beta,
 * unidirectionally broadcast C). Both become a MatMulProblem; the kernel is picked by shape and adapter.
 */
import { EdgerunError } from '../errors.ts';
import { elementCount } from '../graph/ir.ts';
import { gemmProblem, gemmShapes, matmulProblem, matmulShapes, type MatMulProblem } from './matmul-problem.ts';
import { gemvCpuProgram, gemvSplitKProgram } from './matmul-gemv.ts';
import { registerTiledProgram, sharedTiledProgram } from './matmul-tiled.ts';
import type { BuildContext, DeviceCaps, KernelProgram, OpDefinition } from './types.ts';

/** The kernel for a problem on a device; exported so benchmarks and tests can see what was chosen. */
export function matmulPrograms(p: MatMulProblem, device: DeviceCaps): KernelProgram[] {
  if (p.M * p.N === 0) return [];
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  let program: KernelProgram;
  if (p.M === 1) program = device.isCpu ? gemvCpuProgram(p, max) : gemvSplitKProgram(p, max);
  else program = device.isCpu ? registerTiledProgram(p, max) : sharedTiledProgram(p, max);
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
