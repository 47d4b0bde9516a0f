/**
 * Benchmarks one model on edgerun, onnxruntime-web's WebGPU EP and onnxruntime-node CPU, each in a fresh
 * process, and derives cold start, steady median/p95, ratios, agreement with onnxruntime-node and the
 * fraction of the adapter's measured matmul throughput the model reaches.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { MeasureResult } from './measure.ts';

const run = promisify(execFile);

export type PeerName = 'edgerun' | 'ort-web' | 'ort-node';

export interface EngineFigures {
  engine: PeerName;
  coldStartMs: number;
  firstRunMs: number;
  medianMs: number;
  p95Ms: number;
  runs: number;
  error?: string;
}

export interface ModelBenchmark {
  model: string;
  inputs: Record<string, number[]>;
  adapter?: string;
  flops?: number;
  pipelines?: number;
  dispatches?: number;
  engines: EngineFigures[];
  /** max |edgerun − onnxruntime-node| over all outputs, and the largest reference magnitude. */
  agreement?: { maxAbs: number; maxRef: number };
  /** Model GFLOP/s at edgerun's steady median, and its fraction of the measured matmul roofline. */
  achievedGflops?: number;
}

function stats(times: number[]): { median: number; p95: number } {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return { median: at(0.5), p95: at(0.95) };
}

export async function measureInChild(engine: PeerName, modelPath: string, inputs: Map<string, number[]>, runs: number, timeoutMs: number): Promise<MeasureResult> {
  const fromSource = import.meta.url.endsWith('.ts');
  const script = fileURLToPath(new URL(`./measure.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const args = [...(fromSource ? ['--import', 'tsx'] : []), script, '--engine', engine, '--model', modelPath, '--runs', String(runs),
    ...[...inputs].flatMap(([name, dims]) => ['--input', `${name}=${dims.join('x')}`])];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 512 * 1024 * 1024, timeout: timeoutMs, env: { ...process.env, EDGERUN_LOG_LEVEL: 'warn' } });
  const line = stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as MeasureResult;
}

function decode(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

export async function benchmarkModel(options: {
  modelPath: string;
  inputs: Map<string, number[]>;
  runs: number;
  engines: PeerName[];
  timeoutMs?: number;
  onProgress?: (message: string) => void;
}): Promise<ModelBenchmark> {
  const results = new Map<PeerName, MeasureResult>();
  const benchmark: ModelBenchmark = { model: options.modelPath, inputs: Object.fromEntries(options.inputs), engines: [] };
  for (const engine of options.engines) {
    options.onProgress?.(`${engine}: measuring ${options.modelPath}`);
    // The WebGPU EP on lavapipe is slow: fewer runs keep the benchmark bounded.
    const runs = engine === 'ort-web' ? Math.max(3, Math.ceil(options.runs / 2)) : options.runs;
    try {
      const result = await measureInChild(engine, options.modelPath, options.inputs, runs, options.timeoutMs ?? 30 * 60_000);
      results.set(engine, result);
      const { median, p95 } = stats(result.times);
      benchmark.engines.push({ engine, coldStartMs: result.coldStartMs, firstRunMs: result.firstRunMs, medianMs: median, p95Ms: p95, runs: result.times.length });
      if (engine === 'edgerun') {
        benchmark.adapter = result.adapter;
        benchmark.flops = result.plan?.flops;
        benchmark.pipelines = result.plan?.pipelines;
        benchmark.dispatches = result.plan?.dispatches;
        if (result.plan) benchmark.achievedGflops = result.plan.flops / (median * 1e6);
      }
    } catch (error) {
      benchmark.engines.push({ engine, coldStartMs: NaN, firstRunMs: NaN, medianMs: NaN, p95Ms: NaN, runs: 0, error: (error as Error).message.split('\n').slice(0, 3).join(' ') });
    }
  }
  const ours = results.get('edgerun');
  const reference = results.get('ort-node');
  if (ours && reference) {
    let maxAbs = 0;
    let maxRef = 0;
    for (const [name, expected] of Object.entries(reference.outputs)) {
      const actual = ours.outputs[name];
      if (!actual) { maxAbs = Infinity; continue; }
      const a = decode(actual.base64);
      const e = decode(expected.base64);
      if (a.length !== e.length) { maxAbs = Infinity; continue; }
      for (let i = 0; i < e.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(a[i] - e[i]));
        maxRef = Math.max(maxRef, Math.abs(e[i]));
      }
    }
    benchmark.agreement = { maxAbs, maxRef };
  }
  return benchmark;
}
