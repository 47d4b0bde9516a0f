import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { build, type ServeLimits } from '../../daemon/serve/app.ts';
import { postJson, startServing } from './helpers/serving.ts';

const serving = await startServing(t, { load: ['slow', 'example'] });
const { registry } = serving;

/** Another app over the same registry (and sessions), with its own limits and queues. */
async function appWith(t: Test, limits: Partial<ServeLimits>, isDraining?: () => boolean) {
  const app = await build({ registry, limits, metricsRegistry: new Registry(), ...(isDraining ? { isDraining } : {}) });
  t.teardown(() => app.close());
  return app;
}

/** A slow inference: `rows` × 256 FP32 as binary tensor data through 32 MatMuls (≈ 0.1 ms per row here). */
function slowRequest(rows: number) {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 256], datatype: 'FP32', parameters: { binary_data_size: rows * 1024 } }], outputs: [{ name: 'y', parameters: { binary_data: true } }] }));
  const data = Buffer.from(new Float32Array(rows * 256).fill(0.01).buffer);
  return {
    method: 'POST' as const, url: '/v2/models/slow/infer', payload: Buffer.concat([header, data]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

/** Rows whose inference takes well over a second even on a fast CPU, so the timeout tests never race compute. */
const LONGER_THAN_ANY_TIMEOUT_ROWS = 16384;

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

t.test('beyond maxQueue a request gets 503 EDGERUN_ERR_OVERLOADED with Retry-After; queued ones are served', async (t) => {
  const app = await appWith(t, { maxConcurrency: 1, maxQueue: 2, retryAfterSeconds: 3 });
  const replies = await Promise.all(Array.from({ length: 5 }, () => app.inject(slowRequest(1024))));
  const statuses = replies.map((r) => r.statusCode).sort();
  t.same(statuses, [200, 200, 200, 503, 503]);
  for (const reply of replies.filter((r) => r.statusCode === 503)) {
    t.equal(reply.headers['retry-after'], '3');
    t.match(reply.json(), { code: 'EDGERUN_ERR_OVERLOADED', error: /model 'slow' has 2 requests queued behind 1 running/ });
  }
  t.equal(registry.inFlight('slow', '1'), 0);
});

t.test('queue depth and in-flight requests show in /metrics while requests wait', async (t) => {
  const app = await appWith(t, { maxConcurrency: 1, maxQueue: 8 });
  const pending = Array.from({ length: 3 }, () => app.inject(slowRequest(2048)));
  await until(() => registry.inFlight('slow', '1') === 3, 'three requests hold leases');
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /edgerun_inference_queue_depth\{model="slow"\} 2/);
  t.match(metrics, /edgerun_inference_in_flight\{model="slow"\} 3/);
  t.same((await Promise.all(pending)).map((r) => r.statusCode), [200, 200, 200]);
});

t.test('a request past its timeout gets 504; its lease is returned only when the engine is done', async (t) => {
  const app = await appWith(t, { requestTimeoutMs: 100 });
  const before = registry.releases.length;
  const started = performance.now();
  const res = await app.inject(slowRequest(LONGER_THAN_ANY_TIMEOUT_ROWS));
  const answeredMs = performance.now() - started;
  t.equal(res.statusCode, 504);
  t.match(res.json(), { code: 'EDGERUN_ERR_TIMEOUT', error: "inference on model 'slow' did not finish within the request timeout" });
  t.ok(answeredMs < 350, `answered at the deadline (${answeredMs.toFixed(0)} ms), not when compute ended`);
  t.equal(registry.inFlight('slow', '1'), 1, 'the session is still computing for it');
  await until(() => registry.inFlight('slow', '1') === 0, 'the lease is returned');
  const release = registry.releases.slice(before).find((r) => r.model === 'slow');
  t.equal(release?.outcome?.ok, false, 'a timed-out inference counts against the version');
});

t.test('a request still queued at its deadline gets 504 and leaves the queue', async (t) => {
  const app = await appWith(t, { requestTimeoutMs: 150, maxConcurrency: 1 });
  const [first, second] = await Promise.all([app.inject(slowRequest(LONGER_THAN_ANY_TIMEOUT_ROWS)), app.inject(slowRequest(16))]);
  t.equal(first.statusCode, 504);
  t.equal(second.statusCode, 504);
  t.match(second.json().error, /timed out waiting in its queue/);
  await until(() => registry.inFlight('slow', '1') === 0, 'leases are returned');
});

t.test('while draining every request gets 503 with Connection: close', async (t) => {
  let draining = false;
  const app = await appWith(t, {}, () => draining);
  t.equal((await app.inject({ method: 'GET', url: '/v2/health/live' })).statusCode, 200);
  draining = true;
  for (const request of [
    { method: 'GET' as const, url: '/v2/health/live' },
    { method: 'GET' as const, url: '/v2/health/ready' },
    { method: 'GET' as const, url: '/v2/models/example' },
    { method: 'POST' as const, url: '/v2/models/example/infer', payload: { inputs: [{ name: 'input-0', shape: [1, 1], datatype: 'FP32', data: [1] }] } },
  ]) {
    const res = await app.inject(request);
    t.equal(res.statusCode, 503, request.url);
    t.equal(res.headers.connection, 'close', request.url);
    t.match(res.json(), { code: 'EDGERUN_ERR_DRAINING', error: /shutting down/ });
  }
});

t.test('bodies beyond the body limit get 413 naming the limit', async (t) => {
  const app = await appWith(t, { bodyLimitBytes: 4096 });
  const res = await postJson(app, '/v2/models/example/infer', { inputs: [{ name: 'input-0', shape: [1, 1000], datatype: 'FP32', data: new Array(1000).fill(1.25) }] });
  t.equal(res.statusCode, 413);
  t.same(res.json(), { error: 'the request body exceeds the limit of 4096 bytes', code: 'EDGERUN_ERR_REQUEST' });
  const small = await postJson(app, '/v2/models/example/infer', { inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] });
  t.equal(small.statusCode, 200);
});

t.test('invalid limits are refused naming the key', async (t) => {
  await t.rejects(build({ registry, limits: { maxQueue: -1 } }), { code: 'EDGERUN_ERR_CONFIG', message: /limits\.maxQueue must be a non-negative integer, got -1/ });
  await t.rejects(build({ registry, limits: { requestTimeoutMs: 0 } }), { code: 'EDGERUN_ERR_CONFIG', message: /limits\.requestTimeoutMs must be a positive integer/ });
});

t.test('inference does not block the event loop: timers keep firing while requests compute', async (t) => {
  const app = await appWith(t, { maxConcurrency: 1 });
  await app.inject(slowRequest(16));
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const started = performance.now();
  const replies = await Promise.all(Array.from({ length: 4 }, () => app.inject(slowRequest(LONGER_THAN_ANY_TIMEOUT_ROWS / 2))));
  const elapsed = performance.now() - started;
  delay.disable();
  t.same(replies.map((r) => r.statusCode), [200, 200, 200, 200]);
  const maxMs = delay.max / 1e6;
  t.comment(`4 requests in ${elapsed.toFixed(0)} ms; event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${maxMs.toFixed(1)} ms`);
  t.ok(elapsed > 300, 'long enough that blocking would show');
  t.ok(maxMs < Math.min(150, elapsed / 4), `the longest stall (${maxMs.toFixed(1)} ms) is far below one inference`);
});
