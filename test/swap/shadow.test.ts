/**
 * Shadow runs through the real HTTP app: while a new version is on probation, live requests it answered are run
 * again on the previous version after the reply was sent, and their agreement is recorded as 'shadow' accuracy.
 * A slow previous version neither delays live requests nor piles up work (one shadow at a time, the rest dropped).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { build } from '../../daemon/serve/app.ts';
import type { ModelManager } from '../../daemon/swap/model-manager.ts';
import { resolveShadowOptions } from '../../daemon/swap/shadow.ts';
import { inferBody } from '../helpers/daemon-models.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { evalInputs, expected, input, scaleModel, SwapFixture, until } from './helpers/swap-fixtures.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-shadow-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));
const fixture = new SwapFixture(root);
/** Long enough that probation cannot end (or roll back) during a test. */
const PROBATION = { windowMs: 600_000, minRequests: 1_000_000 };

async function serve(t: Test, manager: ModelManager): Promise<FastifyInstance> {
  const app = await build({ registry: manager, metricsRegistry: new Registry() });
  t.teardown(() => app.close());
  return app;
}

/** One live request; resolves when the reply is complete (the shadow, if any, runs after it). */
async function live(app: FastifyInstance, batch = 1): Promise<{ version: string; y: number[]; ms: number }> {
  const x = input(batch);
  const started = performance.now();
  const response = await app.inject({ method: 'POST', url: '/v2/models/scale/infer', headers: { 'content-type': 'application/json' }, payload: inferBody('x', x.dims, Array.from(x.data)) });
  const ms = performance.now() - started;
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${response.body}`);
  const body = response.json() as { model_version: string; outputs: { data: number[] }[] };
  return { version: body.model_version, y: body.outputs[0].data, ms };
}

async function swapTo(t: Test, manager: ModelManager, modelsDir: string, version: string, model: Uint8Array, withEval = true): Promise<void> {
  await fs.rm(path.join(modelsDir, 'scale'), { recursive: true, force: true });
  await writePackage(path.join(modelsDir, 'scale'), { name: 'scale', version, model, ...(withEval ? { evalInputs } : {}) });
  t.equal((await manager.load('scale')).activeVersion, version, `version ${version} serves`);
}

t.test('fraction 1: every live request on probation is compared with the previous version; agreement per version pair', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager({ probation: PROBATION, shadow: { fraction: 1, requestsPerRecord: 4, recordIntervalMs: 60_000 } });
  t.teardown(() => manager.close());
  const app = await serve(t, manager);
  await swapTo(t, manager, modelsDir, '1', scaleModel(2));
  // No previous version loaded: nothing to shadow.
  await live(app);
  t.equal(manager.shadowStats().sampled, 0);

  // One request at a time, each waiting for its shadow run, so none is dropped.
  const sendSettled = async (count: number, version: string, batch = 1) => {
    for (let i = 0; i < count; i++) {
      const compared = manager.shadowStats().compared;
      const reply = await live(app, batch);
      t.equal(reply.version, version);
      await until(() => manager.shadowStats().compared === compared + 1, 'the shadow run to finish');
    }
  };
  const shadow = () => sink.accuracy.filter((a) => a.kind === 'shadow');

  // Identical weights (x·2 both): full agreement, compared with the package's eval metric (allclose, per element).
  await swapTo(t, manager, modelsDir, '2', scaleModel(2));
  await sendSettled(8, '2');
  t.same(shadow(), [
    { at: shadow()[0]?.at, model: 'scale', version: '2', kind: 'shadow', agreement: 1, samples: 16, baselineVersion: '1' },
    { at: shadow()[1]?.at, model: 'scale', version: '2', kind: 'shadow', agreement: 1, samples: 16, baselineVersion: '1' },
  ], 'one record per 4 requests of 4 elements each');

  // Different weights (x·-3 against x·2): only zero elements agree.
  await swapTo(t, manager, modelsDir, '3', scaleModel(-3));
  await sendSettled(3, '3', 2);
  t.equal(shadow().length, 2, 'a partial aggregate waits for more requests (or the interval)');
  await swapTo(t, manager, modelsDir, '4', scaleModel(-1), false);
  const v3 = shadow().filter((a) => a.version === '3');
  t.equal(v3.length, 1, 'the end of probation records the partial aggregate');
  const zeros = Array.from(input(2).data).filter((v) => v === 0).length;
  t.match(v3[0], { baselineVersion: '2', samples: 24, agreement: (3 * zeros) / 24 });
  t.ok(v3[0].agreement < 1);

  // No eval set: float outputs of rank 2 are compared by argmax; x·-1 and x·-3 pick the same index in every row.
  await sendSettled(4, '4');
  t.match(shadow().filter((a) => a.version === '4'), [{ baselineVersion: '3', agreement: 1, samples: 4 }]);

  const stats = manager.shadowStats();
  t.same({ sampled: stats.sampled, compared: stats.compared, dropped: stats.dropped, failed: stats.failed }, { sampled: 15, compared: 15, dropped: 0, failed: 0 });
});

t.test('fraction 0 disables shadow runs; a fraction outside [0, 1] is a configuration error', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager({ probation: PROBATION, shadow: { fraction: 0 } });
  t.teardown(() => manager.close());
  const app = await serve(t, manager);
  await swapTo(t, manager, modelsDir, '1', scaleModel(2));
  await swapTo(t, manager, modelsDir, '2', scaleModel(2));
  for (let i = 0; i < 5; i++) t.same((await live(app)).y, expected(2));
  t.equal(manager.get('scale')?.previousVersion, '1', 'still on probation');
  t.equal(manager.shadowStats().sampled, 0);
  t.same(sink.accuracy.filter((a) => a.kind === 'shadow'), []);
  t.throws(() => resolveShadowOptions({ fraction: 1.5 }), { code: 'EDGERUN_ERR_CONFIG', message: /telemetry\.shadowFraction must be within \[0, 1\], got 1\.5/ });
  t.throws(() => resolveShadowOptions({ maxConcurrent: 0 }), { code: 'EDGERUN_ERR_CONFIG', message: /maxConcurrent must be an integer >= 1/ });
});

/** x·k plus 0 × mean(A·A) for A an n×n matrix filled with mean(x): as x·k, but a large matrix product per run. */
function slowScaleModel(k: number, n: number): Uint8Array {
  return new ModelBuilder({ opset: 17 }).input('x', 'float32', ['batch', 4])
    .initializer('k', 'float32', [], [k]).initializer('zero', 'float32', [], [0]).initializer('square', 'int64', [2], [n, n])
    .node('ReduceMean', ['x'], ['m'], { keepdims: 0 })
    .node('Expand', ['m', 'square'], ['a'])
    .node('MatMul', ['a', 'a'], ['aa'])
    .node('ReduceMean', ['aa'], ['big'], { keepdims: 0 })
    .node('Mul', ['big', 'zero'], ['nothing'])
    .node('Mul', ['x', 'k'], ['scaled'])
    .node('Add', ['scaled', 'nothing'], ['y'])
    .output('y', 'float32', ['batch', 4]).toBytes();
}

t.test('a slow previous version: live requests do not wait for shadow runs; one runs at a time, the others are dropped', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager({ probation: PROBATION, shadow: { fraction: 1, requestsPerRecord: 1, recordIntervalMs: 60_000 } });
  t.teardown(() => manager.close());
  const app = await serve(t, manager);
  await swapTo(t, manager, modelsDir, '1', slowScaleModel(2, 1536));
  // How long the previous version takes per request, measured on its own.
  const lease = manager.acquire('scale');
  let slowMs = Infinity;
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    await lease.session.run(new Map([['x', input(1)]]));
    slowMs = Math.min(slowMs, performance.now() - started);
  }
  lease.release();
  await swapTo(t, manager, modelsDir, '2', scaleModel(2));

  const latencies: number[] = [];
  for (let i = 0; i < 20; i++) {
    const reply = await live(app);
    t.same([reply.version, reply.y], ['2', expected(2)]);
    latencies.push(reply.ms);
  }
  latencies.sort((a, b) => a - b);
  const median = latencies[latencies.length >> 1];
  t.ok(median < slowMs / 3, `median live latency ${median.toFixed(1)} ms is far below one shadow run (${slowMs.toFixed(1)} ms)`);
  const stats = manager.shadowStats();
  t.equal(stats.maxInFlight, 1, 'never more than one shadow run at a time');
  t.equal(stats.sampled, 20);
  t.ok(stats.dropped > 0, `${stats.dropped} samples dropped while a shadow ran`);
  await until(() => manager.shadowStats().inFlight === 0, 'the last shadow run');
  const done = manager.shadowStats();
  t.equal(done.compared + done.dropped + done.failed, 20);
  t.ok(done.compared >= 1);
  t.match(sink.accuracy.filter((a) => a.kind === 'shadow'), Array.from({ length: done.compared }, () => ({ version: '2', baselineVersion: '1', agreement: 1 })));
});
