/**
 * DequantizeLinear (opsets 10, 13 axis, 19 float16 scales, 21 block_size and 4/16-bit types), QuantizeLinear
 * (saturating, round half to even) and DynamicQuantizeLinear. On the GPU, quantized values are i32 per element
 * like every integer tensor; weight DequantizeLinear nodes never get here when the fusion pass turns them into
 * packed-weight kernels (graph/fuse-dequant.ts).
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, makeTensor, type DType, type Tensor, type TensorType } from '../graph/ir.ts';
import { elementTypeOf } from '../onnx/proto-values.ts';
import {
  allowedQuantTypes, QUANT_RANGES, quantError, quantLayout, requireFloatInput, requireInput, roundHalfEven,
  scaleIndexOf, scaleIndexWgsl, type QuantLayout,
} from './quant-params.ts';
import { ShapeValues, storageBinding } from './shader-util.ts';
import type { Binding, BuildContext, DeviceCaps, KernelProgram, OpContext, OpDefinition } from './types.ts';

const WORKGROUP = 64;

function checkQuantType(ctx: OpContext, dtype: DType, what: string): void {
  const allowed = allowedQuantTypes(ctx.opset);
  if (!allowed.includes(dtype)) {
    throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `${what} is ${dtype}; opset ${ctx.opset} allows ${allowed.join(', ')}`, { dtype });
  }
}

interface DequantizeTypes {
  x: TensorType;
  scale: TensorType;
  zeroPoint: TensorType | null;
  layout: QuantLayout;
}

export function dequantizeTypes(ctx: OpContext): DequantizeTypes {
  if (ctx.inputs.length < 2 || ctx.inputs.length > 3) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `expects 2 or 3 inputs, got ${ctx.inputs.length}`);
  const x = requireInput(ctx, 0, 'x');
  const scale = requireFloatInput(ctx, 1, 'x_scale');
  const zeroPoint = ctx.inputs[2] ?? null;
  checkQuantType(ctx, x.dtype, 'x');
  if (zeroPoint && zeroPoint.dtype !== x.dtype) {
    throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `x_zero_point is ${zeroPoint.dtype} but x is ${x.dtype}: they must have the same type`, { dtype: zeroPoint.dtype });
  }
  return { x, scale, zeroPoint, layout: quantLayout(ctx, x.shape, scale, zeroPoint) };
}

function dequantizeOutputType(ctx: OpContext, types: DequantizeTypes): TensorType {
  return { dtype: ctx.opset >= 19 ? types.scale.dtype : 'float32', shape: [...types.x.shape] };
}

/** y = (x - zero_point) * scale, as float32 on the host. */
export function dequantizeHost(x: Tensor, scale: Tensor, zeroPoint: Tensor | null, layout: QuantLayout, dtype: DType): Tensor {
  const out = makeTensor(dtype, [...x.dims]);
  for (let i = 0; i < x.data.length; i++) {
    const s = scaleIndexOf(layout, i);
    out.data[i] = (x.data[i] - (zeroPoint ? zeroPoint.data[s] : 0)) * scale.data[s];
  }
  return out;
}

interface QuantizeTypes {
  x: TensorType;
  scale: TensorType;
  zeroPoint: TensorType | null;
  output: DType;
  layout: QuantLayout;
}

function quantizeTypes(ctx: OpContext): QuantizeTypes {
  if (ctx.inputs.length < 2 || ctx.inputs.length > 3) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `expects 2 or 3 inputs, got ${ctx.inputs.length}`);
  const x = requireFloatInput(ctx, 0, 'x');
  const scale = requireFloatInput(ctx, 1, 'y_scale');
  const zeroPoint = ctx.inputs[2] ?? null;
  let output: DType = 'uint8';
  const attrs = new Attributes(ctx.node);
  const outputDtype = ctx.opset >= 21 ? attrs.int('output_dtype', 0) : 0;
  if (outputDtype !== 0) {
    const element = elementTypeOf(outputDtype);
    if (!element) throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `output_dtype ${outputDtype} is not supported`, { outputDtype });
    output = element.dtype;
  }
  if (zeroPoint) {
    if (outputDtype !== 0 && zeroPoint.dtype !== output) {
      throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `y_zero_point is ${zeroPoint.dtype} but output_dtype says ${output}`, { dtype: zeroPoint.dtype });
    }
    output = zeroPoint.dtype;
  }
  checkQuantType(ctx, output, 'y');
  return { x, scale, zeroPoint, output, layout: quantLayout(ctx, x.shape, scale, zeroPoint) };
}

/** saturate(round_half_even(x / scale) + zero_point). */
function quantizeValue(x: number, scale: number, zeroPoint: number, range: readonly [number, number]): number {
  const q = roundHalfEven(Math.fround(x / scale)) + zeroPoint;
  if (Number.isNaN(q)) return 0;
  return Math.min(range[1], Math.max(range[0], q));
}

