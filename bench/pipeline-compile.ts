/**
 * Where first-use time goes: lavapipe (and other Vulkan drivers) JIT-compile a pipeline's shader on its first
 * dispatch, so a model's first run pays every pipeline's compile. This tool compiles a model's plan, then
 * dispatches every pipeline once, alone, and reports the first-dispatch time per pipeline (compile + one run)
 * and the steady time of the same dispatch, grouped by op. Run it with the driver's shader cache off to see
 * first-ever costs:
 *   MESA_SHADER_CACHE_DISABLE=true node --import tsx bench/pipeline-compile.ts MODEL.onnx x=1x3x48x320 [--top 20]
 * A development tool: it drives Dawn on its own thread with only awaited calls (no blocking work in between).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';
import { compileModel } from '../daemon/graph/compile.ts';
import type { DeviceCaps } from '../daemon/kernels/types.ts';
import { loadModelFile } from '../daemon/onnx/decode.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '20' } } });
const [modelPath, ...shapeArgs] = positionals;
process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
Object.assign(globalThis, globals);
const gpu = create(['enable-dawn-features=allow_unsafe_apis,disable_robustness']);
const adapter = (await gpu.requestAdapter())!;
const features = [...adapter.features].filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)) as GPUFeatureName[];
const l = adapter.limits;
const device = await adapter.requestDevice({
  requiredFeatures: features,
  requiredLimits: { maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize, maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage, maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX },
});
const caps: DeviceCaps = {
  vendor: adapter.info.vendor, architecture: adapter.info.architecture, isCpu: /llvmpipe|lavapipe|swiftshader/i.test(`${adapter.info.device} ${adapter.info.description}`),
  features: new Set(device.features),
  limits: { maxComputeWorkgroupSizeX: device.limits.maxComputeWorkgroupSizeX, maxComputeWorkgroupSizeY: device.limits.maxComputeWorkgroupSizeY, maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup, maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize, maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage, maxBufferSize: device.limits.maxBufferSize },
};
const model = await loadModelFile(modelPath);
const shapes = new Map(shapeArgs.map((arg) => { const [name, dims] = arg.split('='); return [name, dims.split('x').map(Number)] as [string, number[]]; }));
const compiled = compileModel(model, { inputShapes: shapes, caps });
const buffers = compiled.plan.buffers.map((b) => device.createBuffer({ size: Math.max(16, Math.ceil(b.bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }));
const rows: { ms: number; steadyMs: number; label: string; op: string; chars: number }[] = [];
const seen = new Set<number>();
let createMs = 0;
for (const step of compiled.plan.steps) {
  if (seen.has(step.pipeline)) continue;
  seen.add(step.pipeline);
  const planned = compiled.plan.pipelines[step.pipeline];
  const t0 = performance.now();
  const module = device.createShaderModule({ code: planned.code });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  createMs += performance.now() - t0;
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: step.bindings.map((b, i) => ({ binding: i, resource: { buffer: buffers[b.buffer], offset: b.offset, size: Math.ceil(b.size / 4) * 4 } })) });
  const times: number[] = [];
  for (let r = 0; r < 2; r++) {
    const t = performance.now();
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...step.workgroups);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    times.push(performance.now() - t);
  }
  rows.push({ ms: times[0], steadyMs: times[1], label: planned.label, op: planned.label.split(' ')[0], chars: planned.code.length });
}
const byOp = new Map<string, { count: number; ms: number; steadyMs: number }>();
for (const r of rows) {
  const entry = byOp.get(r.op) ?? { count: 0, ms: 0, steadyMs: 0 };
  entry.count++; entry.ms += r.ms; entry.steadyMs += r.steadyMs;
  byOp.set(r.op, entry);
}
const total = rows.reduce((s, r) => s + r.ms, 0);
console.log(`${modelPath}: ${rows.length} pipelines, ${compiled.plan.steps.length} dispatches; pipeline creation ${createMs.toFixed(0)} ms; first dispatches ${total.toFixed(0)} ms`);
console.log('\nby op: pipelines, first-dispatch ms (compile + run), steady ms of one dispatch each');
for (const [op, e] of [...byOp].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${op.padEnd(22)} ${String(e.count).padStart(4)} ${e.ms.toFixed(0).padStart(8)} ${e.steadyMs.toFixed(1).padStart(8)}`);
console.log(`\ntop ${values.top}:`);
for (const r of rows.sort((a, b) => b.ms - a.ms).slice(0, Number(values.top))) console.log(`  ${r.ms.toFixed(0).padStart(6)} ms  steady ${r.steadyMs.toFixed(2).padStart(7)} ms  ${String(r.chars).padStart(6)} chars  ${r.label}`);
device.destroy();
process.exit(0);
