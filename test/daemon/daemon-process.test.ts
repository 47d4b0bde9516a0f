/**
 * `edgerun daemon` as a real child process: serves the models folder at once, READY/WATCHDOG/STOPPING to a
 * stand-in systemd socket, SIGTERM drains in-flight requests, flushes telemetry and exits 0 within the grace;
 * a second signal or an expired grace exits 1; bad configuration and a busy port fail the start by name.
 */
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import t, { type Test } from 'tap';
import { DaemonProcess } from '../helpers/daemon-process.ts';
import { addOneModel, inferBody, scaleModel, slowModel } from '../helpers/daemon-models.ts';
import { writePackage } from '../helpers/package-builder.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-daemon-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const models = path.join(dir, 'models');
await fs.mkdir(models);
await fs.writeFile(path.join(models, 'addone.onnx'), addOneModel());
const slowModels = path.join(dir, 'slow-models');
await fs.mkdir(slowModels);
await fs.writeFile(path.join(slowModels, 'slow.onnx'), slowModel());
await fs.writeFile(path.join(slowModels, 'addone.onnx'), addOneModel());
const x = { x: { dtype: 'float32' as const, dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) } };
await writePackage(path.join(models, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(3), evalInputs: [x] });

const CPU = { EDGERUN_ENGINE_KIND: 'onnxruntime-cpu', EDGERUN_LIFECYCLE_SHUTDOWN_GRACE_MS: '8000' };
let stateCount = 0;
const freshState = (): string => path.join(dir, `state-${stateCount++}`);

async function startDaemon(t: Test, env: NodeJS.ProcessEnv = {}, modelsDir = models, stateDir = freshState()) {
  const daemon = await DaemonProcess.start({ dir, args: ['--port', '0', '--state-dir', stateDir, '--models', modelsDir], env: { ...CPU, ...env } });
  t.teardown(() => { if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.signal('SIGKILL'); });
  await daemon.ready();
  return { daemon, stateDir };
}

