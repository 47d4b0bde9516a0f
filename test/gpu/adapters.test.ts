import t from 'tap';
import { CPU_ADAPTER_TOGGLES, GpuRuntime, listAdapters } from '../../daemon/gpu/gpu-runtime.ts';
import { sizeClass } from '../../daemon/gpu/buffer-pool.ts';
import { floats, squareChain, workgroupOverread } from './tiny-plans.ts';

t.test('listAdapters finds the lavapipe adapter and reports it as a CPU adapter', async (t) => {
  const adapters = await listAdapters();
  t.ok(adapters.length >= 1, 'at least one adapter');
  const lavapipe = adapters.find((a) => /llvmpipe|lavapipe/i.test(`${a.name} ${a.device} ${a.description}`));
  t.ok(lavapipe, 'lavapipe is listed');
  if (!lavapipe) return;
  t.equal(lavapipe.isCpu, true);
  t.equal(lavapipe.backend, 'vulkan');
  t.equal(lavapipe.index, adapters.indexOf(lavapipe));
  t.ok(lavapipe.features.includes('shader-f16') && lavapipe.features.includes('subgroups'), 'the features ENVIRONMENT.md measured');
  t.equal(lavapipe.limits.maxStorageBufferBindingSize, 128 * 2 ** 20);
  t.ok(lavapipe.limits.minStorageBufferOffsetAlignment > 0);
});

t.test('an adapter can be chosen by its listAdapters index', async (t) => {
  const adapters = await listAdapters();
  const last = adapters[adapters.length - 1];
  const runtime = await GpuRuntime.start({ adapterIndex: last.index });
  t.teardown(() => runtime.close());
  t.equal(runtime.adapter.name, last.name);
  t.equal(runtime.adapter.index, last.index);
  const session = await runtime.loadPlan(squareChain(64).plan);
  const result = await session.run(new Map([['x', floats(new Array(64).fill(1))]]));
  t.same(new Float32Array(result.outputs.get('y')!), new Float32Array(64).fill(4));
  await t.rejects(GpuRuntime.start({ adapterIndex: adapters.length + 5 }), { code: 'EDGERUN_ERR_GPU_UNAVAILABLE', message: /no WebGPU adapter at index/ });
});

t.test('CPU adapters get the unsafe-APIs/no-robustness Dawn toggles by default, and they take effect', async (t) => {
  const defaulted = await GpuRuntime.start();
  const plain = await GpuRuntime.start({ dawnToggles: [] });
  t.teardown(() => Promise.all([defaulted.close(), plain.close()]));
  t.equal(defaulted.adapter.isCpu, true, 'this machine runs lavapipe');
  t.same(defaulted.dawnToggles, CPU_ADAPTER_TOGGLES);
  t.same(plain.dawnToggles, []);
  // allow_unsafe_apis exposes features that are otherwise hidden: proof the instance flags were applied.
  const unsafeOnly = defaulted.adapter.features.filter((f) => !plain.adapter.features.includes(f));
  t.ok(unsafeOnly.length > 0, `features only with allow_unsafe_apis: ${unsafeOnly.join(', ')}`);
  for (const runtime of [defaulted, plain]) {
    const session = await runtime.loadPlan(squareChain(64).plan);
    const result = await session.run(new Map([['x', floats(new Array(64).fill(2))]]));
    t.same(new Float32Array(result.outputs.get('y')!), new Float32Array(64).fill(25), `computes with toggles ${JSON.stringify(runtime.dawnToggles)}`);
    await session.dispose();
  }
  // disable_robustness drops the index clamping of workgroup arrays: an over-read is no longer clamped.
  const overread = workgroupOverread();
  const ramp = floats(Array.from({ length: 64 }, (_, i) => i));
  const read = async (runtime: GpuRuntime): Promise<Float32Array> => {
    const session = await runtime.loadPlan(overread.plan);
    const result = await session.run(new Map([['x', ramp.slice(0)]]));
    await session.dispose();
    return new Float32Array(result.outputs.get('y')!);
  };
  t.same(await read(plain), overread.reference(new Float32Array(64)), 'robust: the out-of-bounds index is clamped to a[63]');
  t.notSame(await read(defaulted), overread.reference(new Float32Array(64)), 'disable_robustness: no clamping');
});

t.test('buffer size classes: powers of two up to 64 KiB, eighths of a power of two above', async (t) => {
  const max = 2 ** 32 - 1;
  t.equal(sizeClass(4, max), 256);
  t.equal(sizeClass(257, max), 512);
  t.equal(sizeClass(65536, max), 65536);
  t.equal(sizeClass(65537, max), 65536 + 8192);
  t.equal(sizeClass(10_000_000, max), 10_485_760);
  for (const bytes of [100_000, 3_000_000, 123_456_789]) {
    const size = sizeClass(bytes, max);
    t.ok(size >= bytes && size <= bytes * 1.125 + 4, `${bytes} → ${size} wastes at most 12.5 %`);
  }
  t.equal(sizeClass(max - 3, max), max - 3, 'never above maxBufferSize');
});
