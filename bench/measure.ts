/**
 * One measurement in a fresh process (so cold start is really cold): loads MODEL in one engine, runs it on
 * seeded inputs and prints a JSON result line. Engines: edgerun (WebGPU, edgerun's kernels), ort-web
 * (onnxruntime-web WebGPU EP on the same Dawn, in its own worker), ort-node (onnxruntime-node CPU).
 *   node --import tsx bench/measure.ts --engine edgerun --model M.onnx --input x=1x3x48x320 [--runs 20] [--warmup 2]
 */
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { seededRandom } from '../daemon/cli/random-inputs.ts';
import { elementCount } from '../daemon/graph/ir.ts';
import { startModuleWorker } from '../daemon/util/worker.ts';

export interface MeasureResult {
  engine: string;
  coldStartMs: number;
  firstRunMs: number;
  times: number[];
  adapter?: string;
  plan?: { pipelines: number; dispatches: number; flops: number; compileMs: number; gpuLoadMs: number; activationBytes: number; constantBytes: number };
  /** The measuring process's peak resident set size. */
  peakRssBytes?: number;
  /** Outputs (float32) as base64, for cross-engine agreement checks. */
  outputs: Record<string, { dims: number[]; base64: string }>;
}

interface Input { name: string; dims: number[]; data: Float32Array }

export function benchInputs(specs: Map<string, number[]>, seed: number): Input[] {
  const random = seededRandom(seed);
  return [...specs].map(([name, dims]) => {
    const data = new Float32Array(elementCount(dims));
    // image-like inputs: normalised pixels in [-1, 1]
    for (let i = 0; i < data.length; i++) data[i] = random() * 2 - 1;
    return { name, dims, data };
  });
}

/** First run (timed alone), `warmup` untimed runs, then `runs` timed runs; returns the last result. */
async function timeRuns<R>(run: () => Promise<R>, warmup: number, runs: number): Promise<{ firstRunMs: number; firstDoneAt: number; times: number[]; last: R }> {
  const firstStarted = performance.now();
  let last = await run();
  const firstDoneAt = performance.now();
  for (let i = 0; i < warmup; i++) last = await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    last = await run();
    times.push(performance.now() - t0);
  }
  return { firstRunMs: firstDoneAt - firstStarted, firstDoneAt, times, last };
}

const encode = (data: Float32Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');

async function measureEdgerun(modelPath: string, inputs: Input[], runs: number, warmup: number): Promise<MeasureResult> {
  const started = performance.now();
  const { WebGpuEngine } = await import('../daemon/engine/webgpu-engine.ts');
  const engine = await WebGpuEngine.create();
  try {
    const shapes = new Map(inputs.map((i) => [i.name, i.dims]));
    const session = await engine.load(modelPath, { inputShapes: shapes });
    const report = await session.prepare(shapes);
    const feeds = new Map(inputs.map((i) => [i.name, { dtype: 'float32' as const, dims: i.dims, data: i.data }]));
    const { firstRunMs, firstDoneAt, times, last: result } = await timeRuns(() => session.run(feeds), warmup, runs);
    const coldStartMs = firstDoneAt - started;
    const outputs = Object.fromEntries([...result.outputs].map(([name, t]) => [name, { dims: t.dims, base64: encode(Float32Array.from(t.data)) }]));
    return {
      engine: 'edgerun', coldStartMs, firstRunMs, times, adapter: engine.runtime.info.adapter.name, outputs,
      plan: { pipelines: report.pipelines, dispatches: report.dispatches, flops: report.flops, compileMs: report.compileMs, gpuLoadMs: report.gpuLoadMs, activationBytes: report.activationBytes, constantBytes: report.constantBytes },
    };
  } finally {
    await engine.close();
  }
}

async function measureOrtNode(modelPath: string, inputs: Input[], runs: number, warmup: number): Promise<MeasureResult> {
  const started = performance.now();
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(await fs.readFile(modelPath));
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, new ort.Tensor('float32', i.data, i.dims)]));
  const { firstRunMs, firstDoneAt, times, last: result } = await timeRuns(() => session.run(feeds), warmup, runs);
  const coldStartMs = firstDoneAt - started;
  const outputs = Object.fromEntries(Object.entries(result).map(([name, t]) => [name, { dims: [...t.dims], base64: encode(Float32Array.from(t.data as Float32Array)) }]));
  await session.release();
  return { engine: 'ort-node', coldStartMs, firstRunMs, times, outputs };
}

async function measureOrtWeb(modelPath: string, inputs: Input[], runs: number, warmup: number): Promise<MeasureResult> {
  const worker = startModuleWorker(import.meta.url, 'peers/ort-web-worker', { workerData: { modelPath, inputs, runs, warmup } });
  const message = await new Promise<{ error?: string; coldStartMs: number; firstRunMs: number; times: number[]; outputs: Record<string, { dims: number[]; data: Float32Array }> }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`onnxruntime-web worker exited with code ${code}`)));
  });
  await worker.terminate();
  if (message.error) throw new Error(message.error);
  const outputs = Object.fromEntries(Object.entries(message.outputs).map(([name, t]) => [name, { dims: t.dims, base64: encode(t.data) }]));
  return { engine: 'ort-web', coldStartMs: message.coldStartMs, firstRunMs: message.firstRunMs, times: message.times, outputs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      engine: { type: 'string' }, model: { type: 'string' }, input: { type: 'string', multiple: true },
      runs: { type: 'string', default: '20' }, warmup: { type: 'string', default: '2' }, seed: { type: 'string', default: '7' },
    },
  });
  const specs = new Map((values.input ?? []).map((item) => {
    const [name, dims] = item.split('=');
    return [name, dims.split('x').map(Number)] as const;
  }));
  const inputs = benchInputs(specs, Number(values.seed));
  const runs = Number(values.runs);
  const warmup = Number(values.warmup);
  const modelPath = values.model!;
  const measure = { edgerun: measureEdgerun, 'ort-node': measureOrtNode, 'ort-web': measureOrtWeb }[values.engine ?? ''];
  if (!measure) throw new Error(`unknown engine '${values.engine}'`);
  const result = await measure(modelPath, inputs, runs, warmup);
  result.peakRssBytes = process.resourceUsage().maxRSS * 1024;
  // process.exit() would cut a large line short on a pipe: wait until it is flushed
  await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(result)}\n`, () => resolve()));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/measure.ts') || process.argv[1]?.endsWith('/measure.js')) {
  main().then(() => process.exit(0), (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
