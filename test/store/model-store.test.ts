/** The model store: atomic install, active pointer, rollback, retention, recovery from what a crash leaves, locking. */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readPackage } from '../../daemon/package/read-package.ts';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { rewriteManifest, writePackage } from '../helpers/package-builder.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-store-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

/** y = x + w with a weight that differs per version, and a weight shared by all versions (deduplicated). */
function model(version: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [1, 64])
    .initializer('w', 'float32', [1, 64], Array.from({ length: 64 }, (_, i) => i * version))
    .node('Add', ['x', 'w'], ['y'])
    .output('y', 'float32', [1, 64])
    .toBytes();
}

const shared = new Uint8Array(4096).fill(7);
let counter = 0;
async function source(name: string, version: string, options: { eval?: boolean } = {}): Promise<string> {
  const dir = path.join(root, 'sources', `${name}-${version}-${counter++}`);
  await writePackage(dir, {
    name, version, model: model(Number(version.split('.')[0])),
    evalInputs: options.eval === false ? undefined : [{ x: { dtype: 'float32', dims: [1, 64], data: new Float32Array(64).fill(1) } }],
    extraFiles: { 'labels.txt': shared },
  });
  return dir;
}

async function freshStore(options = {}): Promise<{ store: ModelStore; stateDir: string }> {
  const stateDir = path.join(root, `state-${counter++}`);
  return { store: await ModelStore.open(stateDir, options), stateDir };
}

t.test('install assembles the package from content-addressed objects and does not activate it', async (t) => {
  const { store, stateDir } = await freshStore();
  t.equal(store.root, path.join(stateDir, 'store'));
  const result = await store.install(await source('net', '1'));
  t.ok(result.installed);
  t.same([result.version.name, result.version.version], ['net', '1']);
  const dir = store.layout.versionDir('net', '1');
  t.equal(result.version.dir, dir);
  const pkg = await readPackage(dir);
  t.equal(pkg.version, '1');
  for (const file of pkg.manifest!.files) {
    const [object, placed] = await Promise.all([fs.stat(store.layout.object(file.sha256)), fs.stat(path.join(dir, file.path))]);
    t.equal(placed.ino, object.ino, `${file.path} is a hard link to objects/${file.sha256.slice(0, 8)}…`);
  }
  t.same(await fs.readdir(store.layout.tmp), [], 'nothing left in tmp/');
  const model1 = await store.get('net');
  t.equal(model1?.active, undefined, 'installed, not active');
  t.same(model1?.versions.map((v) => v.version), ['1']);

  const again = await store.install(path.join(root, 'sources', (await fs.readdir(path.join(root, 'sources'))).find((d) => d.startsWith('net-1-'))!));
  t.notOk(again.installed, 'the same package again is a no-op');
  t.equal(again.version.manifestSha256, result.version.manifestSha256);
  const other = await source('net', '1.0');
  await rewriteManifest(other, (m) => { m.recipe = { changed: true }; });
  await expectEdgerunError(t, store.install(other), 'EDGERUN_ERR_STORE', /net version 1\.0 is already installed \(as 1\) with different contents/);

  await store.install(await source('net', '2'));
  const objects = await fs.readdir(store.layout.objects);
  t.equal(objects.filter((o) => o === (pkg.manifest!.files.find((f) => f.path === 'labels.txt')!.sha256)).length, 1,
    'a file shared by two versions is stored once');
});

