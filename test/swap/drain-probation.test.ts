/**
 * Drain and probation: a replaced version finishes its leases before it is closed (or is closed at the drain
 * timeout), a version whose requests fail is rolled back to the previous one, a version that passes probation
 * frees its predecessor and becomes the store's active version.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { evalInputs, expected, infer, input, runOn, scaleModel, SwapFixture, until } from './helpers/swap-fixtures.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-drain-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));
const fixture = new SwapFixture(root);

t.test('drain: a replaced version finishes its in-flight requests before its session is closed', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager();
  t.teardown(() => manager.close());
  const folder = path.join(modelsDir, 'scale');
  await writePackage(folder, { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.load('scale');
  const held = manager.acquire('scale');
  await fs.rm(folder, { recursive: true });
  await writePackage(folder, { name: 'scale', version: '2', model: scaleModel(4), evalInputs });
  await manager.load('scale');
  t.equal(manager.acquire('scale').version, '2', 'new requests go to the new version at once');
  const old = manager.get('scale')!.versions.find((v) => v.version === '1')!;
  t.same([old.state, old.reason], ['UNAVAILABLE', 'replaced by version 2; draining 1 in-flight request(s)']);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.same(await runOn(held), expected(2), 'the held lease still runs on version 1 (its session is open)');
  await expectEdgerunError(t, () => manager.acquire('scale', '1'), 'EDGERUN_ERR_MODEL_NOT_READY', /version '1' is not ready: replaced by version 2; draining 1/);
  held.release({ ok: true, latencyMs: 1 });
  await until(() => manager.get('scale')!.versions.find((v) => v.version === '1')!.reason === 'replaced by version 2', 'the drain');
  await expectEdgerunError(t, runOn(held), 'EDGERUN_ERR_SESSION_CLOSED');
  t.notOk(sink.events.some((e) => e.kind === 'error'), 'no drain timeout');
});

t.test('a drain that outlasts the drain timeout closes the version anyway and records an error event', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager({ drainTimeoutMs: 150 });
  t.teardown(() => manager.close());
  const folder = path.join(modelsDir, 'scale');
  await writePackage(folder, { name: 'scale', version: '1', model: scaleModel(2) });
  await manager.load('scale');
  const stuck = manager.acquire('scale');
  await fs.rm(folder, { recursive: true });
  await writePackage(folder, { name: 'scale', version: '2', model: scaleModel(4) });
  await manager.load('scale');
  await until(() => sink.events.some((e) => e.kind === 'error'), 'the drain timeout');
  t.match(sink.events.find((e) => e.kind === 'error')?.details?.reason, /draining version 1 timed out after 150 ms with 1 request\(s\) in flight/);
  stuck.release();
  t.equal(manager.acquire('scale').version, '2');
});

t.test('probation: a version whose requests fail is rolled back to the previous one, which stayed loaded', async (t) => {
  const stateDir = fixture.freshDir('state');
  const store = await ModelStore.open(stateDir);
  const { manager, sink } = await fixture.manager({ store, probation: { windowMs: 60_000, minRequests: 10, maxErrorRate: 0.2, maxLatencyRatio: 1000 } });
  t.teardown(() => manager.close());
  await store.install(await fixture.packageDir('scale', '1', scaleModel(2)));
  await store.activate('scale', '1');
  await manager.start();
  for (let i = 0; i < 5; i++) await infer(manager, 'scale', 2);
  // Version 2 only runs batches of 1: its eval set (batch 1) passes the gate, live batches of 2 fail.
  await store.install(await fixture.packageDir('scale', '2', scaleModel(2, { fixedBatch: true }), { evalInputs: [{ x: input(1, 3) }] }));
  const info = await manager.deployVersion('scale', '2');
  t.same([info.activeVersion, info.previousVersion], ['2', '1'], 'switched; version 1 stays loaded during probation');
  t.equal(await store.activeVersion('scale'), '1', 'the store pointer moves only once the new version is confirmed');
  t.same((await infer(manager, 'scale', 1, '1')).y, expected(2), 'the previous version can be leased by its version (shadow runs)');

  const outcomes = { ok: 0, failed: 0, servedBy: new Set<string>() };
  while (manager.get('scale')!.activeVersion === '2') {
    try {
      const result = await infer(manager, 'scale', 2);
      outcomes.ok++;
      outcomes.servedBy.add(result.version);
    } catch {
      outcomes.failed++;
    }
    if (outcomes.failed > 50) break;
  }
  t.equal(outcomes.failed, 10, 'rolled back as soon as minRequests outcomes showed the error rate');
  const after = manager.get('scale')!;
  t.same([after.activeVersion, after.previousVersion], ['1', undefined]);
  t.same((await infer(manager, 'scale', 2)), { version: '1', y: expected(2, 2) }, 'version 1 serves again');
  await until(() => manager.get('scale')!.versions.find((v) => v.version === '2')?.reason?.endsWith('requests) exceeds 0.2') === true, 'the drain of version 2');
  const failed = manager.get('scale')!.versions.find((v) => v.version === '2')!;
  t.same(failed.state, 'FAILED');
  t.match(failed.reason, /^rolled back during probation: error rate 1\.000 \(10 of 10 requests\) exceeds 0\.2$/);
  t.match(sink.events.find((e) => e.kind === 'rollback'), { model: 'scale', version: '1', details: { from: '2', to: '1' } });
  t.equal(await store.activeVersion('scale'), '1');
});

t.test('probation that passes frees the previous version and moves the store pointer', async (t) => {
  const stateDir = fixture.freshDir('state');
  const store = await ModelStore.open(stateDir);
  const { manager, sink } = await fixture.manager({ store, probation: { windowMs: 300, minRequests: 3, maxErrorRate: 0.5, maxLatencyRatio: 50 } });
  t.teardown(() => manager.close());
  await store.install(await fixture.packageDir('scale', '1', scaleModel(2)));
  await manager.start();
  t.equal(await store.activeVersion('scale'), '1', 'a first version (nothing to roll back to) is activated at once');
  await store.install(await fixture.packageDir('scale', '2', scaleModel(4)));
  await manager.deployVersion('scale', '2');
  for (let i = 0; i < 5; i++) t.same(await infer(manager, 'scale'), { version: '2', y: expected(4) });
  await until(() => sink.events.some((e) => e.kind === 'probation_passed'), 'probation');
  t.match(sink.events.find((e) => e.kind === 'probation_passed'), { version: '2', details: { requests: 5, errors: 0, previous: '1' } });
  await until(() => manager.get('scale')!.previousVersion === undefined && manager.get('scale')!.versions.find((v) => v.version === '1')?.state === 'UNAVAILABLE', 'the previous version to be freed');
  await until(async () => (await store.activeVersion('scale')) === '2', 'the confirmed version to become the store\'s active version');
  t.same((await store.get('scale'))?.history, ['1']);
});

t.test('probation: a version whose median latency exceeds maxLatencyRatio × the previous one is rolled back at the end of the window', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager({ probation: { windowMs: 400, minRequests: 5, maxErrorRate: 0.5, maxLatencyRatio: 2 } });
  t.teardown(() => manager.close());
  const folder = path.join(modelsDir, 'scale');
  await writePackage(folder, { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.load('scale');
  // Latencies as the serving layer reports them: version 1 answers in 4 ms, version 2 in 20 ms.
  for (let i = 0; i < 5; i++) manager.acquire('scale').release({ ok: true, latencyMs: 4 });
  await fs.rm(folder, { recursive: true });
  await writePackage(folder, { name: 'scale', version: '2', model: scaleModel(4), evalInputs });
  await manager.load('scale');
  for (let i = 0; i < 5; i++) {
    const lease = manager.acquire('scale');
    t.equal(lease.version, '2');
    lease.release({ ok: true, latencyMs: 20 });
  }
  t.equal(manager.get('scale')!.activeVersion, '2', 'latency is judged at the end of the window, not on the first slow request');
  await until(() => sink.events.some((e) => e.kind === 'rollback'), 'the end of the probation window');
  t.equal(manager.get('scale')!.activeVersion, '1');
  t.match(sink.events.find((e) => e.kind === 'rollback')?.details,
    { from: '2', to: '1', reason: 'median latency 20.00 ms exceeds 2 × the previous version\'s 4.00 ms' });
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
});