/**
 * One invocation per element: `body(shapes)` computes element `idx` of the output `y`. On CPU adapters the
 * element count and the layout's sizes come from a params buffer, so every Q/DQ node of one structure shares
 * a pipeline (lavapipe compiles each pipeline on first dispatch; activation Q/DQ nodes come in dozens).
 */
function perElementProgram(label: string, key: string, count: number, device: DeviceCaps, declarations: string[], bindings: Binding[],
  body: (shapes: ShapeValues) => string): KernelProgram {
  const shapes = new ShapeValues(device.isCpu);
  const groups = Math.max(1, Math.ceil(count / WORKGROUP));
  const x = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const workgroups: [number, number, number] = [x, Math.ceil(groups / x), 1];
  const prologue = `let idx = gid.x + gid.y * ${shapes.value(x * WORKGROUP, 'ROW')};\n  if (idx >= ${shapes.value(count, 'COUNT')}) { return; }`;
  const text = body(shapes);
  const params = shapes.binding();
  const paramsDeclaration = shapes.declaration(bindings.length);
  const code = `${declarations.join('\n')}
${paramsDeclaration}

@compute @workgroup_size(${WORKGROUP}, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${shapes.loads().join('\n  ')}
  ${prologue}
  ${text}
}
`;
  return { label, key: `${key} wg${WORKGROUP} ${shapes.key()}`, code, workgroups, bindings: params ? [...bindings, params] : bindings };
}

const dequantizeLinear: OpDefinition = {
  opType: 'DequantizeLinear',
  sinceVersion: 10,
  infer(ctx) {
    return [dequantizeOutputType(ctx, dequantizeTypes(ctx))];
  },
  fold(ctx, inputs) {
    const types = dequantizeTypes(ctx);
    return [dequantizeHost(inputs[0]!, inputs[1]!, inputs[2] ?? null, types.layout, dequantizeOutputType(ctx, types).dtype)];
  },
  build(ctx: BuildContext) {
    const { x, zeroPoint, layout } = dequantizeTypes(ctx);
    const count = elementCount(x.shape);
    if (count === 0) return [];
    const declarations = [storageBinding(0, 'x', 'i32', 'read'), storageBinding(1, 'scale', 'f32', 'read')];
    const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }];
    if (zeroPoint) {
      declarations.push(storageBinding(2, 'zero_point', 'i32', 'read'));
      bindings.push({ kind: 'input', index: 2 });
    }
    declarations.push(storageBinding(bindings.length, 'y', 'f32', 'read_write'));
    bindings.push({ kind: 'output', index: 0 });
    const zp = zeroPoint ? ' - zero_point[s]' : '';
    return [perElementProgram(`DequantizeLinear ${layout.kind} [${x.shape}] (${ctx.node.name})`,
      `DequantizeLinear ${layout.kind} zp${zeroPoint ? 1 : 0}`, count, ctx.device, declarations, bindings,
      (shapes) => `let s = ${scaleIndexWgsl(layout, 'idx', shapes)};\n  y[idx] = f32(x[idx]${zp}) * scale[s];`)];
  },
};

const quantizeLinear: OpDefinition = {
  opType: 'QuantizeLinear',
  sinceVersion: 10,
  infer(ctx) {
    const types = quantizeTypes(ctx);
    return [{ dtype: types.output, shape: [...types.x.shape] }];
  },
  fold(ctx, inputs) {
    const { output, layout } = quantizeTypes(ctx);
    const [x, scale, zeroPoint] = inputs;
    const range = QUANT_RANGES[output]!;
    const out = makeTensor(output, [...x!.dims]);
    for (let i = 0; i < x!.data.length; i++) {
      const s = scaleIndexOf(layout, i);
      out.data[i] = quantizeValue(x!.data[i], scale!.data[s], zeroPoint ? zeroPoint.data[s] : 0, range);
    }
    return [out];
  },
  build(ctx: BuildContext) {
    const { x, zeroPoint, output, layout } = quantizeTypes(ctx);
    const count = elementCount(x.shape);
    if (count === 0) return [];
    const [lo, hi] = QUANT_RANGES[output]!;
    const declarations = [storageBinding(0, 'x', 'f32', 'read'), storageBinding(1, 'scale', 'f32', 'read')];
    const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }];
    if (zeroPoint) {
      declarations.push(storageBinding(2, 'zero_point', 'i32', 'read'));
      bindings.push({ kind: 'input', index: 2 });
    }
    declarations.push(storageBinding(bindings.length, 'y', 'i32', 'read_write'));
    bindings.push({ kind: 'output', index: 0 });
    const zp = zeroPoint ? ' + f32(zero_point[s])' : '';
    // NaN compares false both ways and lands on 0 through select, as the host fold does
    return [perElementProgram(`QuantizeLinear ${layout.kind} [${x.shape}] → ${output} (${ctx.node.name})`,
      `QuantizeLinear ${layout.kind} zp${zeroPoint ? 1 : 0} ${output}`, count, ctx.device, declarations, bindings,
      (shapes) => `let s = ${scaleIndexWgsl(layout, 'idx', shapes)};
  let q = round(x[idx] / scale[s])${zp};
  y[idx] = select(0, i32(clamp(q, ${lo}.0, ${hi}.0)), q == q);`)];
  },
};

