/**
 * Conv (opset 1–22): 1D/2D/3D, groups (depthwise included), strides, dilations, pads / auto_pad, optional
 * bias and a fused epilogue. Two kernels: a pointwise GEMM for 1×1 stride-1 unpadded convs and a direct
 * convolution for everything else (conv-pointwise.ts, conv-direct.ts). Weights are repacked for the
 * chosen kernel at build time with the bias folded in (conv-packing.ts).
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type TensorType } from '../graph/ir.ts';
import type { BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';
import { forwardWindow, invalidError, shapeError, unsupportedError, type WindowGeometry } from './conv-geometry.ts';
import { directBindings, directCode, directDispatch, directKey, directLayout, type DirectAxis, type DirectSpec } from './conv-direct.ts';
import { gemvPackingMap, packedWeightsBinding, packingMap } from './conv-packing.ts';
import {
  gemvCode, gemvDispatch, gemvKey, pointwiseCode, pointwiseDispatch, pointwiseKey, pointwiseLayout, type GemvSpec, type PointwiseSpec,
} from './conv-pointwise.ts';
import { channelTile, checkDispatch, spatialTile, useSubgroupBroadcast, workgroupFor } from './conv-wgsl.ts';

interface ConvShape {
  x: TensorType;
  w: TensorType;
  group: number;
  geometry: WindowGeometry;
  output: number[];
}

/** Validates a Conv-like node's X, W and optional B and returns the resolved geometry. */
function convShape(ctx: OpContext): ConvShape {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  if (!x || !w) throw invalidError(node, 'needs inputs X and W');
  if (!isFloatDType(x.dtype)) throw unsupportedError(node, `input X has dtype ${x.dtype}; only floating-point Conv is supported`, { input: node.inputs[0] });
  if (w.dtype !== x.dtype) throw shapeError(node, `W has dtype ${w.dtype} but X has ${x.dtype}`, { input: node.inputs[1] });
  if (x.shape.length < 3 || x.shape.length > 5) throw unsupportedError(node, `input X has rank ${x.shape.length}; Conv supports 1D, 2D and 3D (rank 3 to 5)`, { input: node.inputs[0] });
  if (w.shape.length !== x.shape.length) throw shapeError(node, `W has rank ${w.shape.length} but X has rank ${x.shape.length}`, { input: node.inputs[1] });
  const attributes = new Attributes(node);
  const group = attributes.int('group', 1);
  const [n, c] = x.shape;
  const [m, cg] = w.shape;
  if (group < 1 || c % group !== 0 || m % group !== 0) {
    throw shapeError(node, `group ${group} must divide X channels ${c} and W output channels ${m}`, { input: node.inputs[1] });
  }
  if (cg * group !== c) throw shapeError(node, `W expects ${cg * group} input channels (${cg} per group × ${group}), X has ${c}`, { input: node.inputs[1] });
  const kernel = w.shape.slice(2);
  if (attributes.has('kernel_shape')) {
    const declared = attributes.ints('kernel_shape');
    if (declared.join(',') !== kernel.join(',')) {
      throw shapeError(node, `kernel_shape [${declared}] does not match W's spatial dims [${kernel}]`, { attribute: 'kernel_shape' });
    }
  }
  if (kernel.some((k) => k < 1)) throw shapeError(node, `W has an empty kernel [${kernel}]`, { input: node.inputs[1] });
  if (b) {
    if (b.dtype !== x.dtype) throw shapeError(node, `B has dtype ${b.dtype} but X has ${x.dtype}`, { input: node.inputs[2] });
    if (b.shape.length !== 1 || b.shape[0] !== m) throw shapeError(node, `B has shape [${b.shape}], expected [${m}]`, { input: node.inputs[2] });
  }
  const geometry = forwardWindow(node, x.shape.slice(2), kernel);
  return { x, w, group, geometry, output: [n, m, ...geometry.output] };
}

/** Left-pads a per-axis list to three axes (z, y, x). */
function toThree(values: number[], fill: number): [number, number, number] {
  const padded = [...new Array<number>(3 - values.length).fill(fill), ...values];
  return [padded[0], padded[1], padded[2]];
}

/**
 * The direct (k×k, grouped, depthwise) conv spec for a geometry: the tiles were measured on lavapipe with the
 * PaddleOCR layers (~64 accumulators per invocation, rows of 8). Shared by the FP32 and the quantized conv.
 */
