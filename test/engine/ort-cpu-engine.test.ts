import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import { findHardwareAdapter, selectEngine } from '../../daemon/engine/select-engine.ts';
import { WebGpuEngine } from '../../daemon/engine/webgpu-engine.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { listAdapters } from '../../daemon/gpu/gpu-runtime.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { writeModels } from '../serve/helpers/models.ts';

const models = writeModels();
const engine = await OrtCpuEngine.create();
// One session of the typed model serves the tests that only run it (each session starts a thread).
const typed = await engine.load(models.typed);
t.teardown(async () => {
  await engine.close();
  models.remove();
});

function typedFeeds(overrides: Partial<Record<string, Tensor>> = {}): Map<string, Tensor> {
  const feeds: Record<string, Tensor> = {
    ids: { dtype: 'int64', dims: [3], data: Int32Array.of(-5, 0, 2147483646) },
    mask: { dtype: 'bool', dims: [3], data: Int32Array.of(1, 0, 1) },
    half: { dtype: 'float16', dims: [2], data: Float32Array.of(1.5, -0.25) },
    small: { dtype: 'int8', dims: [3], data: Int32Array.of(-128, 0, 127) },
    fixed: { dtype: 'float32', dims: [1, 3], data: Float32Array.of(0.5, 1.5, 2.5) },
  };
  return new Map(Object.entries({ ...feeds, ...overrides }) as [string, Tensor][]);
}

t.test('a session describes inputs and outputs with IR dtypes and symbolic dims', async (t) => {
  const session = typed;
  t.same(session.inputs.map((i) => [i.name, i.dtype, i.dims]), [
    ['ids', 'int64', ['n']], ['mask', 'bool', ['n']], ['half', 'float16', [2]], ['small', 'int8', [3]], ['fixed', 'float32', [1, 3]],
  ]);
  t.same(session.outputs.map((o) => [o.name, o.dtype]), [
    ['ids_next', 'int64'], ['ids_wide', 'int64'], ['mask_not', 'bool'], ['half_twice', 'float16'], ['small_out', 'int8'], ['fixed_out', 'float32'],
  ]);
});

t.test('int64, bool, float16 and int8 tensors round-trip through onnxruntime in the IR storage types', async (t) => {
  const session = typed;
  const { outputs, timings } = await session.run(typedFeeds());
  const ids = outputs.get('ids_next')!;
  t.equal(ids.dtype, 'int64');
  t.ok(ids.data instanceof Int32Array);
  t.same([...ids.data], [-4, 1, 2147483647]);
  t.same(ids.dims, [3]);
  t.same([...outputs.get('mask_not')!.data], [0, 1, 0], 'bool comes back as 0/1 in an Int32Array');
  const half = outputs.get('half_twice')!;
  t.ok(half.data instanceof Float32Array);
  t.same([...half.data], [3, -0.5]);
  t.same([...outputs.get('small_out')!.data], [-128, 0, 127]);
  t.same([...outputs.get('fixed_out')!.data], [0.5, 1.5, 2.5]);
  t.same(outputs.get('fixed_out')!.dims, [1, 3]);
  t.ok(timings.totalMs > 0);
  t.equal(timings.compileMs, 0);
});

t.test('int64 outputs beyond the int32 range saturate, as the IR specifies', async (t) => {
  const session = typed;
  const { outputs } = await session.run(typedFeeds({ ids: { dtype: 'int64', dims: [3], data: Int32Array.of(-3, 0, 3) } }));
  t.same([...outputs.get('ids_wide')!.data], [-2147483648, 0, 2147483647]);
});

t.test('feeds are validated against the declared inputs before they reach onnxruntime', async (t) => {
  const session = typed;
  const missing = typedFeeds();
  missing.delete('mask');
  await expectEdgerunError(t, session.run(missing), 'EDGERUN_ERR_INPUT', /missing input 'mask'/);
  await expectEdgerunError(t, session.run(typedFeeds({ fixed: { dtype: 'float32', dims: [1, 4], data: new Float32Array(4) } })),
    'EDGERUN_ERR_INPUT', /input 'fixed' must have shape \[1, 3\]/);
  await expectEdgerunError(t, session.run(typedFeeds({ ids: { dtype: 'int32', dims: [3], data: new Int32Array(3) } })),
    'EDGERUN_ERR_INPUT', /input 'ids' must be int64, got int32/);
  await expectEdgerunError(t, session.run(typedFeeds({ extra: { dtype: 'float32', dims: [1], data: new Float32Array(1) } })),
    'EDGERUN_ERR_INPUT', /unknown input 'extra'/);
});

t.test('onnxruntime run failures become EDGERUN_ERR_ENGINE naming the model, and the session stays usable', async (t) => {
  // An ArgMax over an empty axis passes the declared-shape check (both dims are dynamic) but fails inside onnxruntime.
  const example = await engine.load(models.example);
  t.teardown(() => example.close());
  await expectEdgerunError(t, example.run(new Map([['input-0', { dtype: 'float32', dims: [2, 0], data: new Float32Array(0) }]])),
    'EDGERUN_ERR_ENGINE', /example\.onnx/);
  const ok = await example.run(new Map([['input-0', { dtype: 'float32', dims: [1, 2], data: Float32Array.of(3, 4) }]]));
  t.same([...ok.outputs.get('output-0')!.data], [6, 8]);
});

