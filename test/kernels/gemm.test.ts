/**
 * Gemm on the real adapter against onnxruntime, through each kernel (the CPU adapters' small- and
 * large-problem kernels, and the GPU tiling forced with isCpu false).
 *
 * Error bound: Y = alpha·(A'·B') + beta·C is a K-term f32 dot product plus two scalings and one add, so two
 * implementations differ by at most 2·(K+3)·2^-24·(|alpha|·Σ|a_k·b_k| + |beta·c|) per output
 * (γ_{K+3} for each side); the scale is computed per output in float64.
 */
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { opContextFor, randomTensor, runBoth, type SingleOpCase } from '../helpers/kernel-harness.ts';
import { withCpuMatmulKernel } from '../helpers/matmul-kernel-choice.ts';

const U = 2 ** -24;

interface GemmCase {
  name: string;
  M: number;
  K: number;
  N: number;
  transA?: number;
  transB?: number;
  alpha?: number;
  beta?: number;
  /** Shape of C, or null for none. */
  c: number[] | null;
  constant: number[];
  opset?: number;
}

const CASES: GemmCase[] = [
  { name: 'linear layer: transB weights, bias [N], both constant', M: 5, K: 12, N: 7, transB: 1, c: [7], constant: [1, 2] },
  { name: 'alpha and beta with C [M,N]', M: 6, K: 9, N: 10, alpha: 0.5, beta: 2, c: [6, 10], constant: [1] },
  { name: 'transA with dynamic C [M,1]', M: 7, K: 5, N: 6, transA: 1, beta: -1.5, c: [7, 1], constant: [] },
  { name: 'transA and transB, scalar C', M: 9, K: 8, N: 4, transA: 1, transB: 1, c: [], constant: [] },
  { name: 'C [1,N] constant with beta, dynamic B', M: 3, K: 16, N: 8, beta: 0.25, c: [1, 8], constant: [2] },
  { name: 'no C (opset 13)', M: 4, K: 6, N: 5, c: null, constant: [1] },
  { name: 'beta 0 ignores C', M: 4, K: 6, N: 5, beta: 0, c: [4, 5], constant: [] },
  { name: 'classifier GEMV: M=1, transB constant weights, bias', M: 1, K: 96, N: 37, transB: 1, c: [37], constant: [1, 2] },
  { name: 'opset 9 (C required, broadcast [N])', M: 3, K: 4, N: 5, c: [5], constant: [1, 2], opset: 9 },
];

function at(t: Tensor, r: number, c: number, trans: boolean): number {
  const cols = t.dims[1];
  return trans ? t.data[c * cols + r] : t.data[r * cols + c];
}

function scaleOf(g: GemmCase, a: Tensor, b: Tensor, c: Tensor | null): Float64Array {
  const scale = new Float64Array(g.M * g.N);
  const cShape = c ? [...Array(2 - c.dims.length).fill(1), ...c.dims] : [1, 1];
  for (let m = 0; m < g.M; m++) {
    for (let n = 0; n < g.N; n++) {
      let s = 0;
      for (let k = 0; k < g.K; k++) s += Math.abs(at(a, m, k, !!g.transA) * at(b, k, n, !!g.transB));
      const cValue = c ? c.data[(cShape[0] === 1 ? 0 : m) * cShape[1] + (cShape[1] === 1 ? 0 : n)] : 0;
      scale[m * g.N + n] = Math.abs(g.alpha ?? 1) * s + Math.abs((g.beta ?? 1) * cValue);
    }
  }
  return scale;
}

t.test('Gemm matches onnxruntime within the f32 bound', async (t) => {
  let seed = 100;
  for (const g of CASES) {
    for (const [kernel, isCpu, choice] of [['CPU small-problem kernel', true, 'small'], ['CPU large-problem kernel', true, 'large'], ['GPU shared-memory tiling', false, 'auto']] as const) {
      const a = randomTensor(g.transA ? [g.K, g.M] : [g.M, g.K], seed++);
      const b = randomTensor(g.transB ? [g.N, g.K] : [g.K, g.N], seed++);
      const c = g.c ? randomTensor(g.c, seed++) : null;
      const attributes: SingleOpCase['attributes'] = {};
      if (g.transA !== undefined) attributes.transA = g.transA;
      if (g.transB !== undefined) attributes.transB = g.transB;
      if (g.alpha !== undefined) attributes.alpha = { float: g.alpha };
      if (g.beta !== undefined) attributes.beta = { float: g.beta };
      const single: SingleOpCase = {
        opType: 'Gemm', opset: g.opset ?? 13, inputs: c ? [a, b, c] : [a, b], constantInputs: g.constant, attributes, device: { isCpu },
      };
      const { gpu, ort } = await withCpuMatmulKernel(choice, () => runBoth(single));
      const scale = scaleOf(g, a, b, c);
      let problem: string | null = gpu[0].dims.join(',') === ort[0].dims.join(',') ? null : `shape [${gpu[0].dims}]`;
      for (let i = 0; i < scale.length && !problem; i++) {
        const bound = 2 * (g.K + 3) * U * scale[i];
        if (!(Math.abs(gpu[0].data[i] - ort[0].data[i]) <= bound)) problem = `element ${i}: ${gpu[0].data[i]} vs ${ort[0].data[i]} (bound ${bound})`;
      }
      t.equal(problem, null, `${g.name} (${kernel})`);
    }
  }
});

t.test('Gemm rejects bad ranks, inner sizes and C shapes with coded errors', async (t) => {
  const infer = (c: SingleOpCase) => () => findOp('', 'Gemm')!.infer(opContextFor(c));
  const f = (dims: number[]) => randomTensor(dims, 1);
  await expectEdgerunError(t, infer({ opType: 'Gemm', inputs: [f([2, 3, 4]), f([4, 5])] }), 'EDGERUN_ERR_SHAPE', /gemm_under_test/, /2-D/);
  await expectEdgerunError(t, infer({ opType: 'Gemm', inputs: [f([3, 4]), f([5, 6])] }), 'EDGERUN_ERR_SHAPE', /inner dimensions/);
  await expectEdgerunError(t, infer({ opType: 'Gemm', inputs: [f([3, 4]), f([5, 4])], attributes: { transB: 0 } }), 'EDGERUN_ERR_SHAPE', /inner dimensions/);
  await expectEdgerunError(t, infer({ opType: 'Gemm', inputs: [f([3, 4]), f([4, 5]), f([3])] }), 'EDGERUN_ERR_SHAPE', /C \[3\]/);
  await expectEdgerunError(t, infer({ opType: 'Gemm', opset: 9, inputs: [f([3, 4]), f([4, 5])] }), 'EDGERUN_ERR_SHAPE', /C is required/);
  await expectEdgerunError(t, infer({ opType: 'Gemm', opset: 6, inputs: [f([3, 4]), f([4, 5]), f([5])] }), 'EDGERUN_ERR_SHAPE', /broadcast/);
});

t.test('Gemm infers [M, N] from the transposed operands', async (t) => {
  const op = findOp('', 'Gemm')!;
  const types = op.infer(opContextFor({ opType: 'Gemm', inputs: [randomTensor([4, 3], 1), randomTensor([5, 4], 2)], attributes: { transA: 1, transB: 1 } }));
  t.same(types, [{ dtype: 'float32', shape: [3, 5] }]);
});
