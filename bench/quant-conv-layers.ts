/**
 * Times every edgerun.QConv layer of a quantized model (e.g. a package from `edgerun compress`) against the
 * FP32 Conv of the same layer with the weights dequantized, on the local adapter:
 *   node --import tsx bench/quant-conv-layers.ts PKG/model.onnx [--input 1x3x48x320] [--gpu-tiling]
 * Per layer the two kernels take turns, best of SUBMISSIONS submissions of REPEATS dispatches each; the
 * totals sum the layers' bests (what the convs cost in one inference, without the model's other ops).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { analyzeGraph, contextFor } from '../daemon/graph/analyze.ts';
import { fuseDequantize } from '../daemon/graph/fuse-dequant.ts';
import type { Node, Tensor } from '../daemon/graph/ir.ts';
import { findOp } from '../daemon/kernels/registry.ts';
import { qconvShape } from '../daemon/kernels/quant-conv-shape.ts';
import type { BuildContext, DeviceCaps, KernelProgram, OpContext } from '../daemon/kernels/types.ts';
import { decodeModel } from '../daemon/onnx/decode.ts';
import { randomTensor, testDevice } from '../test/helpers/kernel-harness.ts';

const REPEATS = 3;
const SUBMISSIONS = 7;

/** The float weights (q − z) · s of a QConv, as DequantizeLinear computes them. */
function dequantized(ctx: OpContext): Tensor {
  const shape = qconvShape(ctx);
  const [, cg, ...kernel] = shape.w;
  const kernelVolume = kernel.reduce((a, b) => a * b, 1);
  const q = shape.weights.data;
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++) {
    const m = Math.floor(i / (cg * kernelVolume));
    const tap = i % kernelVolume;
    const c = Math.floor(i / kernelVolume) % cg;
    const layout = shape.layout;
    const s = layout.kind === 'block' ? (m * layout.blocks + Math.floor(c / layout.blockSize)) * kernelVolume + tap : layout.kind === 'channel' ? m : 0;
    out[i] = Math.fround((q[i] - (shape.zeroPoint ? shape.zeroPoint.data[s] : 0)) * shape.scale.data[s]);
  }
  return { dtype: 'float32', dims: shape.w, data: out };
}

/** The float Conv equivalent of a QConv node: same X, dequantized W, same bias and Conv attributes. */
function floatConv(node: Node, ctx: OpContext): OpContext {
  const attributes = new Map(node.attributes);
  attributes.delete('axis');
  attributes.delete('block_size');
  const w = dequantized(ctx);
  const bias = ctx.constants[4] ?? null;
  return {
    node: { ...node, opType: 'Conv', domain: '', inputs: [node.inputs[0], `${node.name}::w`, ...(bias ? [`${node.name}::b`] : [])], attributes },
    opset: 17,
    inputs: [ctx.inputs[0], { dtype: 'float32', shape: w.dims }, ...(bias ? [ctx.inputs[4]] : [])],
    constants: [null, w, ...(bias ? [bias] : [])],
  };
}

async function prepare(ctx: OpContext, caps: DeviceCaps): Promise<{ run: () => Promise<number>; label: string }> {
  const { device } = await testDevice();
  const op = findOp(ctx.node.domain, ctx.node.opType)!;
  const outputs = op.infer(ctx);
  const build: BuildContext = { ...ctx, outputs, device: caps };
  const programs: KernelProgram[] = op.build!(build);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
  const upload = (data: Float32Array | Int32Array | Uint32Array): GPUBuffer => {
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(data.byteLength / 16) * 16), usage });
    device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return buffer;
  };
  const x = upload(randomTensor(ctx.inputs[0]!.shape, 1).data);
  const y = device.createBuffer({ size: Math.ceil((outputs[0].shape.reduce((a, b) => a * b, 1) * 4) / 16) * 16, usage });
  const steps = await Promise.all(programs.map(async (program) => {
    const module = device.createShaderModule({ code: program.code });
    const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const entries = program.bindings.map((binding, index) => {
      if (binding.kind === 'constant') return { binding: index, resource: { buffer: upload(binding.data) } };
      if (binding.kind === 'output') return { binding: index, resource: { buffer: y } };
      if (binding.kind === 'input' && binding.index === 0) return { binding: index, resource: { buffer: x } };
      throw new Error(`${program.label}: constant weights bind only X, constants and Y`);
    });
    return { pipeline, bindGroup: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), workgroups: program.workgroups };
  }));
  const run = async (): Promise<number> => {
    const encoder = device.createCommandEncoder();
    for (let r = 0; r < REPEATS; r++) {
      for (const step of steps) {
        const pass = encoder.beginComputePass();
        pass.setPipeline(step.pipeline);
        pass.setBindGroup(0, step.bindGroup);
        pass.dispatchWorkgroups(...step.workgroups);
        pass.end();
      }
    }
    const start = performance.now();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - start) / REPEATS;
  };
  await run();
  return { run, label: programs.map((p) => p.label).join(' + ') };
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { input: { type: 'string' }, 'gpu-tiling': { type: 'boolean' } } });
if (positionals.length !== 1) {
  process.stderr.write('usage: node --import tsx bench/quant-conv-layers.ts MODEL.onnx [--input 1x3x48x320] [--gpu-tiling]\n');
  process.exit(2);
}
const model = decodeModel(new Uint8Array(fs.readFileSync(positionals[0])), { source: positionals[0] });
const inputDims = (values.input ?? '1x3x48x320').split('x').map(Number);
const fused = fuseDequantize(model.graph, model.opsets);
const analyzed = analyzeGraph(fused.graph, model.opsets, new Map([[model.graph.inputs[0].name, inputDims]]));
const { caps: adapterCaps } = await testDevice();
const caps: DeviceCaps = values['gpu-tiling'] ? { ...adapterCaps, isCpu: false } : adapterCaps;
process.stdout.write(`adapter: ${caps.vendor} ${caps.architecture}${values['gpu-tiling'] ? ' (GPU tiling)' : ''}; ${fused.quantizedConvs} QConv layers\n`);
let totalFloat = 0;
let totalQuant = 0;
for (const node of analyzed.nodes.filter((n) => n.domain === 'edgerun' && n.opType === 'QConv')) {
  const ctx = contextFor(node, analyzed.opsets, analyzed.types, analyzed.constants);
  const quant = await prepare(ctx, caps);
  const float = await prepare(floatConv(node, ctx), caps);
  const times = { quant: Infinity, float: Infinity };
  for (let s = 0; s < SUBMISSIONS; s++) {
    times.float = Math.min(times.float, await float.run());
    times.quant = Math.min(times.quant, await quant.run());
  }
  totalFloat += times.float;
  totalQuant += times.quant;
  const x = ctx.inputs[0]!.shape.join('x');
  process.stdout.write(`${quant.label.padEnd(70)} X ${x.padEnd(14)} fp32 ${times.float.toFixed(2).padStart(7)} ms  quantized ${times.quant.toFixed(2).padStart(7)} ms\n`);
}
process.stdout.write(`total over the QConv layers: fp32 ${totalFloat.toFixed(1)} ms, quantized ${totalQuant.toFixed(1)} ms (${(totalFloat / totalQuant).toFixed(2)}x)\n`);
process.exit(0);
