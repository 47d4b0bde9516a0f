/**
 * The GPU thread must survive what the daemon does to it: thousands of inferences with readbacks on
 * several sessions at once, sessions loaded and disposed meanwhile, while the main thread and other
 * worker threads block for 5–150 ms at a time (dawn.node crashes when the thread owning the device blocks;
 * here only the dedicated GPU thread owns it).
 */
import t from 'tap';
import { Worker } from 'node:worker_threads';
import { GpuRuntime, type GpuSession } from '../../daemon/gpu/gpu-runtime.ts';
import { addOneThenAffine, lcgRounds, maxAbsDiff, randomInput, squareChain } from './tiny-plans.ts';

const RUNS_PER_SESSION = 1000;
const IN_FLIGHT_PER_SESSION = 4;
const SWAPS = 6;

function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* deliberately blocking */ }
}

/** A worker thread that alternates 5–150 ms busy loops with short sleeps until told to stop. */
function spawnBusyThread(seed: number): Worker {
  return new Worker(`
    const { parentPort } = require('node:worker_threads');
    let state = ${seed};
    let stop = false;
    parentPort.on('message', () => { stop = true; });
    const rand = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
    const loop = () => {
      if (stop) { parentPort.close(); return; }
      const end = performance.now() + 5 + rand() * 145;
      while (performance.now() < end) {}
      setTimeout(loop, 1 + rand() * 20);
    };
    loop();
  `, { eval: true });
}

interface Driver {
  name: string;
  session: GpuSession;
  /** Runs one inference and returns whether its outputs match the CPU reference. */
  check(session: GpuSession, round: number): Promise<boolean>;
}

t.test('thousands of concurrent inferences stay correct while other threads block', async (t) => {
  const runtime = await GpuRuntime.start();
  t.teardown(() => runtime.close());
  const alignment = runtime.minStorageBufferOffsetAlignment;

  const affine = addOneThenAffine(256, 1.5, -2, alignment);
  const chain = squareChain(512);
  const lcg = lcgRounds(128, 64);
  const drivers: Driver[] = [
    {
      name: 'add-one → affine', session: await runtime.loadPlan(affine.plan),
      async check(session, round) {
        const x = randomInput(affine.elements, round + 1);
        const r = await session.run(new Map([['x', x.slice().buffer]]));
        return maxAbsDiff(new Float32Array(r.outputs.get('y')!), affine.reference(x)) < 1e-5;
      },
    },
    {
      name: 'square chain (two outputs)', session: await runtime.loadPlan(chain.plan),
      async check(session, round) {
        const x = randomInput(chain.elements, round + 7919);
        const r = await session.run(new Map([['x', x.slice().buffer]]), { transferInputs: round % 2 === 0 });
        const y = new Float32Array(r.outputs.get('y')!);
        const s = new Float32Array(r.outputs.get('s')!);
        return maxAbsDiff(y, chain.reference(x)) === 0 && maxAbsDiff(s, x.map((v) => Math.fround(v * v))) === 0;
      },
    },
    {
      name: 'lcg', session: await runtime.loadPlan(lcg.plan),
      async check(session, round) {
        const x = Uint32Array.from({ length: lcg.elements }, (_, i) => (i * 2654435761 + round) >>> 0);
        const r = await session.run(new Map([['x', x.slice().buffer]]), { profile: round % 50 === 0 });
        const y = new Uint32Array(r.outputs.get('y')!);
        const expected = lcg.referenceU32(x);
        return y.every((v, i) => v === expected[i]);
      },
    },
  ];

  const busyThreads = [spawnBusyThread(1), spawnBusyThread(2)];
  let stressing = true;
  let mainBlocks = 0;
  const mainBusy = (async () => {
    let state = 12345;
    while (stressing) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      busyFor(5 + (state / 2 ** 32) * 145);
      mainBlocks++;
      await new Promise((resolve) => setTimeout(resolve, 5 + (state % 25)));
    }
  })();

  const started = performance.now();
  const failures: string[] = [];
  let completed = 0;

  const drive = async (driver: Driver): Promise<void> => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < RUNS_PER_SESSION) {
        const round = next++;
        if (!(await driver.check(driver.session, round))) failures.push(`${driver.name} round ${round}`);
        completed++;
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT_PER_SESSION }, lane));
  };

  // Hot swaps meanwhile: a session is loaded, used, and disposed with runs still in flight.
  const swaps = (async () => {
    let swapped = 0;
    for (let i = 0; i < SWAPS; i++) {
      const plan = i % 2 === 0 ? squareChain(64 * (i + 1)) : addOneThenAffine(64 * (i + 1), i, 1, alignment);
      const session = await runtime.loadPlan(plan.plan);
      const runs = Array.from({ length: 10 }, (_, k) => {
        const x = randomInput(plan.elements, 100 * i + k);
        return session.run(new Map([['x', x.slice().buffer]])).then((r) =>
          maxAbsDiff(new Float32Array(r.outputs.get('y')!), plan.reference(x)) < 1e-5 || failures.push(`swap ${i} run ${k}`));
      });
      await session.dispose();
      await Promise.all(runs);
      swapped++;
    }
    return swapped;
  })();

  await Promise.all(drivers.map(drive));
  const swapped = await swaps;
  stressing = false;
  await mainBusy;
  for (const thread of busyThreads) thread.postMessage('stop');
  await Promise.all(busyThreads.map((thread) => new Promise((resolve) => thread.once('exit', resolve))));
  const seconds = (performance.now() - started) / 1000;

  t.same(failures, [], 'every result matches its CPU reference');
  t.equal(completed, RUNS_PER_SESSION * drivers.length, `${completed} inferences with readback in ${seconds.toFixed(1)} s`);
  t.equal(swapped, SWAPS, 'every hot-swapped session loaded, ran and disposed');
  t.ok(mainBlocks >= 10, `the main thread blocked ${mainBlocks} times meanwhile`);
  t.notOk(runtime.lost, 'the GPU runtime is still alive');

  await Promise.all(drivers.map((d) => d.session.dispose()));
  const stats = await runtime.stats();
  t.equal(stats.liveBufferBytes, 0, 'every buffer went back to the pool');
  t.equal(stats.completed, stats.submitted, 'nothing left in flight');
  t.ok(stats.buffersReused > stats.buffersCreated, 'staging buffers are reused, not created per run');
});
