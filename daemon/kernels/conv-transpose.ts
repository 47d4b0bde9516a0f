/**
 * ConvTranspose (opset 1–22): 1D/2D/3D, groups, strides, dilations, pads / auto_pad, output_padding,
 * output_shape, optional bias and a fused epilogue.
 *
 * Output position o (per axis) receives input i through tap k when o + padBegin = i·stride + k·dilation.
 * Splitting the outputs by phase o mod stride makes the contributing taps fixed per phase, so each phase
 * is an ordinary stride-1 correlation with per-tap input offsets, run by the direct-conv generator: no
 * work is spent on taps that do not reach an output (a 2×2 stride-2 kernel costs one tap per output).
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type TensorType } from '../graph/ir.ts';
import type { BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';
import { invalidError, readAutoPad, readAxisInts, readPads, shapeError, unsupportedError } from './conv-geometry.ts';
import { directBindings, directCode, directDispatch, directKey, directLayout, type DirectAxis, type DirectSpec } from './conv-direct.ts';
import { packedWeightsBinding, packingMap } from './conv-packing.ts';
import { blockBindings, blockCode, blockDispatch, blockKey, blockLayout, type BlockSpec } from './conv-transpose-blocks.ts';
import { channelTile, checkDispatch, useSubgroupBroadcast, workgroupFor } from './conv-wgsl.ts';

interface TransposeShape {
  x: TensorType;
  group: number;
  outChannels: number;
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  output: number[];
}

/** Validates X, W, B and resolves pads and output extents the way onnxruntime does. */
function transposeShape(ctx: OpContext): TransposeShape {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  if (!x || !w) throw invalidError(node, 'needs inputs X and W');
  if (!isFloatDType(x.dtype)) throw unsupportedError(node, `input X has dtype ${x.dtype}; only floating-point ConvTranspose is supported`, { input: node.inputs[0] });
  if (w.dtype !== x.dtype) throw shapeError(node, `W has dtype ${w.dtype} but X has ${x.dtype}`, { input: node.inputs[1] });
  if (x.shape.length < 3 || x.shape.length > 5) throw unsupportedError(node, `input X has rank ${x.shape.length}; ConvTranspose supports rank 3 to 5`, { input: node.inputs[0] });
  if (w.shape.length !== x.shape.length) throw shapeError(node, `W has rank ${w.shape.length} but X has rank ${x.shape.length}`, { input: node.inputs[1] });
  const attributes = new Attributes(node);
  const group = attributes.int('group', 1);
  const spatial = x.shape.length - 2;
  const channels = x.shape[1];
  if (group < 1 || channels % group !== 0) throw shapeError(node, `group ${group} must divide the ${channels} input channels`, { input: node.inputs[0] });
  if (w.shape[0] !== channels) throw shapeError(node, `W has ${w.shape[0]} input channels, X has ${channels}`, { input: node.inputs[1] });
  const outChannels = w.shape[1] * group;
  const kernel = w.shape.slice(2);
  if (attributes.has('kernel_shape') && attributes.ints('kernel_shape').join(',') !== kernel.join(',')) {
    throw shapeError(node, `kernel_shape [${attributes.ints('kernel_shape')}] does not match W's spatial dims [${kernel}]`, { attribute: 'kernel_shape' });
  }
  if (b && (b.shape.length !== 1 || b.shape[0] !== outChannels)) throw shapeError(node, `B has shape [${b.shape}], expected [${outChannels}]`, { input: node.inputs[2] });
  const strides = readAxisInts(node, 'strides', spatial, 1);
  const dilations = readAxisInts(node, 'dilations', spatial, 1);
  const outputPadding = readAxisInts(node, 'output_padding', spatial, 0, true);
  const autoPad = readAutoPad(node);
  const explicit = readPads(node, spatial);
  let requested: number[] | null = null;
  if (attributes.has('output_shape')) {
    const shape = attributes.ints('output_shape');
    if (shape.length !== spatial && shape.length !== spatial + 2) {
      throw invalidError(node, `output_shape has ${shape.length} entries, expected ${spatial} or ${spatial + 2}`, { attribute: 'output_shape' });
    }
    requested = shape.slice(shape.length - spatial);
  }
  const padBegin: number[] = [];
  const output: number[] = [];
  for (let a = 0; a < spatial; a++) {
    const input = x.shape[a + 2];
    const full = (input - 1) * strides[a] + outputPadding[a] + (kernel[a] - 1) * dilations[a] + 1;
    let begin = autoPad === 'VALID' ? 0 : explicit.begin[a];
    let end = autoPad === 'VALID' ? 0 : explicit.end[a];
    const target = requested ? requested[a] : autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? input * strides[a] : null;
    if (target !== null) {
      // as onnxruntime 1.30: an odd padding goes to the tail for SAME_UPPER and to the head otherwise
      const total = Math.max(0, full - target);
      begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      end = total - begin;
    }
    const out = requested ? requested[a] : full - begin - end;
    if (out < 1) throw shapeError(node, `output extent ${out} along spatial axis ${a} is not positive`, { input: x.shape });
    padBegin.push(begin);
    output.push(out);
  }
  return { x, group, outChannels, kernel, strides, dilations, padBegin, output: [x.shape[0], outChannels, ...output] };
}