t.test('an invalid package is refused and leaves nothing behind', async (t) => {
  const { store } = await freshStore();
  const dir = await source('net', '1');
  await fs.appendFile(path.join(dir, 'labels.txt'), 'tampered');
  await expectEdgerunError(t, store.install(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /labels\.txt is 4104 bytes but the manifest says 4096/);
  t.same(await fs.readdir(store.layout.tmp), []);
  t.same(await fs.readdir(store.layout.packages), []);
  t.same(await fs.readdir(store.layout.objects), []);
});

t.test('activate keeps the active version and the two most recent previous ones; rollback goes back and rejects', async (t) => {
  const { store } = await freshStore();
  for (const version of ['1', '2', '3']) {
    await store.install(await source('net', version));
    await store.activate('net', version);
  }
  let model = await store.get('net');
  t.same([model?.active, model?.history], ['3', ['2', '1']]);
  await store.install(await source('net', '4'));
  const pointer = await store.activate('net', '4.0');
  t.same([pointer.version, pointer.history], ['4', ['3', '2']], "'4.0' names the installed '4'");
  model = await store.get('net');
  t.same(model?.versions.map((v) => v.version), ['4', '3', '2'], 'version 1 was collected');
  const v1Only = (await readPackage(await source('net', '1'))).manifest!.files.find((f) => f.path === 'model.onnx')!.sha256;
  await t.rejects(fs.stat(store.layout.object(v1Only)), { code: 'ENOENT' }, 'objects only version 1 used are gone');

  const back = await store.rollback('net');
  t.same([back.version, back.history, back.rejected], ['3', ['2'], ['4']]);
  t.same((await store.get('net'))?.versions.map((v) => v.version), ['4', '3', '2'], 'the rejected newer version stays (pending)');
  const explicit = await store.rollback('net', '2');
  t.same([explicit.version, explicit.history, explicit.rejected], ['2', [], ['3', '4']]);
  await expectEdgerunError(t, store.rollback('net'), 'EDGERUN_ERR_STORE', /net has no previous version installed to roll back to/);
  await expectEdgerunError(t, store.rollback('other'), 'EDGERUN_ERR_STORE', /other has no active version to roll back from/);
  await expectEdgerunError(t, store.activate('net', '9'), 'EDGERUN_ERR_MODEL_NOT_FOUND', /model net version 9 is not installed/);
  const reactivated = await store.activate('net', '4');
  t.same([reactivated.version, reactivated.rejected], ['4', ['3']], 'activating a rejected version clears it');
});

t.test('pending versions above the active one are capped; an older version just installed survives until the next collection', async (t) => {
  const { store } = await freshStore({ keepPrevious: 1, keepPending: 2 });
  await store.install(await source('net', '5'));
  await store.activate('net', '5');
  for (const version of ['6', '7', '8']) await store.install(await source('net', version, { eval: false }));
  t.same((await store.get('net'))?.versions.map((v) => v.version), ['8', '7', '5']);
  await store.install(await source('net', '1'));
  t.same((await store.get('net'))?.versions.map((v) => v.version), ['8', '7', '5', '1']);
  await store.activate('net', '1');
  t.same((await store.get('net'))?.versions.map((v) => v.version), ['8', '7', '5', '1'], 'active 1, previous 5, pending 8 and 7');
  await store.activate('net', '7');
  t.same((await store.get('net'))?.versions.map((v) => v.version), ['8', '7', '1'], 'keepPrevious 1');
  await t.rejects(ModelStore.open(path.join(root, 'bad-options'), { keepPrevious: -1 }), { code: 'EDGERUN_ERR_STORE', message: /keepPrevious must be a non-negative integer/ });
});

t.test('recovery removes temp leftovers and broken packages, and repairs pointers', async (t) => {
  const { store, stateDir } = await freshStore();
  for (const version of ['1', '2', '3']) {
    await store.install(await source('net', version));
    await store.activate('net', version);
  }
  await store.install(await source('other', '1'));
  await store.activate('other', '1');
  const { layout } = store;
  // What crashes leave: a half-assembled install, a half-copied object, a pointer temp, a dead writer's lock.
  await fs.mkdir(path.join(layout.tmp, 'install-net-abc/eval'), { recursive: true });
  await fs.writeFile(path.join(layout.tmp, 'object-123'), 'partial');
  await fs.writeFile(path.join(layout.active, '.net.1234.tmp'), '{"form');
  await fs.writeFile(layout.lock, '999999999 - deadbeef');
  await fs.writeFile(`${layout.lock}.999999999.0123ab.tmp`, '999999999 - 0123ab');
  // Bit rot in the active version of net, and a pointer to a version that no longer exists for other.
  const weights = path.join(layout.versionDir('net', '3'), 'model.onnx');
  const bytes = await fs.readFile(weights);
  bytes[bytes.length - 3] ^= 0xff;
  await fs.chmod(weights, 0o644);
  await fs.writeFile(weights, bytes);
  await fs.writeFile(layout.pointer('other'), JSON.stringify({ format: 'edgerun-active/1', version: '7', history: [], rejected: [], updatedAt: 'x' }));
  await fs.mkdir(path.join(layout.packages, 'net', 'not-a-version'));
  await fs.writeFile(path.join(layout.active, 'ghost'), 'not json');

  const reopened = await ModelStore.open(stateDir);
  const report = reopened.lastRecovery!;
  t.equal(report.removedTemps, 4, 'temp install, temp object, pointer temp, a dead writer\'s lock temp');
  t.same(report.removedPackages.map((p) => [p.name, p.version]).sort(), [['net', '3'], ['net', 'not-a-version']]);
  t.match(report.removedPackages.find((p) => p.version === '3')!.reason, /model\.onnx has sha256 .* but the manifest says/);
  t.same(report.repairedPointers.map((p) => [p.name, p.from, p.to]).sort(),
    [['ghost', undefined, undefined], ['net', '3', '2'], ['other', '7', '1']]);
  const net = await reopened.get('net');
  t.same([net?.active, net?.history, net?.versions.map((v) => v.version)], ['2', ['1'], ['2', '1']]);
  t.equal((await reopened.get('other'))?.active, '1');
  t.same(await fs.readdir(layout.tmp), []);
  t.same((await fs.readdir(layout.active)).sort(), ['net', 'other']);
  await reopened.install(await source('net', '4'));
  t.pass('the stale lock of a dead process did not block a writer');
});

t.test('recovery never falls back to a version rolled back from while another good version exists', async (t) => {
  const { store, stateDir } = await freshStore();
  for (const version of ['1', '3']) await store.install(await source('net', version));
  await store.activate('net', '1');
  await store.activate('net', '3');
  await store.rollback('net');
  await store.install(await source('net', '2'));
  t.same(await store.get('net').then((m) => [m?.active, m?.history, m?.rejected, m?.versions.map((v) => v.version)]),
    ['1', [], ['3'], ['3', '2', '1']]);
  await fs.rm(path.join(store.layout.versionDir('net', '1'), 'manifest.json'));
  const reopened = await ModelStore.open(stateDir);
  t.same(reopened.lastRecovery!.repairedPointers.map((p) => [p.from, p.to]), [['1', '2']], 'rejected 3 is skipped');
  t.equal(await reopened.activeVersion('net'), '2');
});

t.test('writers queue in one process and wait for a live lock holder in another', async (t) => {
  const { store, stateDir } = await freshStore();
  const second = await ModelStore.open(stateDir);
  const sources = await Promise.all(['1', '2', '3', '4'].map((v) => source('net', v)));
  const results = await Promise.all(sources.map((dir, i) => (i % 2 ? second : store).install(dir)));
  t.ok(results.every((r) => r.installed), 'four concurrent installs by two store objects all succeed');
  const versions = (await store.get('net'))!.versions.map((v) => v.version);
  // Retention keeps the two newest pending versions, and the one installed last survives until the next collection.
  t.same(versions.slice(0, 2), ['4', '3']);
  t.ok(versions.length <= 3, `pending versions are capped (${versions.join(', ')})`);
  for (const version of versions) t.equal((await readPackage(store.layout.versionDir('net', version))).version, version, `${version} is complete`);
  t.same(await fs.readdir(store.layout.tmp), []);

  const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => { holder.kill('SIGKILL'); });
  const startTime = (await fs.readFile(`/proc/${holder.pid}/stat`, 'utf8')).split(') ')[1].split(' ')[19];
  await fs.writeFile(store.layout.lock, `${holder.pid} ${startTime} cafe`);
  const blocked = await ModelStore.open(stateDir, { lockTimeoutMs: 200 }).then(() => 'opened', (error: Error) => error.message);
  t.match(blocked, new RegExp(`the store is locked by process ${holder.pid}`));
  await fs.writeFile(store.layout.lock, `${holder.pid} 1 cafe`);
  await ModelStore.open(stateDir, { lockTimeoutMs: 200 });
  t.pass('a lock whose pid now belongs to another process (other start time) is stale');
  holder.kill('SIGKILL');
});
