/**
 * The hot-swap manager on the onnxruntime CPU engine: load, warm, gate, switch, drain, probation and rollback,
 * and every failure leaving the old version serving.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { ModelManager, type ModelManagerOptions } from '../../daemon/swap/model-manager.ts';
import type { Lease } from '../../daemon/swap/registry.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../../daemon/telemetry/sink.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

/** Keeps what the manager reports, for the assertions. */
class RecordingSink implements TelemetrySink {
  readonly events: LifecycleEvent[] = [];
  readonly accuracy: AccuracyRecord[] = [];
  recordRequest(_record: RequestRecord): void {}
  recordEvent(event: LifecycleEvent): void { this.events.push(event); }
  recordAccuracy(record: AccuracyRecord): void { this.accuracy.push(record); }
  kinds(model: string): string[] { return this.events.filter((e) => e.model === model).map((e) => `${e.kind}:${e.version ?? ''}`); }
}

/** y = x · k for x float32 [batch, 4]; with `fixedBatch` a Reshape to [1, 4] first, so batches of 2 fail at run time. */
function scaleModel(k: number, options: { fixedBatch?: boolean; op?: string } = {}): Uint8Array {
  const builder = new ModelBuilder({ opset: 17 }).input('x', 'float32', ['batch', 4]).initializer('k', 'float32', [], [k]);
  if (options.fixedBatch) {
    builder.initializer('shape', 'int64', [2], [1, 4]).node('Reshape', ['x', 'shape'], ['r']).node('Mul', ['r', 'k'], ['y']);
  } else {
    builder.node(options.op ?? 'Mul', ['x', 'k'], ['y']);
  }
  return builder.output('y', 'float32', ['batch', 4]).toBytes();
}

const input = (batch: number, seed = 1): Tensor => ({
  dtype: 'float32', dims: [batch, 4], data: Float32Array.from({ length: batch * 4 }, (_, i) => ((i * 7 + seed) % 11) - 5),
});
const evalInputs = [{ x: input(1, 3) }, { x: input(3, 5) }];

let counter = 0;
async function packageDir(name: string, version: string, model: Uint8Array, extra: Partial<Parameters<typeof writePackage>[1]> = {}): Promise<string> {
  const dir = path.join(root, 'sources', `${name}-${version}-${counter++}`);
  await writePackage(dir, { name, version, model, evalInputs, ...extra });
  return dir;
}

async function managerWith(options: Partial<ModelManagerOptions> & { modelsDir?: string } = {}): Promise<{ manager: ModelManager; sink: RecordingSink; modelsDir: string }> {
  const sink = new RecordingSink();
  const modelsDir = options.modelsDir ?? path.join(root, `models-${counter++}`);
  await fs.mkdir(modelsDir, { recursive: true });
  const manager = new ModelManager({
    engine: () => OrtCpuEngine.create({ intraOpNumThreads: 1 }),
    telemetry: sink,
    modelsDir,
    warmupRuns: 1,
    probation: { windowMs: 0 },
    drainTimeoutMs: 10_000,
    ...options,
  });
  return { manager, sink, modelsDir };
}

async function runOn(lease: Lease, batch = 1): Promise<number[]> {
  const { outputs } = await lease.session.run(new Map([['x', input(batch)]]));
  return Array.from(outputs.get('y')!.data);
}

/** Acquires, runs, releases; returns the version that served and its output. */
async function infer(manager: ModelManager, name: string, batch = 1, version?: string): Promise<{ version: string; y: number[] }> {
  const lease = manager.acquire(name, version);
  const started = performance.now();
  try {
    const y = await runOn(lease, batch);
    lease.release({ ok: true, latencyMs: performance.now() - started });
    return { version: lease.version, y };
  } catch (error) {
    lease.release({ ok: false, latencyMs: performance.now() - started });
    throw error;
  }
}

