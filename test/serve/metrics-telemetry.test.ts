import { Registry } from 'prom-client';
import t from 'tap';
import { build } from '../../daemon/serve/app.ts';
import { postJson, startServing } from './helpers/serving.ts';

const serving = await startServing(t, { load: ['example'] });
const { app, telemetry } = serving;
const body = (rows: number) => ({ inputs: [{ name: 'input-0', shape: [rows, 2], datatype: 'FP32', data: new Array(rows * 2).fill(0.5) }] });

/** The value of one sample line in Prometheus text, or undefined. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

t.test('/metrics counts requests by model, version and status, with latency histograms', async (t) => {
  const startedAt = Date.now();
  for (let i = 0; i < 3; i++) t.equal((await postJson(app, '/v2/models/example/infer', body(i + 1))).statusCode, 200);
  t.equal((await postJson(app, '/v2/models/example/infer', { inputs: [] })).statusCode, 400);
  t.equal((await postJson(app, '/v2/models/ghost/infer', body(1))).statusCode, 404);
  // The event-loop gauge is only exposed once the 10 ms sampler has taken a sample since the last scrape; on a fast
  // machine the requests above can finish before the first one.
  await new Promise((resolve) => setTimeout(resolve, 50));

  const res = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  t.equal(sample(text, 'edgerun_inference_requests_total{model="example",version="1",status="200"}'), 3);
  t.equal(sample(text, 'edgerun_inference_requests_total{model="example",version="1",status="400"}'), 1);
  t.equal(sample(text, 'edgerun_inference_requests_total{model="",version="",status="404"}'), 1, 'unknown model names do not become labels');
  t.equal(sample(text, 'edgerun_inference_request_seconds_count{model="example",version="1"}'), 4);
  t.equal(sample(text, 'edgerun_inference_compute_seconds_count{model="example",version="1"}'), 3, 'compute is observed for requests that ran');
  t.equal(sample(text, 'edgerun_inference_queue_seconds_count{model="example",version="1"}'), 3);
  t.equal(sample(text, 'edgerun_inference_compute_seconds_bucket{le="+Inf",model="example",version="1"}'), 3);
  t.equal(sample(text, 'edgerun_inference_in_flight{model="example"}'), 0);
  t.equal(sample(text, 'edgerun_inference_queue_depth{model="example"}'), 0);
  const p99 = sample(text, 'edgerun_event_loop_delay_seconds{quantile="0.99"}');
  t.ok(p99 !== undefined && p99 > 0 && p99 < 1, `event-loop delay p99 is exposed (${p99} s)`);

  const records = telemetry.requests.filter((r) => r.at >= startedAt - 1000);
  t.equal(records.length, 4, 'telemetry gets every request that leased a model, not the 404');
  const ok = records.filter((r) => r.ok);
  t.same(ok.map((r) => r.batchSize), [1, 2, 3]);
  for (const record of ok) {
    t.match(record, { model: 'example', version: '1', engine: 'onnxruntime-cpu', ok: true });
    t.ok(record.at >= startedAt - 50 && record.at <= Date.now(), 'at is the arrival time');
    t.ok(record.queueMs >= 0 && record.computeMs > 0 && record.totalMs >= record.queueMs + record.computeMs,
      `total ${record.totalMs.toFixed(2)} ≥ queue ${record.queueMs.toFixed(2)} + compute ${record.computeMs.toFixed(2)}`);
    t.notOk('error' in record);
  }
  t.match(records.find((r) => !r.ok), { ok: false, error: 'EDGERUN_ERR_REQUEST', computeMs: 0 });
});

t.test('with no registry given the app keeps its own, with process metrics; a shared registry serves one app at a time', async (t) => {
  const own = await build({ registry: serving.registry });
  t.teardown(() => own.close());
  const text = (await own.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(text, /process_cpu_user_seconds_total/);
  t.match(text, /edgerun_inference_requests_total/);

  await t.rejects(build({ registry: serving.registry, metricsRegistry: serving.metricsRegistry }),
    { code: 'EDGERUN_ERR_CONFIG', message: /metricsRegistry already holds edgerun_inference_requests_total/ });
  const shared = new Registry();
  const first = await build({ registry: serving.registry, metricsRegistry: shared });
  await first.close();
  const second = await build({ registry: serving.registry, metricsRegistry: shared });
  t.teardown(() => second.close());
  t.match((await second.inject({ method: 'GET', url: '/metrics' })).body, /edgerun_inference_requests_total/, 'after close the registry can serve a new app');
});
