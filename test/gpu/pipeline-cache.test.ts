import t from 'tap';
import { GpuRuntime } from '../../daemon/gpu/gpu-runtime.ts';
import { addOne, addOneThenAffine, randomInput, squareChain, maxAbsDiff } from './tiny-plans.ts';

const runtime = await GpuRuntime.start({ idlePipelines: 2 });
t.teardown(() => runtime.close());

t.test('sessions with equal specialisation keys share compiled pipelines', async (t) => {
  const before = await runtime.stats();
  const first = await runtime.loadPlan(squareChain(64).plan);
  t.equal(first.stats.pipelines, 2);
  t.equal(first.stats.compiledPipelines, 2, 'the first load compiles both');
  const second = await runtime.loadPlan(squareChain(256).plan);
  t.equal(second.stats.compiledPipelines, 0, 'an equal plan of another size compiles nothing');
  const mixed = await runtime.loadPlan(addOneThenAffine(64, 2, 1, runtime.minStorageBufferOffsetAlignment).plan);
  t.equal(mixed.stats.compiledPipelines, 1, 'only the affine program is new; add-one comes from the cache');
  const after = await runtime.stats();
  t.equal(after.pipelinesCompiled - before.pipelinesCompiled, 3);
  t.equal(after.pipelineCacheHits - before.pipelineCacheHits, 3);

  const x = randomInput(256, 5);
  const tiny = squareChain(256);
  const result = await second.run(new Map([['x', x.slice().buffer]]));
  t.same(new Float32Array(result.outputs.get('y')!), tiny.reference(x), 'a cached pipeline computes correctly');
  await Promise.all([first.dispose(), second.dispose(), mixed.dispose()]);
});

t.test('concurrent loads of the same key compile it once', async (t) => {
  const holder = await runtime.loadPlan(squareChain(64).plan); // keeps the square program cached
  const before = await runtime.stats();
  const fresh = { ...addOne, key: 'test.add-one.concurrent', code: `${addOne.code}\n// concurrent\n` };
  const plan = (n: number) => {
    const p = squareChain(n).plan;
    p.pipelines = [p.pipelines[0], fresh];
    return p;
  };
  const sessions = await Promise.all([runtime.loadPlan(plan(64)), runtime.loadPlan(plan(128)), runtime.loadPlan(plan(192))]);
  const after = await runtime.stats();
  t.equal(after.pipelinesCompiled - before.pipelinesCompiled, 1, 'one compile for three concurrent loads');
  t.equal(sessions.reduce((n, s) => n + s.stats.compiledPipelines, 0), 1);
  await Promise.all([holder, ...sessions].map((s) => s.dispose()));
});

t.test('pipelines no session uses stay cached up to the idle limit, oldest evicted first', async (t) => {
  const variants = [1, 2, 3].map((i) => ({ ...addOne, key: `test.add-one.idle-${i}`, code: `${addOne.code}\n// variant ${i}\n` }));
  for (const variant of variants) {
    const plan = squareChain(64).plan;
    plan.pipelines = [plan.pipelines[0], variant];
    const session = await runtime.loadPlan(plan);
    await session.dispose();
  }
  const stats = await runtime.stats();
  t.equal(stats.idlePipelines, 2, 'idle pipelines are capped (idlePipelines: 2)');
  const reload = (variant: (typeof variants)[number]) => {
    const plan = squareChain(64).plan;
    plan.pipelines = [plan.pipelines[0], variant];
    return runtime.loadPlan(plan);
  };
  const newest = await reload(variants[2]);
  t.equal(newest.stats.compiledPipelines, 0, 'a recently released pipeline is reused');
  const oldest = await reload(variants[0]);
  t.equal(oldest.stats.compiledPipelines, 1, 'the oldest idle pipeline was evicted and is compiled again');
  await Promise.all([newest.dispose(), oldest.dispose()]);
});

t.test('equal keys with different WGSL are a compiler bug and are refused', async (t) => {
  const plan = squareChain(64).plan;
  plan.pipelines = [plan.pipelines[0], { ...addOne, label: 'impostor', code: `${addOne.code}\n// differs\n` }];
  const session = await runtime.loadPlan(squareChain(64).plan);
  await t.rejects(runtime.loadPlan(plan), { code: 'EDGERUN_ERR_GPU_VALIDATION', message: /key collision.*impostor/ });
  await session.dispose();
});

t.test('a failed load releases what it acquired and the runtime keeps working', async (t) => {
  const before = await runtime.stats();
  const plan = addOneThenAffine(64, 1, 0, runtime.minStorageBufferOffsetAlignment).plan;
  plan.pipelines[1] = { key: 'test.broken', label: 'broken program', code: 'fn main( {' };
  await t.rejects(runtime.loadPlan(plan), { code: 'EDGERUN_ERR_GPU_VALIDATION' });
  const after = await runtime.stats();
  t.equal(after.liveBufferBytes, before.liveBufferBytes, 'no buffer stays held by the failed load');
  t.equal(after.sessions, before.sessions);
  const tiny = addOneThenAffine(64, 3, 1, runtime.minStorageBufferOffsetAlignment);
  const session = await runtime.loadPlan(tiny.plan);
  const x = randomInput(64, 9);
  const result = await session.run(new Map([['x', x.slice().buffer]]));
  t.ok(maxAbsDiff(new Float32Array(result.outputs.get('y')!), tiny.reference(x)) < 1e-5);
  await session.dispose();
});
