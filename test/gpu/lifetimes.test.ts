import t from 'tap';
import { GpuRuntime, type GpuRunResult } from '../../daemon/gpu/gpu-runtime.ts';
import { isEdgerunError } from '../../daemon/errors.ts';
import { lcgRounds, squareChain, floats } from './tiny-plans.ts';

const seeds = (n: number, salt: number): Uint32Array<ArrayBuffer> => Uint32Array.from({ length: n }, (_, i) => (i * 2654435761 + salt) >>> 0);

t.test('disposing a session while runs are in flight waits for them, then frees its buffers', async (t) => {
  const runtime = await GpuRuntime.start();
  t.teardown(() => runtime.close());
  const slow = lcgRounds(256, 20000);
  const session = await runtime.loadPlan(slow.plan);
  const held = (await runtime.stats()).liveBufferBytes;
  t.ok(held >= 2 * 256 * 4);

  const events: string[] = [];
  const runs = Array.from({ length: 6 }, (_, i) => {
    const x = seeds(256, i);
    return session.run(new Map([['x', x.slice().buffer]])).then((result: GpuRunResult) => {
      events.push(`run ${i}`);
      t.same(new Uint32Array(result.outputs.get('y')!), slow.referenceU32(x), `run ${i} completed correctly despite the dispose`);
    });
  });
  const disposed = session.dispose().then(() => events.push('disposed'));
  await Promise.all([...runs, disposed]);
  t.same(events, ['run 0', 'run 1', 'run 2', 'run 3', 'run 4', 'run 5', 'disposed'], 'dispose resolves after every queued run');
  const after = await runtime.stats();
  t.equal(after.liveBufferBytes, held - session.stats.bufferBytes, 'the session buffers went back to the pool');
  t.equal(after.completed, after.submitted, 'nothing is left in flight');
  await t.rejects(session.run(new Map([['x', seeds(256, 0).buffer]])), { code: 'EDGERUN_ERR_SESSION_CLOSED' });
});

t.test('runs on several sessions interleave and each gets its own results', async (t) => {
  const runtime = await GpuRuntime.start();
  t.teardown(() => runtime.close());
  const plans = [lcgRounds(64, 100), lcgRounds(128, 300), lcgRounds(192, 50)];
  const sessions = await Promise.all(plans.map((p) => runtime.loadPlan(p.plan)));
  const checks: Promise<boolean>[] = [];
  for (let round = 0; round < 20; round++) {
    sessions.forEach((session, k) => {
      const x = seeds(plans[k].elements, round * 3 + k);
      checks.push(session.run(new Map([['x', x.slice().buffer]])).then((r) => {
        const y = new Uint32Array(r.outputs.get('y')!);
        const expected = plans[k].referenceU32(x);
        return y.every((v, i) => v === expected[i]);
      }));
    });
  }
  const ok = await Promise.all(checks);
  t.equal(ok.filter(Boolean).length, checks.length, 'all 60 concurrent runs correct');
  await Promise.all(sessions.map((s) => s.dispose()));
});

t.test('a GPU thread that dies rejects every pending call with EDGERUN_ERR_GPU_LOST', async (t) => {
  const runtime = await GpuRuntime.start();
  // About 0.3 s per run on lavapipe: the last runs are certainly still queued when the thread dies.
  const slow = lcgRounds(256, 200000);
  const session = await runtime.loadPlan(slow.plan);
  const inputs = Array.from({ length: 4 }, (_, i) => seeds(256, i));
  const pending = inputs.map((x) => session.run(new Map([['x', x.slice().buffer]])).catch((e: unknown) => e));
  const loading = runtime.loadPlan(squareChain(64).plan).catch((e: unknown) => e);
  await runtime.debugCrashThread();
  const outcomes = await Promise.all(pending);
  outcomes.forEach((outcome, i) => {
    if (outcome instanceof Error) t.ok(isEdgerunError(outcome, 'EDGERUN_ERR_GPU_LOST'), `run ${i} rejected: ${outcome.message}`);
    else t.same(new Uint32Array((outcome as GpuRunResult).outputs.get('y')!), slow.referenceU32(inputs[i]), `run ${i} finished before the crash`);
  });
  t.ok(isEdgerunError(outcomes[3], 'EDGERUN_ERR_GPU_LOST'), 'the last queued run was rejected');
  const loaded = await loading;
  if (loaded instanceof Error) t.ok(isEdgerunError(loaded, 'EDGERUN_ERR_GPU_LOST'), 'the pending load was rejected');
  t.ok(runtime.lost, 'the runtime reports itself lost');
  await t.rejects(runtime.loadPlan(squareChain(64).plan), { code: 'EDGERUN_ERR_GPU_LOST' });
  await t.rejects(session.run(new Map([['x', seeds(256, 0).buffer]])), { code: 'EDGERUN_ERR_GPU_LOST' });
  await session.dispose();
  await runtime.close();
  await runtime.close();
});

t.test('a lost device rejects pending and later calls with EDGERUN_ERR_GPU_LOST', async (t) => {
  const runtime = await GpuRuntime.start();
  const slow = lcgRounds(256, 20000);
  const session = await runtime.loadPlan(slow.plan);
  const pending = Array.from({ length: 4 }, (_, i) => session.run(new Map([['x', seeds(256, i).buffer]])).catch((e: unknown) => e));
  await runtime.debugDestroyDevice();
  const outcomes = await Promise.all(pending);
  // Runs that finished before the loss may have succeeded; none may hang or fail otherwise.
  for (const outcome of outcomes) {
    if (outcome instanceof Error) t.ok(isEdgerunError(outcome, 'EDGERUN_ERR_GPU_LOST'), `pending run rejected: ${outcome.message}`);
  }
  t.ok(outcomes.some((o) => o instanceof Error), 'at least the queued runs were rejected');
  t.ok(runtime.lost);
  await t.rejects(session.run(new Map([['x', seeds(256, 0).buffer]])), { code: 'EDGERUN_ERR_GPU_LOST', message: /lost/ });
  await t.rejects(runtime.loadPlan(squareChain(64).plan), { code: 'EDGERUN_ERR_GPU_LOST' });
  await runtime.close();
});

t.test('two runtimes (two GPU threads) work side by side', async (t) => {
  const [a, b] = await Promise.all([GpuRuntime.start(), GpuRuntime.start()]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const tiny = squareChain(64);
  const [sa, sb] = await Promise.all([a.loadPlan(tiny.plan), b.loadPlan(tiny.plan)]);
  const [ra, rb] = await Promise.all([sa.run(new Map([['x', floats(new Array(64).fill(1))]])), sb.run(new Map([['x', floats(new Array(64).fill(2))]]))]);
  t.same(new Float32Array(ra.outputs.get('y')!), new Float32Array(64).fill(4));
  t.same(new Float32Array(rb.outputs.get('y')!), new Float32Array(64).fill(25));
});
