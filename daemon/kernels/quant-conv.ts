/**
 * `edgerun.QConv`: Conv with INT8/INT4 weights (per tensor, per output channel, or blocks along the input
 * channels), made by the fusion pass from DequantizeLinear(constant W) → Conv. It runs the FP32 conv's
 * kernels — the pointwise GEMM for 1×1 stride-1 unpadded convs, the direct convolution for everything else
 * (k×k, strides, pads, dilations, groups, depthwise) — with a weight reader that keeps W packed on the GPU
 * and dequantizes it in the channel loop (quant-conv-weights.ts); 1×1 convs over at most 4 pixels get a
 * GEMV with a lane per output channel (quant-conv-gemv.ts). No float copy of W ever exists.
 */
import type { BuildContext, KernelProgram, OpDefinition } from './types.ts';
import { directBindings, directCode, directDispatch, directKey, directLayout } from './conv-direct.ts';
import { directConvSpec } from './conv.ts';
import { pointwiseCode, pointwiseDispatch, pointwiseKey, type PointwiseSpec } from './conv-pointwise.ts';
import { channelTile, checkDispatch, useSubgroupBroadcast, workgroupFor } from './conv-wgsl.ts';
import { quantGemvFits, quantGemvProgram } from './quant-conv-gemv.ts';
import { packQuantWeights, quantWeightReader } from './quant-conv-weights.ts';
import { qconvShape, type QConvShape } from './quant-conv-shape.ts';

function title(shape: QConvShape): string {
  const g = shape.geometry;
  const scales = shape.layout.kind === 'block' ? `block${shape.layout.blockSize}` : shape.layout.kind;
  return `QConv ${shape.weightDType} ${scales} ${g.kernel.join('x')} s${g.strides.join('x')} g${shape.group}`;
}

function buildQConv(ctx: BuildContext): KernelProgram[] {
  const { node, device } = ctx;
  const shape = qconvShape(ctx);
  const { geometry: g, group } = shape;
  const [batch, inChannels] = shape.x.shape;
  const outChannels = shape.w[0];
  const subgroups = useSubgroupBroadcast(device);
  const cpu = device.isCpu;
  // The WGSL carries the title, never the node name: equal keys must mean identical code across nodes.
  const name = title(shape);
  const label = `${name} (${node.name})`;
  const kernelSize = g.kernel.reduce((a, b) => a * b, 1);
  const pointwise = group === 1 && kernelSize === 1 && g.strides.every((s) => s === 1)
    && g.padBegin.every((p) => p === 0) && g.padEnd.every((p) => p === 0);

  const pixels = g.output.reduce((a, b) => a * b, 1);
  if (pointwise && pixels <= 4 && quantGemvFits(shape)) {
    const program = quantGemvProgram(shape, { batch, inChannels, outChannels, pixels, epilogue: ctx.epilogue }, name, label);
    checkDispatch(node, device, program.workgroups);
    return [program];
  }

  if (pointwise) {
    // the FP32 tiles: 8 channels × 16 pixels (half the dequantizing per FMA) ran 1.5–2× slower on lavapipe
    const tp = cpu ? 8 : 4;
    const tm = channelTile(outChannels, cpu ? 16 : 8);
    const tile = { groups: 1, mg: outChannels, tm, cg: inChannels, taps: [0] };
    const spec: PointwiseSpec = {
      batch, inChannels, outChannels, pixels, tm, tp,
      workgroup: workgroupFor(Math.ceil(pixels / tp), device), subgroups, epilogue: ctx.epilogue,
      weights: quantWeightReader(shape, tile),
    };
    const workgroups = pointwiseDispatch(spec);
    checkDispatch(node, device, workgroups);
    return [{
      label, key: `${pointwiseKey(spec)}:${name}`, code: pointwiseCode(spec, name), workgroups,
      bindings: [{ kind: 'input', index: 0 }, { kind: 'constant', data: packQuantWeights(shape, tile) }, { kind: 'output', index: 0 }],
    }];
  }

  // the FP32 direct conv's tiles
  const spec = directConvSpec(g, { batch, inChannels, outChannels, group }, device, ctx.epilogue);
  const tile = directLayout(spec);
  spec.weights = quantWeightReader(shape, tile);
  const workgroups = directDispatch(spec);
  checkDispatch(node, device, workgroups);
  return [{
    label, key: `${directKey(spec)}:${name}`, code: directCode(spec, name), workgroups,
    bindings: directBindings(spec, { kind: 'constant', data: packQuantWeights(shape, tile) }),
  }];
}

export const ops: OpDefinition[] = [
  {
    opType: 'QConv',
    domain: 'edgerun',
    infer(ctx) {
      const shape = qconvShape(ctx);
      return [{ dtype: 'float32', shape: shape.output }];
    },
    build: buildQConv,
  },
];
