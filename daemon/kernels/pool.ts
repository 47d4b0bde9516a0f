/**
 * MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool over 1–3 spatial axes.
 *
 * Windowed pools compute one output per invocation with branch-free taps (padding reads are masked, not
 * skipped, so SIMD lanes on CPU adapters stay converged). Global pools reduce each (n, c) plane: one
 * invocation per plane with vec4 loads on CPU adapters, a workgroup tree reduction on GPUs where planes
 * are large enough to pay for it.
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type Node, type TensorType } from '../graph/ir.ts';
import type { BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';
import { F32_BITS_HELPER, wgslLiteral, wgslType } from './elementwise-expr.ts';
import { forwardWindow, invalidError, shapeError, unsupportedError, type WindowGeometry } from './conv-geometry.ts';
import { linearDispatch } from './shader-util.ts';

type PoolKind = 'max' | 'average';

function checkInput(node: Node, x: TensorType | null, allowIntegers: boolean): TensorType {
  if (!x) throw invalidError(node, 'needs input X');
  if (x.shape.length < 3 || x.shape.length > 5) throw unsupportedError(node, `input X has rank ${x.shape.length}; pooling supports rank 3 to 5`, { input: node.inputs[0] });
  const integerOk = allowIntegers && (x.dtype === 'int8' || x.dtype === 'uint8');
  if (!isFloatDType(x.dtype) && !integerOk) throw unsupportedError(node, `input X has dtype ${x.dtype}`, { input: node.inputs[0] });
  return x;
}

function windowOf(ctx: OpContext, kind: PoolKind): { x: TensorType; geometry: WindowGeometry } {
  const { node } = ctx;
  const x = checkInput(node, ctx.inputs[0], kind === 'max' && ctx.opset >= 12);
  const attributes = new Attributes(node);
  if (kind === 'max' && node.outputs.length > 1 && node.outputs[1] !== '') {
    throw unsupportedError(node, `the optional Indices output ('${node.outputs[1]}') is not supported`, { output: node.outputs[1] });
  }
  const spatial = x.shape.length - 2;
  const kernel = attributes.ints('kernel_shape');
  if (kernel.length !== spatial || kernel.some((k) => !Number.isInteger(k) || k < 1)) {
    throw invalidError(node, `kernel_shape [${kernel}] must hold ${spatial} positive entries`, { attribute: 'kernel_shape' });
  }
  const geometry = forwardWindow(node, x.shape.slice(2), kernel, { ceilMode: attributes.int('ceil_mode', 0) !== 0 });
  return { x, geometry };
}

function three(values: number[], fill: number): [number, number, number] {
  const padded = [...new Array<number>(3 - values.length).fill(fill), ...values];
  return [padded[0], padded[1], padded[2]];
}

function windowedPoolProgram(ctx: BuildContext, kind: PoolKind): KernelProgram {
  const { node } = ctx;
  const { x, geometry: g } = windowOf(ctx, kind);
  const countIncludePad = kind === 'average' && new Attributes(node).int('count_include_pad', 0) !== 0;
  const type = wgslType(x.dtype);
  const [D, H, W] = three(g.input, 1);
  const [OD, OH, OW] = three(g.output, 1);
  const [KD, KH, KW] = three(g.kernel, 1);
  const [SD, SH, SW] = three(g.strides, 1);
  const [DD, DH, DW] = three(g.dilations, 1);
  const [PD, PH, PW] = three(g.padBegin, 0);
  const [ED, EH, EW] = three(g.padEnd, 0);
  const planes = x.shape[0] * x.shape[1];
  const total = planes * OD * OH * OW;
  const dispatch = linearDispatch(total, 64);
  const init = kind === 'max' ? (type === 'f32' ? wgslLiteral(-Infinity, 'f32') : wgslLiteral(-2147483648, 'i32')) : '0.0';
  const combine = kind === 'max' ? 'acc = max(acc, select(init, v, ok));' : 'acc = acc + select(0.0, v, ok);\n        count = count + select(0.0, 1.0, ok);';
  const padCount = countIncludePad
    ? `\n        padded = padded + select(0.0, 1.0, iz >= ${-PD} && iz < ${D + ED} && iy >= ${-PH} && iy < ${H + EH} && ix >= ${-PW} && ix < ${W + EW});`
    : '';
  const result = kind === 'max' ? 'acc' : countIncludePad ? 'acc / max(padded, 1.0)' : 'acc / max(count, 1.0)';
  const title = `${node.opType} ${g.kernel.join('x')} s${g.strides.join('x')}`;
  const label = `${title} (${node.name})`;
  const code = `// ${title}
@group(0) @binding(0) var<storage, read> x: array<${type}>;
@group(0) @binding(1) var<storage, read_write> y: array<${type}>;
${F32_BITS_HELPER}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  let ox = i32(idx % ${OW}u);
  let r1 = idx / ${OW}u;
  let oy = i32(r1 % ${OH}u);
  let r2 = r1 / ${OH}u;
  let oz = i32(r2 % ${OD}u);
  let base = (r2 / ${OD}u) * ${D * H * W}u;
  let init: ${type} = ${init};
  var acc: ${type} = init;
  var count = 0.0;
  var padded = 0.0;
  for (var kz = 0; kz < ${KD}; kz++) {
    let iz = oz * ${SD} - ${PD} + kz * ${DD};
    for (var ky = 0; ky < ${KH}; ky++) {
      let iy = oy * ${SH} - ${PH} + ky * ${DH};
      for (var kx = 0; kx < ${KW}; kx++) {
        let ix = ox * ${SW} - ${PW} + kx * ${DW};
        let ok = iz >= 0 && iz < ${D} && iy >= 0 && iy < ${H} && ix >= 0 && ix < ${W};
        let v = x[base + select(0u, u32(iz) * ${H * W}u + u32(iy) * ${W}u + u32(ix), ok)];
        ${combine}${padCount}
      }
    }
  }
  y[idx] = ${result};
}
`;
  const key = `pool:${kind}:${type}:p${planes}:in${D}x${H}x${W}:out${OD}x${OH}x${OW}:k${KD}x${KH}x${KW}:s${SD}x${SH}x${SW}:d${DD}x${DH}x${DW}:pb${PD}x${PH}x${PW}:pe${ED}x${EH}x${EW}:cip${countIncludePad ? 1 : 0}:${title}`;
  return { label, key, code, workgroups: dispatch.workgroups, bindings: [{ kind: 'input', index: 0 }, { kind: 'output', index: 0 }] };
}

function globalPoolProgram(ctx: BuildContext, kind: PoolKind): KernelProgram {
  const { node, device } = ctx;
  const x = checkInput(node, ctx.inputs[0], false);
  const planes = x.shape[0] * x.shape[1];
  const size = x.shape.slice(2).reduce((a, b) => a * b, 1);
  const title = `${node.opType} ${x.shape.slice(2).join('x')}`;
  const label = `${title} (${node.name})`;
  const bindings = [{ kind: 'input', index: 0 } as const, { kind: 'output', index: 0 } as const];
  const finish = (value: string) => (kind === 'max' ? value : `${value} * ${wgslLiteral(1 / size, 'f32')}`);
  const op = (a: string, b: string) => (kind === 'max' ? `max(${a}, ${b})` : `${a} + ${b}`);
  const init = kind === 'max' ? wgslLiteral(-Infinity, 'f32') : '0.0';
  if (!device.isCpu && size >= 256) {
    const workgroup = 64;
    const code = `// ${title}: one workgroup per plane, tree reduction
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
var<workgroup> partial: array<f32, ${workgroup}>;
${F32_BITS_HELPER}

@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let plane = wid.x + wid.y * 65535u;
  let base = min(plane, ${planes - 1}u) * ${size}u;
  var acc = ${init};
  for (var i = lid.x; i < ${size}u; i += ${workgroup}u) {
    acc = ${op('acc', 'x[base + i]')};
  }
  partial[lid.x] = acc;
  workgroupBarrier();
  for (var width = ${workgroup / 2}u; width > 0u; width = width / 2u) {
    if (lid.x < width) {
      partial[lid.x] = ${op('partial[lid.x]', 'partial[lid.x + width]')};
    }
    workgroupBarrier();
  }
  if (lid.x == 0u && plane < ${planes}u) {
    y[plane] = ${finish('partial[0]')};
  }
}
`;
    const x0 = Math.min(planes, 65535);
    return { label, key: `gpool:${kind}:wg:p${planes}:s${size}:${title}`, code, workgroups: [x0, Math.ceil(planes / x0), 1], bindings };
  }
  const dispatch = linearDispatch(planes, 64);
  const vec = size % 4 === 0;
  const loop = vec
    ? `var acc4 = vec4<f32>(${init});
  for (var i = 0u; i < ${size / 4}u; i++) {
    acc4 = ${op('acc4', 'x[base + i]')};
  }
  let acc = ${op(op('acc4.x', 'acc4.y'), op('acc4.z', 'acc4.w'))};`
    : `var acc = ${init};
  for (var i = 0u; i < ${size}u; i++) {
    acc = ${op('acc', 'x[base + i]')};
  }`;
  const code = `// ${title}: one invocation per plane
@group(0) @binding(0) var<storage, read> x: array<${vec ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
${F32_BITS_HELPER}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  let base = idx * ${vec ? size / 4 : size}u;
  ${loop}
  y[idx] = ${finish('acc')};
}
`;
  return { label, key: `gpool:${kind}:inv:p${planes}:s${size}:${title}`, code, workgroups: dispatch.workgroups, bindings };
}

function windowedOp(opType: string, kind: PoolKind): OpDefinition {
  return {
    opType,
    sinceVersion: 1,
    infer(ctx) {
      // storage_order only changes the Indices output, which windowOf rejects
      const { x, geometry } = windowOf(ctx, kind);
      return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], ...geometry.output] }];
    },
    build: (ctx) => [windowedPoolProgram(ctx, kind)],
  };
}

function globalOp(opType: string, kind: PoolKind): OpDefinition {
  return {
    opType,
    sinceVersion: 1,
    infer(ctx) {
      const x = checkInput(ctx.node, ctx.inputs[0], false);
      if (x.shape.slice(2).some((d) => d < 1)) throw shapeError(ctx.node, `input X has an empty spatial extent [${x.shape}]`, { input: ctx.node.inputs[0] });
      return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], ...x.shape.slice(2).map(() => 1)] }];
    },
    build: (ctx) => [globalPoolProgram(ctx, kind)],
  };
}

export const ops: OpDefinition[] = [
  windowedOp('MaxPool', 'max'),
  windowedOp('AveragePool', 'average'),
  globalOp('GlobalAveragePool', 'average'),
  globalOp('GlobalMaxPool', 'max'),
];