t.test('the caller keeps its input tensors usable after a run', async (t) => {
  const session = await engine.load(models.example);
  t.teardown(() => session.close());
  const data = Float32Array.of(1, 2, 3, 4);
  const feeds = new Map([['input-0', { dtype: 'float32' as const, dims: [2, 2], data }]]);
  await session.run(feeds);
  const again = await session.run(feeds);
  t.same([...data], [1, 2, 3, 4]);
  t.same([...again.outputs.get('output-0')!.data], [2, 4, 6, 8]);
  t.same([...again.outputs.get('argmax')!.data], [1, 1]);
});

t.test('inference runs off the event loop: timers keep firing during a long run', async (t) => {
  const session = await engine.load(models.slow);
  t.teardown(() => session.close());
  const rows = 2048;
  const feeds = new Map([['x', { dtype: 'float32' as const, dims: [rows, 256], data: new Float32Array(rows * 256).fill(0.01) }]]);
  await session.run(feeds);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const started = performance.now();
  // Keep the engine busy for at least 300 ms whatever the machine's speed (bounded), so a stall would show.
  for (let round = 0; round < 100 && performance.now() - started < 300; round++) {
    await Promise.all([session.run(feeds), session.run(feeds)]);
  }
  const elapsed = performance.now() - started;
  clearInterval(timer);
  delay.disable();
  const maxDelayMs = delay.max / 1e6;
  t.comment(`rounds of two runs took ${elapsed.toFixed(0)} ms; event-loop delay max ${maxDelayMs.toFixed(1)} ms; ${ticks} timer ticks`);
  t.ok(elapsed > 150, `the workload is long enough to show blocking (${elapsed.toFixed(0)} ms)`);
  t.ok(maxDelayMs < elapsed / 2, `no stall near the run time (max delay ${maxDelayMs.toFixed(1)} ms)`);
  t.ok(ticks > elapsed / 5 / 4, `timers fired (${ticks})`);
});

t.test('concurrent runs on one session each get their own outputs', async (t) => {
  const session = await engine.load(models.example);
  t.teardown(() => session.close());
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) =>
    session.run(new Map([['input-0', { dtype: 'float32' as const, dims: [1, 2], data: Float32Array.of(i, -i) }]]))));
  results.forEach((result, i) => t.same([...result.outputs.get('output-0')!.data], [2 * i, -2 * i]));
});

t.test('prepare warms a shape with a run on zeros', async (t) => {
  const session = await engine.load(models.example, { inputShapes: new Map([['input-0', [4, 3]]]) });
  t.teardown(() => session.close());
  const report = await session.prepare(new Map([['input-0', [2, 5]]]));
  t.ok(report.gpuLoadMs >= 0);
  await expectEdgerunError(t, session.prepare(new Map()), 'EDGERUN_ERR_INPUT', /no shape given for input 'input-0'/);
});

t.test('a closed session refuses runs; close is idempotent', async (t) => {
  const session = await engine.load(models.example);
  await Promise.all([session.close(), session.close()]);
  await expectEdgerunError(t, session.run(new Map()), 'EDGERUN_ERR_SESSION_CLOSED', /example\.onnx/);
});

t.test('loading a missing file is EDGERUN_ERR_IO, a corrupt one EDGERUN_ERR_ENGINE, both naming the file', async (t) => {
  await expectEdgerunError(t, engine.load(path.join(models.dir, 'absent.onnx')), 'EDGERUN_ERR_IO', /absent\.onnx/);
  const corrupt = path.join(models.dir, 'corrupt.onnx');
  fs.writeFileSync(corrupt, Buffer.from('this is not a protobuf model'));
  await expectEdgerunError(t, engine.load(corrupt), 'EDGERUN_ERR_ENGINE', /could not load .*corrupt\.onnx/);
});

t.test('engine.close closes every open session', async (t) => {
  const own = await OrtCpuEngine.create({ intraOpNumThreads: 1 });
  const session = await own.load(models.example);
  await own.close();
  await expectEdgerunError(t, session.run(new Map()), 'EDGERUN_ERR_SESSION_CLOSED');
  await expectEdgerunError(t, own.load(models.example), 'EDGERUN_ERR_SESSION_CLOSED');
});

t.test('selectEngine: cpu gives onnxruntime, webgpu gives WebGPU, auto follows the adapters', async (t) => {
  const cpu = await selectEngine('cpu');
  t.ok(cpu instanceof OrtCpuEngine);
  t.equal(cpu.name, 'onnxruntime-cpu');
  await cpu.close();

  const softwareOnly = await selectEngine('auto', { adapters: async () => [{ isCpu: true } as never] });
  t.ok(softwareOnly instanceof OrtCpuEngine, 'only a software adapter: CPU engine');
  await softwareOnly.close();
  const noWebGpu = await selectEngine('auto', { adapters: async () => { throw new Error('libvulkan.so.1: cannot open shared object file'); } });
  t.ok(noWebGpu instanceof OrtCpuEngine, 'WebGPU cannot start: CPU engine');
  await noWebGpu.close();

  const adapters = await listAdapters().catch(() => []);
  const hardware = await findHardwareAdapter(async () => adapters);
  t.comment(`adapters here: ${adapters.map((a) => `${a.name} (${a.isCpu ? 'cpu' : 'hardware'})`).join(', ') || 'none'}`);
  const auto = await selectEngine('auto', { adapters: async () => adapters });
  t.equal(auto.name, hardware ? 'webgpu' : 'onnxruntime-cpu', 'auto picks WebGPU exactly when a hardware adapter exists');
  await auto.close();

  if (adapters.length > 0) {
    const webgpu = await selectEngine('webgpu');
    t.ok(webgpu instanceof WebGpuEngine);
    await webgpu.close();
  }
});