async function infer(daemon: DaemonProcess, model: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${daemon.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  return { status: response.status, headers: response.headers, body: await response.json() as Record<string, unknown> };
}

/**
 * An infer request whose body arrives in two parts: it is in flight (headers received, body pending) until
 * finish() sends the rest, which keeps the daemon's drain waiting for exactly as long as the test wants.
 */
function heldRequest(daemon: DaemonProcess, model: string, body: string) {
  const request = http.request({
    host: '127.0.0.1', port: daemon.port, method: 'POST', path: `/v2/models/${model}/infer`,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  const response = new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    request.on('response', (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    request.on('error', reject);
  });
  request.write(body.slice(0, 5));
  return { response, finish: () => request.end(body.slice(5)) };
}

t.test('serves the models folder at once; SIGTERM drains, flushes telemetry and exits 0 within the grace', async (t) => {
  const { daemon, stateDir } = await startDaemon(t, { WATCHDOG_USEC: '1000000', EDGERUN_TELEMETRY_FLUSH_INTERVAL_MS: '100' });
  const ready = await daemon.systemd.waitFor('READY');
  t.match(ready.fields.STATUS, /^serving 2 of 2 model\(s\) with onnxruntime-cpu on http:\/\/127\.0\.0\.1:\d+$/);
  t.equal((await fetch(`${daemon.url}/v2/health/ready`)).status, 200);

  const added = await infer(daemon, 'addone', inferBody('x', [1, 4], [1, 2, 3, 4]));
  t.equal(added.status, 200);
  t.same((added.body.outputs as { data: number[] }[])[0].data, [2, 3, 4, 5]);
  const scaled = await infer(daemon, 'scale', inferBody('x', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]));
  t.same(scaled.body.model_version, '1');
  t.same((scaled.body.outputs as { data: number[] }[])[0].data, [3, 6, 9, 12, 15, 18, 21, 24]);
  const missing = await infer(daemon, 'nope', inferBody('x', [1, 4], [1, 2, 3, 4]));
  t.equal(missing.status, 404);

  const dashboard = await fetch(`${daemon.url}/dashboard`);
  t.equal(dashboard.status, 200);
  t.match(dashboard.headers.get('content-type'), /text\/html/);
  await new Promise((r) => setTimeout(r, 300));
  const summary = await (await fetch(`${daemon.url}/v2/telemetry/summary?since=1h`)).json() as { versions: { model: string; requests: number }[] };
  t.ok(summary.versions.some((v) => v.model === 'addone' && v.requests >= 1), 'the telemetry summary sees the requests just served');

  await daemon.systemd.waitFor('WATCHDOG', 3000);
  const began = performance.now();
  daemon.signal('SIGTERM');
  const exit = await daemon.exited;
  const ms = performance.now() - began;
  t.same(exit, { code: 0, signal: null });
  t.ok(ms < 8000, `exited within the grace (${ms.toFixed(0)} ms)`);
  t.match((await daemon.systemd.waitFor('STOPPING')).fields.STATUS, /stopping \(SIGTERM\)/);

  const db = new Database(path.join(stateDir, 'telemetry.db'), { readonly: true });
  t.teardown(() => db.close());
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
  const requests = db.prepare('SELECT model, version, engine, ok FROM requests ORDER BY at').all() as { model: string; version: string; engine: string; ok: number }[];
  t.same(requests.filter((r) => r.model !== 'nope').map((r) => [r.model, r.version, r.engine, r.ok]),
    [['addone', '0', 'onnxruntime-cpu', 1], ['scale', '1', 'onnxruntime-cpu', 1]], 'every request was flushed before exit');
  const events = (db.prepare('SELECT kind FROM events').all() as { kind: string }[]).map((e) => e.kind);
  t.ok(events.includes('start') && events.includes('stop') && events.includes('swap'), events.join(','));
});

t.test('requests in flight at SIGTERM finish (an inference running, a body still arriving); new ones get 503 with Connection: close', async (t) => {
  const { daemon } = await startDaemon(t, {}, slowModels);
  const held = heldRequest(daemon, 'addone', inferBody('x', [1, 4], [1, 2, 3, 4]));
  const slow = infer(daemon, 'slow', inferBody('x', [1, 1], [1]));
  await new Promise((r) => setTimeout(r, 50));
  daemon.signal('SIGTERM');
  await daemon.systemd.waitFor('STOPPING');
  const late = await infer(daemon, 'addone', inferBody('x', [1, 4], [1, 2, 3, 4]), { connection: 'close' });
  t.equal(late.status, 503);
  t.equal(late.headers.get('connection'), 'close');
  t.equal(late.body.code, 'EDGERUN_ERR_DRAINING');
  t.equal((await slow).status, 200, 'the running inference completed');
  held.finish();
  const finished = await held.response;
  t.equal(finished.status, 200, 'the request whose body was still arriving completed');
  t.same((finished.body.outputs as { data: number[] }[])[0].data, [2, 3, 4, 5]);
  t.same(await daemon.exited, { code: 0, signal: null });
});

t.test('a second signal while draining ends the process at once, non-zero, logging what was still running', async (t) => {
  const { daemon } = await startDaemon(t);
  const held = heldRequest(daemon, 'addone', inferBody('x', [1, 4], [1, 2, 3, 4]));
  held.response.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  daemon.signal('SIGTERM');
  await daemon.systemd.waitFor('STOPPING');
  daemon.signal('SIGINT');
  t.same(await daemon.exited, { code: null, signal: 'SIGKILL' }, 'work still running: killed, not exit() (onnxruntime would abort)');
  const forced = daemon.logged(/shutdown forced \(second signal SIGINT\)/);
  t.equal(forced.length, 1);
  t.equal(forced[0].inFlightRequests, 1);
  t.same(forced[0].pending, [{ name: 'http', phase: 'stopping' }]);
});

t.test('the grace expiring ends the process non-zero', async (t) => {
  const { daemon } = await startDaemon(t, { EDGERUN_LIFECYCLE_SHUTDOWN_GRACE_MS: '150' });
  const held = heldRequest(daemon, 'addone', inferBody('x', [1, 4], [1, 2, 3, 4]));
  held.response.catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  const began = performance.now();
  daemon.signal('SIGTERM');
  t.same(await daemon.exited, { code: null, signal: 'SIGKILL' });
  t.ok(performance.now() - began < 3000, 'right after the grace');
  t.equal(daemon.logged(/shutdown forced \(the 150 ms grace expired\)/).length, 1);
});

t.test('an invalid configuration exits 1 with a message naming the key and its source', async (t) => {
  const bad = await DaemonProcess.start({ dir, args: ['--port', '99999', '--state-dir', freshState()], env: { EDGERUN_TELEMETRY_ENABLED: 'maybe' } });
  t.same(await bad.exited, { code: 1, signal: null });
  t.match(bad.log.join('\n'), /edgerun daemon: EDGERUN_ERR_CONFIG: invalid configuration from environment: telemetry\.enabled \(EDGERUN_TELEMETRY_ENABLED\): must be boolean/);
  const file = path.join(dir, 'bad.yaml');
  await fs.writeFile(file, 'server:\n  port: 8080\n  hots: 0.0.0.0\n');
  const unknown = await DaemonProcess.start({ dir, args: ['--config', file] });
  t.same(await unknown.exited, { code: 1, signal: null });
  t.match(unknown.log.join('\n'), /from file .*bad\.yaml: server\.hots: unknown key \(did you mean 'host'\?\)/);
});

t.test('a busy port fails the start, naming the HTTP component, and exits 1', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const daemon = await DaemonProcess.start({ dir, args: ['--port', String(port), '--state-dir', freshState(), '--models', path.join(dir, 'no-models')], env: CPU });
  t.same(await daemon.exited, { code: 1, signal: null });
  t.match(daemon.log.join('\n'), /EDGERUN_ERR_STARTUP: http: start failed: .*EADDRINUSE/);
  t.equal(daemon.systemd.count('READY'), 0, 'systemd never heard READY=1');
});

t.test('the WebGPU engine serves through the daemon too', async (t) => {
  const webgpuModels = path.join(dir, 'webgpu-models');
  await fs.mkdir(webgpuModels);
  await fs.writeFile(path.join(webgpuModels, 'addone.onnx'), addOneModel());
  const daemon = await DaemonProcess.start({ dir, args: ['--port', '0', '--state-dir', freshState(), '--models', webgpuModels], env: { EDGERUN_ENGINE_KIND: 'webgpu' } });
  t.teardown(() => { if (daemon.child.exitCode === null) daemon.signal('SIGKILL'); });
  await daemon.ready(60_000);
  t.match((await daemon.systemd.waitFor('READY')).fields.STATUS, /with webgpu on/);
  const added = await infer(daemon, 'addone', inferBody('x', [2, 4], [1, 2, 3, 4, -1, -2, -3, -4]));
  t.same((added.body.outputs as { data: number[] }[])[0].data, [2, 3, 4, 5, 0, -1, -2, -3]);
  daemon.signal('SIGTERM');
  t.same(await daemon.exited, { code: 0, signal: null });
});
