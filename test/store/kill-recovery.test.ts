/**
 * kill -9 at random moments: a child process installs, activates and rolls back in a loop and is SIGKILLed
 * after a random delay (sometimes while it is still recovering at open); after every kill, recovery must
 * leave a consistent store: every listed package complete and hash-verified, every active pointer resolving
 * to one of them, no temp files, every object holding the bytes its name says.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { sha256File } from '../../daemon/package/package-files.ts';
import { readPackage } from '../../daemon/package/read-package.ts';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';

const ITERATIONS = 22;
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-store-kill-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));
const storeModule = fileURLToPath(new URL('../../daemon/store/model-store.ts', import.meta.url));

/** Big enough (≈ 256 KiB of weights, a few eval files) that installs spend real time writing and fsyncing. */
function model(seed: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [1, 256])
    .initializer('w', 'float32', [256, 256], Array.from({ length: 256 * 256 }, (_, i) => ((i * seed) % 97) / 97))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'float32', [1, 256])
    .toBytes();
}

const sources: { name: string; version: string; dir: string }[] = [];
for (const [name, versions] of [['alpha', ['1', '2', '3', '4']], ['beta', ['1', '2']]] as const) {
  for (const version of versions) {
    const dir = path.join(root, 'sources', `${name}-${version}`);
    const evalInputs = [0, 1].map((c) => ({ x: { dtype: 'float32' as const, dims: [1, 256], data: Float32Array.from({ length: 256 }, (_, i) => Math.sin(i + c)) } }));
    await writePackage(dir, { name, version, model: model(Number(version) * 7 + name.length), evalInputs });
    sources.push({ name, version, dir });
  }
}

const childCode = `
const { ModelStore } = await import(${JSON.stringify(storeModule)});
const sources = ${JSON.stringify(sources)};
const store = await ModelStore.open(process.argv[1], { keepPrevious: 2, keepPending: 1, lockTimeoutMs: 5000 });
process.stdout.write('ready\\n');
for (let i = Number(process.argv[2]); ; i++) {
  const pkg = sources[i % sources.length];
  await store.install(pkg.dir);
  await store.activate(pkg.name, pkg.version);
  if (i % 3 === 2) await store.rollback(pkg.name).catch(() => undefined);
  process.stdout.write('op\\n');
}
`;

interface ChildRun { ops: number; killedBeforeReady: boolean; exit: string }

/** Starts a writer and SIGKILLs it `delayMs` after it is ready (or after spawn when `early`). */
function runAndKill(stateDir: string, start: number, delayMs: number, early: boolean): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', childCode, stateDir, String(start)],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EDGERUN_LOG_LEVEL: 'error' } });
    let ready = false;
    let ops = 0;
    let stderr = '';
    const kill = (): void => { child.kill('SIGKILL'); };
    const guard = setTimeout(() => { kill(); reject(new Error('the writer never became ready')); }, 20_000);
    if (early) setTimeout(kill, delayMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (line === 'ready' && !ready) {
          ready = true;
          if (!early) setTimeout(kill, delayMs);
        } else if (line === 'op') {
          ops++;
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      if (signal !== 'SIGKILL') reject(new Error(`the writer exited by itself (code ${code}): ${stderr}`));
      else resolve({ ops, killedBeforeReady: !ready, exit: String(signal) });
    });
  });
}

/** Checks the store from the outside (its files), not through the code under test alone. */
async function assertConsistent(t: Test, store: ModelStore, label: string): Promise<void> {
  const { layout } = store;
  t.same(await fs.readdir(layout.tmp), [], `${label}: tmp/ is empty`);
  const listed = await store.list();
  const installed = new Map<string, Set<string>>();
  for (const model of listed) {
    const versions = new Set<string>();
    for (const stored of model.versions) {
      const pkg = await readPackage(stored.dir);
      if (pkg.name !== model.name || pkg.version !== stored.version) t.fail(`${label}: ${stored.dir} holds ${pkg.name} ${pkg.version}`);
      versions.add(stored.version);
    }
    t.ok(model.versions.length <= 1 + 2 + 1, `${label}: ${model.name} keeps ${model.versions.length} versions (≤ active + 2 previous + 1 pending)`);
    installed.set(model.name, versions);
  }
  for (const entry of await fs.readdir(layout.active)) {
    const pointer = JSON.parse(await fs.readFile(layout.pointer(entry), 'utf8')) as { version: string };
    t.ok(installed.get(entry)?.has(pointer.version), `${label}: active/${entry} → ${pointer.version} is installed and verified`);
  }
  for (const object of await fs.readdir(layout.objects)) {
    if ((await sha256File(layout.object(object))) !== object) t.fail(`${label}: objects/${object} does not hold its hash`);
  }
}

t.test(`recovery after ${ITERATIONS} kill -9s at random moments yields a consistent store`, async (t) => {
  const stateDir = path.join(root, 'state');
  let start = 0;
  let interrupted = 0;
  let totalOps = 0;
  for (let iteration = 0; iteration < ITERATIONS; iteration++) {
    const early = iteration % 6 === 5;
    const delay = early ? 300 + Math.random() * 700 : Math.random() * 400;
    const run = await runAndKill(stateDir, start, delay, early);
    start += run.ops + 1;
    totalOps += run.ops;
    const store = await ModelStore.open(stateDir);
    const report = store.lastRecovery!;
    if (report.removedTemps > 0 || report.removedPackages.length > 0 || report.repairedPointers.length > 0) interrupted++;
    await assertConsistent(t, store, `kill ${iteration + 1} (${run.ops} ops, ${run.killedBeforeReady ? 'before ready' : `${delay.toFixed(0)} ms after ready`})`);
  }
  t.comment(`${totalOps} completed operations; ${interrupted} of ${ITERATIONS} kills interrupted a write that recovery cleaned up`);
  t.ok(interrupted > 0, 'some kills landed in the middle of a write (the test exercises recovery, not just clean stops)');
  const final = await ModelStore.open(stateDir);
  t.ok((await final.list()).some((m) => m.active !== undefined), 'the store still serves an active version');
});