export function directConvSpec(g: WindowGeometry, channels: { batch: number; inChannels: number; outChannels: number; group: number },
  device: BuildContext['device'], epilogue: BuildContext['epilogue']): DirectSpec {
  const { batch, inChannels, outChannels, group } = channels;
  const cpu = device.isCpu;
  const input = toThree(g.input, 1);
  const output = toThree(g.output, 1);
  const kernel = toThree(g.kernel, 1);
  const strides = toThree(g.strides, 1);
  const dilations = toThree(g.dilations, 1);
  const padBegin = toThree(g.padBegin, 0);
  const axes = [0, 1, 2].map((a): DirectAxis => ({
    count: output[a], start: 0, step: 1, scale: strides[a], offset: -padBegin[a],
    taps: Array.from({ length: kernel[a] }, (_, k) => ({ k, off: k * dilations[a] })),
    inSize: input[a], outSize: output[a],
  })) as [DirectAxis, DirectAxis, DirectAxis];
  const mg = outChannels / group;
  const depthwise = inChannels / group === 1 && mg === 1;
  const tx = Math.min(cpu ? spatialTile(output[2], [8, 4]) : 4, output[2]);
  const ty = Math.min(depthwise ? (cpu ? 4 : 2) : 1, output[1]);
  return {
    batch, inChannels, outChannels, groups: group, kernel, axes,
    tm: channelTile(mg, cpu ? 8 : 4), ty, tx,
    workgroup: depthwise ? 64 : workgroupFor(output[0] * Math.ceil(output[1] / ty) * Math.ceil(output[2] / tx), device),
    subgroups: useSubgroupBroadcast(device), epilogue,
  };
}

function buildConv(ctx: BuildContext): KernelProgram[] {
  const { node, device } = ctx;
  const shape = convShape(ctx);
  const { geometry: g, group } = shape;
  const [batch, inChannels] = shape.x.shape;
  const outChannels = shape.w.shape[0];
  const cg = inChannels / group;
  const mg = outChannels / group;
  const subgroups = useSubgroupBroadcast(device);
  const cpu = device.isCpu;
  // The WGSL carries only the title (never the node name), and the key names the title too: equal keys
  // must mean byte-identical code across nodes.
  const title = `Conv ${g.kernel.join('x')} s${g.strides.join('x')} g${group}`;
  const label = `${title} (${node.name})`;
  const kernelSize = g.kernel.reduce((a, b) => a * b, 1);
  const pointwise = group === 1 && kernelSize === 1 && g.strides.every((s) => s === 1)
    && g.padBegin.every((p) => p === 0) && g.padEnd.every((p) => p === 0);
  const bindX = { kind: 'input', index: 0 } as const;
  const bindY = { kind: 'output', index: 0 } as const;

  const pixels = g.output.reduce((a, b) => a * b, 1);
  if (pointwise && pixels <= 4) {
    const spec: GemvSpec = { batch, inChannels, outChannels, pixels, epilogue: ctx.epilogue };
    const map = gemvPackingMap(outChannels, inChannels, (m, c) => m * inChannels + c);
    const weights = packedWeightsBinding(ctx, map, label, 0);
    const workgroups = gemvDispatch(spec);
    checkDispatch(node, device, workgroups);
    return [...weights.prelude, {
      label, key: `${gemvKey(spec)}:${title}`, code: gemvCode(spec, title), workgroups,
      bindings: [bindX, weights.binding, bindY],
    }];
  }

  if (pointwise) {
    const tp = cpu ? 8 : 4;
    const spec: PointwiseSpec = {
      batch, inChannels, outChannels, pixels,
      tm: channelTile(outChannels, cpu ? 16 : 8),
      tp,
      workgroup: workgroupFor(Math.ceil(pixels / tp), device), subgroups, epilogue: ctx.epilogue,
    };
    const map = packingMap(pointwiseLayout(spec), (_g, m, c) => m * inChannels + c);
    const weights = packedWeightsBinding(ctx, map, label, 0);
    const workgroups = pointwiseDispatch(spec);
    checkDispatch(node, device, workgroups);
    return [...weights.prelude, {
      label, key: `${pointwiseKey(spec)}:${title}`, code: pointwiseCode(spec, title), workgroups,
      bindings: [bindX, weights.binding, bindY],
    }];
  }

  const spec = directConvSpec(g, { batch, inChannels, outChannels, group }, device, ctx.epilogue);
  const { kernel } = spec;
  const kernelVolume = kernel[0] * kernel[1] * kernel[2];
  const map = packingMap(directLayout(spec),
    (gi, m, c, tap) => ((gi * mg + m) * cg + c) * kernelVolume + tap);
  const weights = packedWeightsBinding(ctx, map, label, 0);
  const workgroups = directDispatch(spec);
  checkDispatch(node, device, workgroups);
  return [...weights.prelude, {
    label, key: `${directKey(spec)}:${title}`, code: directCode(spec, title), workgroups,
    bindings: directBindings(spec, weights.binding),
  }];
}

export const ops: OpDefinition[] = [
  {
    opType: 'Conv',
    sinceVersion: 1,
    infer(ctx) {
      const shape = convShape(ctx);
      return [{ dtype: shape.x.dtype, shape: shape.output }];
    },
    build: buildConv,
  },
];

export { convShape, toThree };
