/** WGSL pieces shared by the MatMul/Gemm kernels: bindings, batch offsets and the output epilogue. */
import { EdgerunError } from '../errors.ts';
import { elementCount } from '../graph/ir.ts';
import { elementwiseHelpers, elementwiseProgramKey, renderEpilogue, wgslLiteral } from './elementwise-expr.ts';
import type { MatMulProblem, OperandAccess } from './matmul-problem.ts';
import { problemKey } from './matmul-problem.ts';
import { storageBinding } from './shader-util.ts';
import type { Binding, Epilogue } from './types.ts';

/** Binding declarations (A, B, optional C, Y; each vec4 or scalar) and the binding list in the same order. */
export function matmulBindings(p: MatMulProblem, aVec4: boolean, bVec4: boolean, yVec4 = false): { declarations: string; bindings: Binding[] } {
  const lines = [
    storageBinding(0, aVec4 ? 'a4' : 'a', aVec4 ? 'vec4<f32>' : 'f32', 'read'),
    storageBinding(1, bVec4 ? 'b4' : 'b', bVec4 ? 'vec4<f32>' : 'f32', 'read'),
  ];
  const bindings: Binding[] = [p.a.binding, p.b.binding];
  if (p.bias) {
    lines.push(storageBinding(bindings.length, 'bias', 'f32', 'read'));
    bindings.push(p.bias.binding);
  }
  lines.push(storageBinding(bindings.length, yVec4 ? 'y4' : 'y', yVec4 ? 'vec4<f32>' : 'f32', 'read_write'));
  bindings.push({ kind: 'output', index: 0 });
  return { declarations: lines.join('\n'), bindings };
}

/**
 * WGSL expression of an operand's element offset for the flat batch index `batch` (a u32 expression).
 * The common cases (no batch, contiguous batches) avoid any division.
 */
export function batchOffset(batchShape: number[], operand: OperandAccess, batch: string): string {
  const strides = operand.batchStrides;
  if (strides.every((s) => s === 0)) return '0u';
  const inner: number[] = [];
  let product = 1;
  for (let d = batchShape.length - 1; d >= 0; d--) {
    inner[d] = product;
    product *= batchShape[d];
  }
  const active = batchShape.map((_, d) => d).filter((d) => strides[d] !== 0 && batchShape[d] > 1);
  const unit = strides[active[0]] / inner[active[0]];
  if (batchShape.every((size, d) => size === 1 || strides[d] === inner[d] * unit)) return `${batch} * ${unit}u`;
  return active.map((d) => {
    let coordinate = inner[d] === 1 ? batch : `(${batch} / ${inner[d]}u)`;
    if (d > 0) coordinate = `(${coordinate} % ${batchShape[d]}u)`;
    return `${coordinate} * ${strides[d]}u`;
  }).join(' + ');
}

/**
 * A module-scope function with `signature` returning `value` (an f32 expression of its arguments: the
 * accumulator after alpha and bias) passed through the fused epilogue, plus the helpers the epilogue needs.
 */
export function epilogueFunction(epilogue: Epilogue | undefined, signature: string, value: string, extra = ''): string {
  const rendered = renderEpilogue(epilogue, 'v');
  const body = [extra, `let v = ${value};`, rendered.statements, `return ${rendered.result};`].filter(Boolean).join('\n  ');
  const helpers = elementwiseHelpers([epilogue]);
  return `${helpers ? `${helpers}\n` : ''}${signature} {\n  ${body}\n}`;
}

/**
 * A module-scope function `finish(acc, m, n) -> f32` applying alpha, the Gemm bias and the fused epilogue
 * to one accumulated output value: every store goes through it.
 */
export function finishFunction(p: MatMulProblem): string {
  let value = p.alpha === 1 ? 'acc' : `${wgslLiteral(p.alpha, 'f32')} * acc`;
  if (p.bias) {
    const terms = [p.bias.rowStride ? `m * ${p.bias.rowStride}u` : '', p.bias.colStride ? `n * ${p.bias.colStride}u` : ''].filter(Boolean);
    const c = `bias[${terms.length ? terms.join(' + ') : '0u'}]`;
    value = `${value} + ${p.beta === 1 ? c : `${wgslLiteral(p.beta, 'f32')} * ${c}`}`;
  }
  // with K = 0 nothing reads A or B, but every binding must stay in the pipeline's (auto) layout
  const touch = p.K === 0 ? '_ = &a;\n  _ = &b;' : '';
  return epilogueFunction(p.epilogue, 'fn finish(acc: f32, m: u32, n: u32) -> f32', value, touch);
}

/**
 * The specialisation key of a MatMul program: kernel variant + problem + epilogue. Shape-generic kernels
 * pass `structure` (what their code depends on) in place of the full problem.
 */
export function matmulKey(p: MatMulProblem, variant: string, structure = problemKey(p)): string {
  return `${p.opType} ${variant} ${structure} ep{${elementwiseProgramKey(p.epilogue)}}`;
}

/** Flat batch count, checked against the dispatch limit (the batch runs along workgroup z). */
export function batchCount(p: MatMulProblem, maxPerDimension: number): number {
  const count = elementCount(p.batchShape);
  if (count > maxPerDimension) {
    throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
      `node '${p.node}' (${p.opType}): batch of ${count} matrices exceeds ${maxPerDimension} workgroups per dimension`,
      { node: p.node, batch: count });
  }
  return count;
}
