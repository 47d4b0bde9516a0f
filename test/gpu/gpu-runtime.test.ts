import t from 'tap';
import { GpuRuntime } from '../../daemon/gpu/gpu-runtime.ts';
import { isEdgerunError } from '../../daemon/errors.ts';
import { addOneThenAffine, floats, maxAbsDiff, randomInput, squareChain } from './tiny-plans.ts';

const runtime = await GpuRuntime.start();
t.teardown(() => runtime.close());

t.test('the runtime reports the adapter caps and the offset alignment plans must respect', async (t) => {
  t.ok(runtime.caps.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20, 'storage binding limit raised to the adapter maximum');
  t.ok(runtime.caps.limits.maxComputeInvocationsPerWorkgroup >= 256);
  t.equal(runtime.minStorageBufferOffsetAlignment, runtime.adapter.limits.minStorageBufferOffsetAlignment, 'the adapter alignment was requested');
  t.ok(runtime.caps.features instanceof Set);
  for (const feature of ['shader-f16', 'subgroups', 'timestamp-query']) {
    t.equal(runtime.caps.features.has(feature), runtime.adapter.features.includes(feature), `${feature} requested when the adapter has it`);
  }
  t.equal(runtime.info.adapter.name, runtime.adapter.name);
});

t.test('a chained plan with uploaded constants computes add-one then affine', async (t) => {
  const tiny = addOneThenAffine(300, 2.5, -0.75, runtime.minStorageBufferOffsetAlignment);
  const session = await runtime.loadPlan(tiny.plan);
  t.equal(session.stats.pipelines, 2);
  t.equal(session.stats.constantBytes, 8);
  t.ok(session.stats.bufferBytes >= 3 * 300 * 4);
  for (const seed of [1, 2, 3]) {
    const x = randomInput(tiny.elements, seed);
    const result = await session.run(new Map([['x', x.slice().buffer]]));
    t.same([...result.outputs.keys()], ['y']);
    t.ok(maxAbsDiff(new Float32Array(result.outputs.get('y')!), tiny.reference(x)) < 1e-5, `seed ${seed}`);
    t.equal(result.gpuMs, undefined, 'no timing unless profiling');
  }
  await session.dispose();
});

t.test('a plan with several outputs returns each, and inputs can be transferred', async (t) => {
  const tiny = squareChain(1000);
  const session = await runtime.loadPlan(tiny.plan);
  const x = randomInput(tiny.elements, 7);
  const input = x.slice().buffer;
  const result = await session.run(new Map([['x', input]]), { transferInputs: true });
  t.equal(input.byteLength, 0, 'the transferred input is detached');
  t.same(new Float32Array(result.outputs.get('y')!), tiny.reference(x));
  t.same(new Float32Array(result.outputs.get('s')!), x.map((v) => Math.fround(v * v)));
  await session.dispose();
});

t.test('profiling reports GPU time per node', async (t) => {
  const tiny = squareChain(256);
  const session = await runtime.loadPlan(tiny.plan);
  const x = randomInput(tiny.elements, 3);
  const result = await session.run(new Map([['x', x.slice().buffer]]), { profile: true });
  t.same(new Float32Array(result.outputs.get('y')!), tiny.reference(x), 'profiled runs compute the same');
  t.ok(typeof result.gpuMs === 'number' && result.gpuMs >= 0);
  if (runtime.timestampQuery) {
    t.equal(result.timing, 'timestamp-query');
    t.same([...result.perNodeMs!.keys()].sort(), ['add_one', 'square_1', 'square_2']);
    const total = [...result.perNodeMs!.values()].reduce((a, b) => a + b, 0);
    t.ok(total <= result.gpuMs! + 1e-6, 'per-node times fit inside the total');
  } else {
    t.equal(result.timing, 'wall-clock');
  }
  const plain = await session.run(new Map([['x', x.slice().buffer]]));
  t.same(new Float32Array(plain.outputs.get('y')!), tiny.reference(x), 'an unprofiled run after a profiled one');
  await session.dispose();
});