/** One axis of one phase: outputs phase + stride·t and the taps (with input offsets) reaching them. */
function phaseAxis(phase: number, stride: number, dilation: number, kernel: number, padBegin: number, input: number, output: number): DirectAxis {
  const taps = [];
  for (let k = 0; k < kernel; k++) {
    const shifted = phase + padBegin - k * dilation;
    if (((shifted % stride) + stride) % stride === 0) taps.push({ k, off: shifted / stride });
  }
  return { count: Math.ceil((output - phase) / stride), start: phase, step: stride, scale: 1, offset: 0, taps, inSize: input, outSize: output };
}

function buildConvTranspose(ctx: BuildContext): KernelProgram[] {
  const { node, device } = ctx;
  const s = transposeShape(ctx);
  const spatial = s.kernel.length;
  const three = (values: number[], fill: number): number[] => [...new Array<number>(3 - spatial).fill(fill), ...values];
  const input = three(s.x.shape.slice(2), 1);
  const output = three(s.output.slice(2), 1);
  const kernel = three(s.kernel, 1);
  const strides = three(s.strides, 1);
  const dilations = three(s.dilations, 1);
  const padBegin = three(s.padBegin, 0);
  const [batch, inChannels] = s.x.shape;
  const cg = inChannels / s.group;
  const mg = s.outChannels / s.group;
  const kernelVolume = kernel[0] * kernel[1] * kernel[2];
  const cpu = device.isCpu;
  const disjointBlocks = [0, 1, 2].every((a) => kernel[a] === strides[a] && dilations[a] === 1 && padBegin[a] === 0 && output[a] === input[a] * strides[a]);
  if (disjointBlocks) {
    const taps = kernel[0] * kernel[1] * kernel[2];
    const tm = channelTile(mg, 4);
    // about 64 accumulators per invocation: tm channels × taps × tx pixels
    const tx = Math.min(input[2], Math.max(4, Math.min(8, Math.floor(64 / (tm * taps) / 4) * 4)));
    const spec: BlockSpec = {
      batch, inChannels, outChannels: s.outChannels, groups: s.group,
      input: [input[0], input[1], input[2]], kernel: [kernel[0], kernel[1], kernel[2]], tm, tx,
      workgroup: workgroupFor(input[0] * input[1] * Math.ceil(input[2] / tx), device),
      subgroups: useSubgroupBroadcast(device), epilogue: ctx.epilogue,
    };
    // the WGSL carries only the title: equal keys must mean byte-identical code across nodes
    const title = `ConvTranspose ${s.kernel.join('x')} s${s.strides.join('x')} blocks`;
    const label = `${title} (${node.name})`;
    const map = packingMap(blockLayout(spec), (g, m, c, tap) => ((g * cg + c) * mg + m) * kernelVolume + tap);
    const weights = packedWeightsBinding(ctx, map, label, 0);
    const workgroups = blockDispatch(spec);
    checkDispatch(node, device, workgroups);
    return [...weights.prelude, { label, key: `${blockKey(spec)}:${title}`, code: blockCode(spec, title), workgroups, bindings: blockBindings(weights.binding) }];
  }
  const programs: KernelProgram[] = [];
  let phaseIndex = 0;
  for (let pz = 0; pz < Math.min(strides[0], output[0]); pz++) {
    for (let py = 0; py < Math.min(strides[1], output[1]); py++) {
      for (let px = 0; px < Math.min(strides[2], output[2]); px++) {
        const phase = [pz, py, px];
        const axes = [0, 1, 2].map((a) => phaseAxis(phase[a], strides[a], dilations[a], kernel[a], padBegin[a], input[a], output[a])) as [DirectAxis, DirectAxis, DirectAxis];
        const spec: DirectSpec = {
          batch, inChannels, outChannels: s.outChannels, groups: s.group, kernel: [kernel[0], kernel[1], kernel[2]], axes,
          tm: channelTile(mg, cpu ? 8 : 4), ty: 1, tx: Math.min(cpu ? 8 : 4, axes[2].count),
          workgroup: workgroupFor(axes[0].count * axes[1].count * Math.ceil(axes[2].count / Math.min(cpu ? 8 : 4, axes[2].count)), device),
          subgroups: useSubgroupBroadcast(device), epilogue: ctx.epilogue,
        };
        const title = `ConvTranspose ${s.kernel.join('x')} s${s.strides.join('x')} phase ${phase.slice(3 - spatial).join(',')}`;
        const label = `${title} (${node.name})`;
        const map = packingMap(directLayout(spec), (g, m, c, tap) => ((g * cg + c) * mg + m) * kernelVolume + tap);
        const weights = packedWeightsBinding(ctx, map, label, phaseIndex++);
        const workgroups = directDispatch(spec);
        checkDispatch(node, device, workgroups);
        programs.push(...weights.prelude, {
          label, key: `${directKey(spec)}:${title}`, code: directCode(spec, title), workgroups,
          bindings: directBindings(spec, weights.binding),
        });
      }
    }
  }
  return programs;
}

export const ops: OpDefinition[] = [
  {
    opType: 'ConvTranspose',
    sinceVersion: 1,
    infer(ctx) {
      const s = transposeShape(ctx);
      return [{ dtype: s.x.dtype, shape: s.output }];
    },
    build: buildConvTranspose,
  },
];