/** DynamicQuantizeLinear's scale and zero point for the range [min, max] (widened to include 0), as onnxruntime computes them. */
export function dynamicQuantParams(min: number, max: number): { scale: number; zeroPoint: number } {
  const lo = Math.min(min, 0);
  const hi = Math.max(max, 0);
  const scale = hi === lo ? 1 : Math.fround((hi - lo) / 255);
  const initial = Math.fround(0 - lo / scale);
  return { scale, zeroPoint: roundHalfEven(Math.min(255, Math.max(0, initial))) };
}

const dynamicQuantizeLinear: OpDefinition = {
  opType: 'DynamicQuantizeLinear',
  sinceVersion: 11,
  infer(ctx) {
    if (ctx.inputs.length !== 1) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `expects 1 input, got ${ctx.inputs.length}`);
    const x = requireFloatInput(ctx, 0, 'x');
    return [{ dtype: 'uint8', shape: [...x.shape] }, { dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }];
  },
  fold(_ctx, inputs) {
    const x = inputs[0]!;
    let min = 0;
    let max = 0;
    for (const v of x.data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const { scale, zeroPoint } = dynamicQuantParams(min, max);
    const y = makeTensor('uint8', [...x.dims]);
    for (let i = 0; i < x.data.length; i++) y.data[i] = quantizeValue(x.data[i], scale, zeroPoint, [0, 255]);
    return [y, makeTensor('float32', [], Float32Array.of(scale)), makeTensor('uint8', [], Int32Array.of(zeroPoint))];
  },
  build(ctx: BuildContext) {
    const x = ctx.inputs[0]!;
    const count = elementCount(x.shape);
    // one workgroup finds the range (activation rows are small), then every element is quantized
    const range: KernelProgram = {
      label: `DynamicQuantizeLinear range [${x.shape}] (${ctx.node.name})`,
      key: `DynamicQuantizeLinear range n${count}`,
      code: `${storageBinding(0, 'x', 'f32', 'read')}
${storageBinding(1, 'y_scale', 'f32', 'read_write')}
${storageBinding(2, 'y_zero_point', 'i32', 'read_write')}

var<workgroup> lows: array<f32, 64>;
var<workgroup> highs: array<f32, 64>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_index) li: u32) {
  var lo = 0.0;
  var hi = 0.0;
  for (var i = li; i < ${count}u; i = i + 64u) {
    lo = min(lo, x[i]);
    hi = max(hi, x[i]);
  }
  lows[li] = lo;
  highs[li] = hi;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride = stride / 2u) {
    if (li < stride) {
      lows[li] = min(lows[li], lows[li + stride]);
      highs[li] = max(highs[li], highs[li + stride]);
    }
    workgroupBarrier();
  }
  if (li != 0u) { return; }
  let scale = select((highs[0] - lows[0]) / 255.0, 1.0, highs[0] == lows[0]);
  y_scale[0] = scale;
  y_zero_point[0] = i32(round(clamp(0.0 - lows[0] / scale, 0.0, 255.0)));
}
`,
      workgroups: [1, 1, 1],
      bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 1 }, { kind: 'output', index: 2 }],
    };
    if (count === 0) return [range];
    const quantize = perElementProgram(`DynamicQuantizeLinear [${x.shape}] (${ctx.node.name})`, 'DynamicQuantizeLinear quantize', count, ctx.device,
      [storageBinding(0, 'x', 'f32', 'read'), storageBinding(1, 'y_scale', 'f32', 'read'), storageBinding(2, 'y_zero_point', 'i32', 'read'),
        storageBinding(3, 'y', 'i32', 'read_write')],
      [{ kind: 'input', index: 0 }, { kind: 'output', index: 1 }, { kind: 'output', index: 2 }, { kind: 'output', index: 0 }],
      () => `let q = round(x[idx] / y_scale[0]) + f32(y_zero_point[0]);\n  y[idx] = select(0, i32(clamp(q, 0.0, 255.0)), q == q);`);
    return [range, quantize];
  },
};

export const ops: OpDefinition[] = [dequantizeLinear, quantizeLinear, dynamicQuantizeLinear];