t.test('inputs are checked on the main thread', async (t) => {
  const tiny = squareChain(64);
  const session = await runtime.loadPlan(tiny.plan);
  const ok = floats(new Array(64).fill(1));
  await t.rejects(session.run(new Map()), { code: 'EDGERUN_ERR_INPUT', message: /input "x" is missing/ });
  await t.rejects(session.run(new Map([['x', floats([1, 2])]])), { code: 'EDGERUN_ERR_INPUT', message: /"x" has 8 bytes, expected 256/ });
  await t.rejects(session.run(new Map([['x', ok], ['z', ok]])), { code: 'EDGERUN_ERR_INPUT', message: /unknown input "z"/ });
  await t.rejects(session.run(new Map([['x', new Float32Array(64).buffer as ArrayBuffer]]).set('x', new SharedArrayBuffer(256) as unknown as ArrayBuffer)),
    { code: 'EDGERUN_ERR_INPUT', message: /SharedArrayBuffer/ });
  const result = await session.run(new Map([['x', ok]]));
  t.same(new Float32Array(result.outputs.get('y')!), new Float32Array(64).fill(4), 'the session still works after rejected inputs');
  await session.dispose();
});

t.test('plans over the adapter limits fail with EDGERUN_ERR_GPU_LIMIT naming the node', async (t) => {
  const tooWide = squareChain(64);
  tooWide.plan.steps[1].workgroups = [runtime.caps.limits.maxComputeWorkgroupsPerDimension + 1, 1, 1];
  await t.rejects(runtime.loadPlan(tooWide.plan), { code: 'EDGERUN_ERR_GPU_LIMIT', message: /node add_one/ });

  const misaligned = squareChain(64);
  misaligned.plan.buffers[0].bytes = 1024;
  misaligned.plan.steps[0].bindings[0].offset = 4;
  await t.rejects(runtime.loadPlan(misaligned.plan), { code: 'EDGERUN_ERR_GPU_VALIDATION', message: /minStorageBufferOffsetAlignment/ });

  const huge = squareChain(64);
  huge.plan.buffers[3].bytes = (Math.floor(runtime.caps.limits.maxBufferSize / 4) + 1) * 4;
  await t.rejects(runtime.loadPlan(huge.plan), { code: 'EDGERUN_ERR_GPU_LIMIT', message: /buffer 13/ });
});

t.test('buffers freed by one session are reused, zero-filled, by the next', async (t) => {
  // The first session leaves non-zero data in its buffers; the second reads a buffer it never writes.
  const first = await runtime.loadPlan(squareChain(64).plan);
  await first.run(new Map([['x', floats(new Array(64).fill(3))]]));
  await first.dispose();
  const before = await runtime.stats();
  const bytes = 64 * 4;
  const second = await runtime.loadPlan({
    pipelines: [squareChain(64).plan.pipelines[1]],
    buffers: [{ id: 0, bytes }, { id: 1, bytes }, { id: 2, bytes }, { id: 3, bytes }],
    constants: [],
    steps: [{ pipeline: 0, bindings: [{ buffer: 2, offset: 0, size: bytes }, { buffer: 3, offset: 0, size: bytes }], workgroups: [1, 1, 1], node: 'read_untouched' }],
    inputs: [{ name: 'x', buffer: 0, offset: 0, bytes }],
    outputs: [{ name: 'y', buffer: 3, offset: 0, bytes }],
  });
  const after = await runtime.stats();
  t.ok(after.buffersReused - before.buffersReused >= 4, 'all four buffers came from the pool');
  const result = await second.run(new Map([['x', floats(new Array(64).fill(5))]]));
  t.same(new Float32Array(result.outputs.get('y')!), new Float32Array(64).fill(1), 'reused buffers start as zeros');
  await second.dispose();
});

t.test('dispose is idempotent and a disposed session refuses to run', async (t) => {
  const session = await runtime.loadPlan(squareChain(64).plan);
  await Promise.all([session.dispose(), session.dispose()]);
  await session.dispose();
  const error = await session.run(new Map([['x', floats(new Array(64).fill(1))]])).catch((e: unknown) => e);
  t.ok(isEdgerunError(error, 'EDGERUN_ERR_SESSION_CLOSED'));
});

t.test('close is idempotent, finishes queued runs, and later calls fail as closed', async (t) => {
  const own = await GpuRuntime.start();
  const tiny = squareChain(128);
  const session = await own.loadPlan(tiny.plan);
  const x = randomInput(tiny.elements, 11);
  const runs = Array.from({ length: 5 }, () => session.run(new Map([['x', x.slice().buffer]])));
  const closes = [own.close(), own.close()];
  for (const result of await Promise.all(runs)) t.same(new Float32Array(result.outputs.get('y')!), tiny.reference(x));
  await Promise.all(closes);
  await own.close();
  await t.rejects(own.loadPlan(tiny.plan), { code: 'EDGERUN_ERR_SESSION_CLOSED' });
  await t.rejects(session.run(new Map([['x', x.slice().buffer]])), { code: 'EDGERUN_ERR_SESSION_CLOSED' });
  await session.dispose();
});
