/**
 * kill -9 at awkward moments — while telemetry is being written under load, while a new version is installed
 * and swapped in, while a version that fails its gate is being tried — then restart on the same state folder:
 * the store opens consistent, the telemetry database passes PRAGMA integrity_check, and the daemon serves the
 * last good version.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { DaemonProcess } from '../helpers/daemon-process.ts';
import { addOneModel, inferBody, scaleModel } from '../helpers/daemon-models.ts';
import { writePackage } from '../helpers/package-builder.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-daemon-crash-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const ENV = { EDGERUN_ENGINE_KIND: 'onnxruntime-cpu', EDGERUN_TELEMETRY_FLUSH_INTERVAL_MS: '20', EDGERUN_TELEMETRY_BATCH_SIZE: '10' };
const x = { x: { dtype: 'float32' as const, dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) } };

async function start(t: Test, modelsDir: string, stateDir: string, env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> {
  const daemon = await DaemonProcess.start({ dir, args: ['--port', '0', '--state-dir', stateDir, '--models', modelsDir], env: { ...ENV, ...env } });
  t.teardown(() => { if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.signal('SIGKILL'); });
  return daemon.ready();
}

async function infer(daemon: DaemonProcess, model: string, data = [1, 2, 3, 4]) {
  const response = await fetch(`${daemon.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: inferBody('x', [1, 4], data) });
  return { status: response.status, body: await response.json() as { model_version?: string; outputs?: { data: number[] }[] } };
}

async function kill9(daemon: DaemonProcess): Promise<void> {
  daemon.signal('SIGKILL');
  await daemon.exited;
}

function checkDatabase(t: Test, stateDir: string): number {
  const db = new Database(path.join(stateDir, 'telemetry.db'), { readonly: true });
  try {
    t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'PRAGMA integrity_check');
    return (db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function stopCleanly(t: Test, daemon: DaemonProcess): Promise<void> {
  daemon.signal('SIGTERM');
  t.same(await daemon.exited, { code: 0, signal: null }, 'the restarted daemon stops cleanly');
}

t.test('kill -9 while telemetry is written under load: the database stays intact and the daemon serves again', async (t) => {
  const models = path.join(dir, 'load-models');
  await fs.mkdir(models);
  await fs.writeFile(path.join(models, 'addone.onnx'), addOneModel());
  const state = path.join(dir, 'load-state');
  let before = 0;
  for (const killAfterMs of [0, 170]) {
    const daemon = await start(t, models, state);
    let running = true;
    let answered = 0;
    const clients = Array.from({ length: 4 }, async () => {
      while (running) {
        const ok = await infer(daemon, 'addone').then((r) => r.status === 200, () => false);
        if (!ok) break;
        answered++;
      }
    });
    // Kill once the load is steady (telemetry batches being written every 20 ms), at a different moment each round.
    while (answered < 40) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, killAfterMs));
    await kill9(daemon);
    running = false;
    await Promise.all(clients);
    t.ok(answered >= 40, `${answered} requests answered before kill -9`);

    const restarted = await start(t, models, state);
    const again = await infer(restarted, 'addone');
    t.same(again.body.outputs?.[0].data, [2, 3, 4, 5]);
    await stopCleanly(t, restarted);
    const rows = checkDatabase(t, state);
    t.ok(rows > before, `rows written before the kill survive (${rows} request rows)`);
    before = rows;
  }
});

for (const [i, killAfterMs] of [0, 120].entries()) {
  t.test(`kill -9 ${killAfterMs} ms into installing and swapping in a new version: restart serves a whole version`, async (t) => {
    const models = path.join(dir, `swap-models-${i}`);
    const state = path.join(dir, `swap-state-${i}`);
    await writePackage(path.join(models, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(3), evalInputs: [x] });
    const daemon = await start(t, models, state);
    t.equal((await infer(daemon, 'scale')).body.model_version, '1');
    await writePackage(path.join(models, 'scale-2'), { name: 'scale', version: '2', model: scaleModel(5), evalInputs: [x] });
    const load = fetch(`${daemon.url}/v2/repository/models/scale/load`, { method: 'POST' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, killAfterMs));
    await kill9(daemon);
    await load;

    const store = await ModelStore.open(state);
    const stored = await store.get('scale');
    for (const version of stored?.versions ?? []) {
      const pkg = await store.readPackage('scale', version.version);
      t.ok(pkg, `installed version ${version.version} reads back whole (hashes checked)`);
    }
    const restarted = await start(t, models, state);
    const served = await infer(restarted, 'scale');
    t.equal(served.status, 200);
    const factor = { 1: 3, 2: 5 }[served.body.model_version as '1' | '2'];
    t.ok(factor, `serves version ${served.body.model_version}`);
    t.same(served.body.outputs?.[0].data, [1, 2, 3, 4].map((v) => v * factor!), 'with that version\'s model');
    await stopCleanly(t, restarted);
    checkDatabase(t, state);
  });
}

// At restart the folder's version 2 is tried again and fails its gate again: the manager falls back to the
// store's active version 1 and shows version 2 as FAILED with the gate's reason.
t.test('kill -9 while a version that fails its accuracy gate is tried: restart serves the last good version', async (t) => {
  const models = path.join(dir, 'gate-models');
  const state = path.join(dir, 'gate-state');
  await writePackage(path.join(models, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(3), evalInputs: [x] });
  const daemon = await start(t, models, state);
  // Version 2 computes x*5 but its reference outputs say x*7: the gate must refuse it.
  await writePackage(path.join(models, 'scale-2'), {
    name: 'scale', version: '2', model: scaleModel(5), evalInputs: [x],
    referenceOutputs: [{ y: { dtype: 'float32', dims: [1, 4], data: Float32Array.from([7, 14, 21, 28]) } }],
  });
  const load = fetch(`${daemon.url}/v2/repository/models/scale/load`, { method: 'POST' }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 80));
  await kill9(daemon);
  await load;

  const restarted = await start(t, models, state);
  const served = await infer(restarted, 'scale');
  t.equal(served.body.model_version, '1');
  t.same(served.body.outputs?.[0].data, [3, 6, 9, 12]);
  const index = await (await fetch(`${restarted.url}/v2/repository/index`, { method: 'POST' })).json() as { name: string; version: string; state: string; reason?: string }[];
  const failed = index.find((m) => m.version === '2');
  t.equal(failed?.state, 'FAILED');
  t.match(failed?.reason, /accuracy gate failed/);
  await stopCleanly(t, restarted);
  checkDatabase(t, state);
});
