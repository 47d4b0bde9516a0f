/**
 * A restart must not take a model offline because its newest version is bad: when the version the sources locate
 * (a newer package in the models folder, or the store's active version) fails its gate or its load, the manager
 * falls back to the store's active version, then to the versions active before it, and records the failure.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { writePackage } from '../helpers/package-builder.ts';
import { evalInputs, expected, infer, scaleModel, SwapFixture } from './helpers/swap-fixtures.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-fallback-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));
const fixture = new SwapFixture(root);

/** Reference outputs claiming x·k: a package whose model computes anything else fails its gate. */
function claims(k: number) {
  return evalInputs.map((feeds) => ({ y: { ...feeds.x, data: Float32Array.from(feeds.x.data, (v) => v * k) } }));
}

t.test('start: a newer folder package that fails its gate falls back to the store\'s active version', async (t) => {
  const store = await ModelStore.open(fixture.freshDir('state'));
  const first = await fixture.manager({ store });
  await writePackage(path.join(first.modelsDir, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await first.manager.start();
  await first.manager.close();
  t.equal(await store.activeVersion('scale'), '1');

  // Version 2 computes x·4 but its reference outputs claim x·5.
  await writePackage(path.join(first.modelsDir, 'scale-2'), { name: 'scale', version: '2', model: scaleModel(4), evalInputs, referenceOutputs: claims(5) });
  const { manager, sink } = await fixture.manager({ store, modelsDir: first.modelsDir });
  t.teardown(() => manager.close());
  await manager.start();
  const info = manager.get('scale')!;
  t.equal(info.activeVersion, '1', 'the last good version serves');
  t.same(info.versions.map((v) => [v.version, v.state]), [['1', 'READY'], ['2', 'FAILED']]);
  t.match(info.versions[1].reason, /^accuracy gate failed: agreement/);
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  t.same(sink.kinds('scale'), ['install:2', 'load:2', 'gate_failed:2', 'load:1', 'gate_passed:1', 'swap:1']);
  t.match(sink.events.find((e) => e.kind === 'swap')?.details, { fallbackFrom: '2', fallbackReason: /accuracy gate failed/ });
  t.equal(await store.activeVersion('scale'), '1', 'the store still names the last good version');
});

t.test('start: a store active version that cannot be read falls back to the version active before it', async (t) => {
  const store = await ModelStore.open(fixture.freshDir('state'));
  const first = await fixture.manager({ store });
  await writePackage(path.join(first.modelsDir, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(2), evalInputs });
  await first.manager.start();
  await writePackage(path.join(first.modelsDir, 'scale-2'), { name: 'scale', version: '2', model: scaleModel(4), evalInputs });
  t.equal((await first.manager.load('scale')).activeVersion, '2');
  await first.manager.close();
  t.equal(await store.activeVersion('scale'), '2');
  // The installed model file of version 2 no longer matches its manifest hash.
  await fs.appendFile((await store.readPackage('scale', '2')).modelPath, 'x');

  const { manager, sink } = await fixture.manager({ store, modelsDir: fixture.freshDir('models') });
  t.teardown(() => manager.close());
  await manager.start();
  const info = manager.get('scale')!;
  t.equal(info.activeVersion, '1');
  t.same(info.versions.map((v) => [v.version, v.state]), [['1', 'READY'], ['2', 'FAILED']]);
  t.match(info.versions[1].reason, /^invalid package: /);
  t.same(await infer(manager, 'scale'), { version: '1', y: expected(2) });
  t.same(sink.kinds('scale'), ['load_failed:2', 'load:1', 'gate_passed:1', 'swap:1']);
  t.match(sink.events.find((e) => e.kind === 'swap')?.details, { fallbackFrom: '2', fallbackReason: /invalid package/ });
});

t.test('with nothing to fall back to the failure is recorded and the model is not served', async (t) => {
  const { manager, sink, modelsDir } = await fixture.manager();
  t.teardown(() => manager.close());
  await writePackage(path.join(modelsDir, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(4), evalInputs, referenceOutputs: claims(5) });
  await manager.start();
  const info = manager.get('scale')!;
  t.equal(info.activeVersion, undefined);
  t.same(info.versions.map((v) => [v.version, v.state]), [['1', 'FAILED']]);
  t.same(sink.kinds('scale'), ['load:1', 'gate_failed:1']);
  t.throws(() => manager.acquire('scale'), { code: 'EDGERUN_ERR_MODEL_NOT_READY', message: /accuracy gate failed/ });
});