const expected = (k: number, batch = 1): number[] => Array.from(input(batch).data, (v) => Math.fround(v * k));

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

t.test('start serves every package and bare model of the models folder; the gate result is recorded', async (t) => {
  const { manager, sink, modelsDir } = await managerWith();
  t.teardown(() => manager.close());
  await writePackage(path.join(modelsDir, 'scale-pkg'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await fs.writeFile(path.join(modelsDir, 'plain.onnx'), scaleModel(3));
  await manager.start();
  t.same(manager.list().map((m) => [m.name, m.activeVersion]), [['plain', '0'], ['scale', '1']]);
  const scale = manager.get('scale')!;
  t.same(scale.versions.map((v) => [v.version, v.state, v.engine]), [['1', 'READY', 'onnxruntime-cpu']]);
  t.same(scale.versions[0].inputs, [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }]);
  t.match(scale.versions[0].gate, { status: 'passed', agreement: 1, threshold: 0.99, compared: 16 });
  t.match(manager.get('plain')!.versions[0].gate, { status: 'skipped', reason: 'a bare model has no eval set' });
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  t.same(await infer(manager, 'plain', 2), { version: '0', y: expected(3, 2) });
  t.same(sink.kinds('scale'), ['load:1', 'gate_passed:1', 'swap:1']);
  t.match(sink.events.find((e) => e.model === 'plain' && e.kind === 'gate_passed')?.details, { skipped: true, status: 'skipped' });
  t.match(sink.accuracy, [{ model: 'scale', version: '1', kind: 'gate', agreement: 1, samples: 16 }]);
  await expectEdgerunError(t, () => manager.acquire('nope'), 'EDGERUN_ERR_MODEL_NOT_FOUND', /no model 'nope'/);
  await expectEdgerunError(t, () => manager.acquire('scale', '7'), 'EDGERUN_ERR_MODEL_NOT_FOUND', /model 'scale' has no version '7' \(known: 1\)/);
  await expectEdgerunError(t, manager.load('nope'), 'EDGERUN_ERR_MODEL_NOT_FOUND', /neither in the model store nor in the models folder/);
});

t.test('a new version in the folder is swapped in by load(); a failed gate keeps the old version serving', async (t) => {
  const { manager, sink, modelsDir } = await managerWith();
  t.teardown(() => manager.close());
  await writePackage(path.join(modelsDir, 'scale'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.load('scale');
  await fs.rm(path.join(modelsDir, 'scale'), { recursive: true });
  // Version 2 computes x·4 but its reference outputs claim x·5: the gate must catch it.
  const wrong = await Promise.all(evalInputs.map(async (feeds) => ({ y: { ...feeds.x, data: Float32Array.from(feeds.x.data, (v) => v * 5) } })));
  await writePackage(path.join(modelsDir, 'scale'), { name: 'scale', version: '2', model: scaleModel(4), evalInputs, referenceOutputs: wrong });
  const info = await manager.load('scale');
  t.equal(info.activeVersion, '1', 'the old version keeps serving');
  const failed = info.versions.find((v) => v.version === '2')!;
  t.equal(failed.state, 'FAILED');
  t.match(failed.reason, /accuracy gate failed: agreement 0\.\d+ < threshold 0\.99/);
  t.match(failed.gate, { status: 'failed', threshold: 0.99 });
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  t.match(sink.events.filter((e) => e.kind === 'gate_failed'), [{ model: 'scale', version: '2', details: { reason: /accuracy gate failed/ } }]);
  t.ok(sink.accuracy.some((a) => a.version === '2' && a.agreement < 0.99), 'the failed gate agreement is recorded');

  const overridden = await managerWith({ modelsDir, gate: { threshold: 0 } });
  t.teardown(() => overridden.manager.close());
  t.equal((await overridden.manager.load('scale')).activeVersion, '2', 'a gate threshold override of 0 lets it through');
  await expectEdgerunError(t, async () => new ModelManager({ engine: () => OrtCpuEngine.create(), telemetry: sink, gate: { threshold: 2 } }),
    'EDGERUN_ERR_CONFIG', /swap\.gate\.threshold must be within \[0, 1\]/);
});

t.test('a model file the engine cannot load, one that fails warm-up, and an invalid package all keep the old version', async (t) => {
  const { manager, sink, modelsDir } = await managerWith();
  t.teardown(() => manager.close());
  const folder = path.join(modelsDir, 'scale');
  await writePackage(folder, { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.load('scale');

  const attempts: [string, () => Promise<unknown>, RegExp][] = [
    ['2', () => writePackage(folder, { name: 'scale', version: '2', model: scaleModel(2, { op: 'NoSuchOp' }) }), /^load failed: /],
    ['3', () => writePackage(folder, {
      name: 'scale', version: '3',
      // A Gather whose eval input indexes out of bounds: compiling (a run on zeros) works, the warm-up on the eval input fails.
      model: new ModelBuilder({ opset: 17 }).input('i', 'int64', [1]).initializer('table', 'float32', [3], [1, 2, 3])
        .node('Gather', ['table', 'i'], ['y']).output('y', 'float32', [1]).toBytes(),
      evalInputs: [{ i: { dtype: 'int64', dims: [1], data: Int32Array.from([5]) } }],
      referenceOutputs: [{ y: { dtype: 'float32', dims: [1], data: Float32Array.from([0]) } }],
    }), /^warm-up failed: /],
    ['4', async () => {
      await writePackage(folder, { name: 'scale', version: '4', model: scaleModel(2), evalInputs });
      await fs.appendFile(path.join(folder, 'model.onnx'), 'x');
    }, /^invalid package: .*model\.onnx is \d+ bytes but the manifest says/],
  ];
  for (const [version, write, pattern] of attempts) {
    await fs.rm(folder, { recursive: true });
    await write();
    const info = await manager.load('scale');
    t.equal(info.activeVersion, '1', `version ${version} was not swapped in`);
    const failed = info.versions.find((v) => v.version === version)!;
    t.equal(failed?.state, 'FAILED');
    t.match(failed?.reason, pattern);
    t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  }
  t.same(sink.events.filter((e) => e.kind === 'load_failed').map((e) => [e.version, e.details?.stage]), [['2', 'load'], ['3', 'warmup'], ['4', 'read']]);
  t.same(manager.get('scale')!.versions.map((v) => [v.version, v.state]), [['1', 'READY'], ['2', 'FAILED'], ['3', 'FAILED'], ['4', 'FAILED']]);
});

t.test('drain: a replaced version finishes its in-flight requests before its session is closed', async (t) => {
  const { manager, sink, modelsDir } = await managerWith();
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
  const { manager, sink, modelsDir } = await managerWith({ drainTimeoutMs: 150 });
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
  const stateDir = path.join(root, `state-${counter++}`);
  const store = await ModelStore.open(stateDir);
  const { manager, sink } = await managerWith({ store, probation: { windowMs: 60_000, minRequests: 10, maxErrorRate: 0.2, maxLatencyRatio: 1000 } });
  t.teardown(() => manager.close());
  await store.install(await packageDir('scale', '1', scaleModel(2)));
  await store.activate('scale', '1');
  await manager.start();
  for (let i = 0; i < 5; i++) await infer(manager, 'scale', 2);
  // Version 2 only runs batches of 1: its eval set (batch 1) passes the gate, live batches of 2 fail.
  await store.install(await packageDir('scale', '2', scaleModel(2, { fixedBatch: true }), { evalInputs: [{ x: input(1, 3) }] }));
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
  const stateDir = path.join(root, `state-${counter++}`);
  const store = await ModelStore.open(stateDir);
  const { manager, sink } = await managerWith({ store, probation: { windowMs: 300, minRequests: 3, maxErrorRate: 0.5, maxLatencyRatio: 50 } });
  t.teardown(() => manager.close());
  await store.install(await packageDir('scale', '1', scaleModel(2)));
  await manager.start();
  t.equal(await store.activeVersion('scale'), '1', 'a first version (nothing to roll back to) is activated at once');
  await store.install(await packageDir('scale', '2', scaleModel(4)));
  await manager.deployVersion('scale', '2');
  for (let i = 0; i < 5; i++) t.same(await infer(manager, 'scale'), { version: '2', y: expected(4) });
  await until(() => sink.events.some((e) => e.kind === 'probation_passed'), 'probation');
  t.match(sink.events.find((e) => e.kind === 'probation_passed'), { version: '2', details: { requests: 5, errors: 0, previous: '1' } });
  await until(() => manager.get('scale')!.previousVersion === undefined && manager.get('scale')!.versions.find((v) => v.version === '1')?.state === 'UNAVAILABLE', 'the previous version to be freed');
  await until(async () => (await store.activeVersion('scale')) === '2', 'the confirmed version to become the store\'s active version');
  t.same((await store.get('scale'))?.history, ['1']);
});

t.test('a package dropped into the folder is installed into the store before it is swapped in', async (t) => {
  const stateDir = path.join(root, `state-${counter++}`);
  const store = await ModelStore.open(stateDir);
  const { manager, sink, modelsDir } = await managerWith({ store });
  t.teardown(() => manager.close());
  await writePackage(path.join(modelsDir, 'scale-v1'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.start();
  t.equal(await store.activeVersion('scale'), '1');
  await writePackage(path.join(modelsDir, 'scale-v2'), { name: 'scale', version: '2', model: scaleModel(4), evalInputs });
  t.equal((await manager.load('scale')).activeVersion, '2');
  t.equal(await store.activeVersion('scale'), '2');
  t.match(sink.events.filter((e) => e.kind === 'install').map((e) => e.version), ['1', '2']);
  const lease = manager.acquire('scale');
  t.ok(lease.session instanceof Object && (lease.session as { modelPath?: string }).modelPath?.startsWith(store.root), 'served from the store, not the folder');
  lease.release();
  t.equal((await manager.load('scale')).activeVersion, '2', 'loading again without changes is a no-op');
  t.equal(sink.events.filter((e) => e.kind === 'swap').length, 2);
});

t.test('unload drains in-flight requests, then acquire fails until load serves the model again', async (t) => {
  const { manager, sink, modelsDir } = await managerWith();
  t.teardown(() => manager.close());
  await writePackage(path.join(modelsDir, 'scale'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await manager.load('scale');
  const held = manager.acquire('scale');
  let unloaded = false;
  const unloading = manager.unload('scale').then(() => { unloaded = true; });
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.notOk(unloaded, 'unload waits for the in-flight request');
  await expectEdgerunError(t, () => manager.acquire('scale'), 'EDGERUN_ERR_MODEL_NOT_READY', /model 'scale' is not ready: it was unloaded/);
  t.same(await runOn(held), expected(2));
  held.release({ ok: true, latencyMs: 1 });
  await unloading;
  t.same(manager.get('scale')!.versions.map((v) => [v.version, v.state, v.reason]), [['1', 'UNAVAILABLE', 'unloaded']]);
  t.equal(manager.get('scale')!.activeVersion, undefined);
  await expectEdgerunError(t, runOn(held), 'EDGERUN_ERR_SESSION_CLOSED');
  const info = await manager.load('scale');
  t.same([info.activeVersion, info.versions[0].state], ['1', 'READY']);
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  t.same(sink.kinds('scale'), ['load:1', 'gate_passed:1', 'swap:1', 'unload:1', 'load:1', 'gate_passed:1', 'swap:1']);
  await expectEdgerunError(t, manager.unload('nope'), 'EDGERUN_ERR_MODEL_NOT_FOUND', /no model 'nope'/);
});
