/**
 * BatchNormalization in inference mode (opset 7–15 semantics): Y = X · a + b per channel with
 * a = scale / sqrt(var + epsilon) and b = B − mean · a (as onnxruntime folds it).
 *
 * The graph compiler folds BN into a preceding constant Conv; this standalone kernel is for the rest.
 * With constant parameters a and b are computed on the host; otherwise a small program computes them
 * into scratch first. opset 7–8 `spatial = 0` (parameters per channel and position) is supported.
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type TensorType } from '../graph/ir.ts';
import type { Binding, BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';
import { invalidError, shapeError, unsupportedError } from './conv-geometry.ts';
import { linearDispatch } from './shader-util.ts';
import { wgslLiteral } from './elementwise-expr.ts';

interface NormShape {
  x: TensorType;
  /** Elements sharing one parameter index, and the number of parameter entries. */
  inner: number;
  params: number;
  epsilon: number;
}

function normShape(ctx: OpContext): NormShape {
  const { node } = ctx;
  const [x, scale, bias, mean, variance] = ctx.inputs;
  if (!x || !scale || !bias || !mean || !variance) throw invalidError(node, 'needs inputs X, scale, B, input_mean and input_var');
  if (!isFloatDType(x.dtype)) throw unsupportedError(node, `input X has dtype ${x.dtype}`, { input: node.inputs[0] });
  if (x.shape.length < 2) throw shapeError(node, `input X has rank ${x.shape.length}, expected at least 2 (N, C, ...)`, { input: node.inputs[0] });
  const attributes = new Attributes(node);
  if (attributes.int('training_mode', 0) !== 0) {
    throw unsupportedError(node, 'training_mode=1 is not supported (inference only)', { attribute: 'training_mode' });
  }
  const extra = node.outputs.slice(1).filter((name) => name !== '');
  if (extra.length) throw unsupportedError(node, `training outputs (${extra.join(', ')}) are not supported`, { outputs: extra });
  const spatialParams = ctx.opset < 9 && attributes.int('spatial', 1) === 0;
  const channels = x.shape[1];
  const expected = spatialParams ? x.shape.slice(1) : [channels];
  const names = ['scale', 'B', 'input_mean', 'input_var'];
  [scale, bias, mean, variance].forEach((p, i) => {
    if (!isFloatDType(p.dtype)) throw shapeError(node, `${names[i]} has dtype ${p.dtype}`, { input: node.inputs[i + 1] });
    if (p.shape.join(',') !== expected.join(',')) {
      throw shapeError(node, `${names[i]} has shape [${p.shape}], expected [${expected}]`, { input: node.inputs[i + 1] });
    }
  });
  const spatial = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return {
    x,
    inner: spatialParams ? 1 : spatial,
    params: spatialParams ? channels * spatial : channels,
    epsilon: attributes.float('epsilon', 1e-5),
  };
}

/** Host folding of constant parameters into [a…, b…], mirroring onnxruntime's f32 arithmetic. */
function foldParameters(ctx: OpContext, s: NormShape): Float32Array | null {
  const [, scale, bias, mean, variance] = ctx.constants;
  if (!scale || !bias || !mean || !variance) return null;
  const folded = new Float32Array(2 * s.params);
  const f = Math.fround;
  for (let i = 0; i < s.params; i++) {
    const a = f(f(1 / f(Math.sqrt(f(variance.data[i] + f(s.epsilon))))) * scale.data[i]);
    folded[i] = a;
    folded[s.params + i] = f(bias.data[i] - f(mean.data[i] * a));
  }
  return folded;
}

function prepareProgram(label: string, s: NormShape): KernelProgram {
  const dispatch = linearDispatch(s.params, 64);
  const code = `// BatchNormalization: fold scale, B, mean, var into y = x * a + b
@group(0) @binding(0) var<storage, read> scale: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read_write> folded: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  let a = (1.0 / sqrt(variance[idx] + ${wgslLiteral(s.epsilon, 'f32')})) * scale[idx];
  folded[idx] = a;
  folded[${s.params}u + idx] = bias[idx] - mean[idx] * a;
}
`;
  return {
    label: `${label} parameters`,
    key: `batchnorm-fold:p${s.params}:eps${s.epsilon}`,
    code,
    workgroups: dispatch.workgroups,
    bindings: [1, 2, 3, 4].map((index): Binding => ({ kind: 'input', index })).concat([{ kind: 'scratch', id: 0, bytes: 8 * s.params }]),
  };
}

function buildBatchNorm(ctx: BuildContext): KernelProgram[] {
  const { node } = ctx;
  const s = normShape(ctx);
  const label = `BatchNormalization (${node.name})`;
  const total = s.x.shape.reduce((a, b) => a * b, 1);
  const folded = foldParameters(ctx, s);
  const programs: KernelProgram[] = [];
  let parameters: Binding;
  if (folded) {
    parameters = { kind: 'constant', data: folded };
  } else {
    programs.push(prepareProgram(label, s));
    parameters = { kind: 'scratch', id: 0, bytes: 8 * s.params };
  }
  // runs of elements sharing a parameter are processed as vec4s, several per invocation, so each
  // invocation loads its parameters once
  const vec = s.inner % 4 === 0;
  const perInvocation = vec ? ([4, 2].find((k) => (s.inner / 4) % k === 0) ?? 1) : 1;
  const unit = vec ? 4 : 1;
  const dispatch = linearDispatch(total / unit / perInvocation, 64);
  const element = vec ? 'vec4<f32>' : 'f32';
  const body = Array.from({ length: perInvocation }, (_, k) => `y[first + ${k}u] = x[first + ${k}u] * a + b;`);
  const code = `// BatchNormalization
@group(0) @binding(0) var<storage, read> x: array<${element}>;
@group(0) @binding(1) var<storage, read> ab: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<${element}>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  let first = idx * ${perInvocation}u;
  let p = (first / ${s.inner / unit}u) % ${s.params}u;
  let a = ab[p];
  let b = ab[${s.params}u + p];
  ${body.join('\n  ')}
}
`;
  programs.push({
    label,
    key: `batchnorm:n${total}:inner${s.inner}:p${s.params}:k${perInvocation}`,
    code,
    workgroups: dispatch.workgroups,
    bindings: [{ kind: 'input', index: 0 }, parameters, { kind: 'output', index: 0 }],
  });
  return programs;
}

export const ops: OpDefinition[] = [
  {
    opType: 'BatchNormalization',
    sinceVersion: 7,
    infer(ctx) {
      const s = normShape(ctx);
      return [{ dtype: s.x.dtype, shape: s.x.shape }];
    },
    build: buildBatchNorm,
  },
];
