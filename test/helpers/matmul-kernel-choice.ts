/**
 * MatMul and Gemm pick their CPU-adapter kernel by problem size; tests use this to run every case through
 * each kernel: `withCpuMatmulKernel('large', () => runBoth(...))` builds with the forced choice.
 */
import { matmulPrograms, type CpuKernelChoice } from '../../daemon/kernels/matmul.ts';
import { gemmProblem, matmulProblem } from '../../daemon/kernels/matmul-problem.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import type { BuildContext, OpDefinition } from '../../daemon/kernels/types.ts';
import { elementCount } from '../../daemon/graph/ir.ts';

export async function withCpuMatmulKernel<T>(choice: CpuKernelChoice, body: () => Promise<T>): Promise<T> {
  const matmul = findOp('', 'MatMul')!;
  const gemm = findOp('', 'Gemm')!;
  const builds: [OpDefinition, OpDefinition['build']][] = [[matmul, matmul.build], [gemm, gemm.build]];
  matmul.build = (ctx: BuildContext) => matmulPrograms(matmulProblem(ctx), ctx.device, choice);
  gemm.build = (ctx: BuildContext) => (elementCount(ctx.outputs[0].shape) === 0 ? [] : matmulPrograms(gemmProblem(ctx), ctx.device, choice));
  try {
    return await body();
  } finally {
    for (const [op, build] of builds) op.build = build;
  }
}
