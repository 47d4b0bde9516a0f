/**
 * The hot-swap manager on the onnxruntime CPU engine: serving the models folder, the accuracy gate, every
 * failure (load, warm-up, invalid package, gate) leaving the old version serving, the store as a source,
 * unload and load through the repository calls.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { ModelManager } from '../../daemon/swap/model-manager.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { evalInputs, expected, infer, runOn, scaleModel, SwapFixture } from './helpers/swap-fixtures.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));
const fixture = new SwapFixture(root);

t.test('start serves every package and bare model of the models folder; the gate result is recorded', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager();
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
  const { manager, sink, modelsDir } = await fixture.manager();
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

  const overridden = await fixture.manager({ modelsDir, gate: { threshold: 0 } });
  t.teardown(() => overridden.manager.close());
  t.equal((await overridden.manager.load('scale')).activeVersion, '2', 'a gate threshold override of 0 lets it through');
  const ungated = await fixture.manager({ modelsDir, gate: { enabled: false } });
  t.teardown(() => ungated.manager.close());
  const info2 = await ungated.manager.load('scale');
  t.same([info2.activeVersion, info2.versions[0].gate], ['2', { status: 'skipped', reason: 'the accuracy gate is disabled' }]);
  t.match(ungated.sink.events.find((e) => e.kind === 'gate_passed')?.details, { skipped: true });
  await expectEdgerunError(t, async () => new ModelManager({ engine: () => OrtCpuEngine.create(), telemetry: sink, gate: { threshold: 2 } }),
    'EDGERUN_ERR_CONFIG', /swap\.gate\.threshold must be within \[0, 1\]/);
});

t.test('a model file the engine cannot load, one that fails warm-up, and an invalid package all keep the old version', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager();
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

t.test('a package dropped into the folder is installed into the store before it is swapped in', async (t) => {
  const stateDir = fixture.freshDir('state');
  const store = await ModelStore.open(stateDir);
  const { manager, sink, modelsDir } = await fixture.manager({ store });
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
  const { manager, sink, modelsDir } = await fixture.manager();
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
