/**
 * Steady latency of several versions of one model (FP32 and its INT8 / INT4 packages) on the same adapter, in
 * one process and interleaved run by run, so that a busy shared machine slows every version alike:
 *   node --import tsx bench/quantized-latency.ts --input x=1x3x48x320 [--rounds 30] [--profile] [--nodes REGEX] FP32.onnx INT8.onnx …
 * Prints per model the best and median ms of a run, the speedup over the first model, GPU constants (bytes),
 * and with --profile the GPU time per op type from timestamp queries (median over rounds); --nodes also lists
 * the nodes whose op type matches REGEX one by one.
 */
import { parseArgs } from 'node:util';
import { seededRandom } from '../daemon/cli/random-inputs.ts';
import { toGpuLayout } from '../daemon/engine/feeds.ts';
import { compileModel } from '../daemon/graph/compile.ts';
import type { Tensor } from '../daemon/graph/ir.ts';
import { GpuRuntime } from '../daemon/gpu/gpu-runtime.ts';
import { loadModelFile } from '../daemon/onnx/decode.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    input: { type: 'string', multiple: true, default: [] }, rounds: { type: 'string', default: '30' }, profile: { type: 'boolean', default: false },
    nodes: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || positionals.length === 0) {
  process.stderr.write('usage: bench/quantized-latency.ts --input NAME=1x3x48x320 [--rounds N] [--profile] MODEL.onnx …\n');
  process.exit(2);
}
const shapes = new Map<string, number[]>();
for (const spec of values.input) {
  const [name, dims] = spec.split('=');
  shapes.set(name, dims.split('x').map(Number));
}
const random = seededRandom(7);
const feeds = new Map<string, Tensor>([...shapes].map(([name, dims]) => {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = random() * 2 - 1;
  return [name, { dtype: 'float32', dims, data }];
}));

const nodePattern = values.nodes ? new RegExp(values.nodes) : null;
const runtime = await GpuRuntime.start();
const loaded = [];
for (const path of positionals) {
  const model = await loadModelFile(path);
  const compiled = compileModel(model, { inputShapes: shapes, caps: runtime.caps });
  const session = await runtime.loadPlan(compiled.plan);
  const inputs = () => new Map(compiled.inputs.map((i) => [i.name, toGpuLayout(feeds.get(i.name)!)]));
  const opTypeOf = new Map(compiled.nodeInfo.map((n) => [n.name, n.opType]));
  // first run compiles the pipelines on lavapipe; one more warms the caches
  await session.run(inputs());
  await session.run(inputs());
  loaded.push({ path, compiled, session, inputs, opTypeOf, times: [] as number[], perOp: new Map<string, number[]>(), perNode: new Map<string, number[]>() });
  process.stderr.write(`loaded ${path}: ${compiled.stats.pipelines} pipelines, ${compiled.stats.dispatches} dispatches, constants ${compiled.stats.constantBytes} B, ${compiled.stats.quantizedMatMuls} QMatMul, ${compiled.stats.quantizedConvs} QConv\n`);
}
for (let round = 0; round < rounds; round++) {
  for (const entry of loaded) {
    const started = performance.now();
    const result = await entry.session.run(entry.inputs(), { profile: values.profile });
    entry.times.push(performance.now() - started);
    if (result.perNodeMs) {
      const totals = new Map<string, number>();
      for (const [node, ms] of result.perNodeMs) {
        const op = entry.opTypeOf.get(node) ?? node;
        totals.set(op, (totals.get(op) ?? 0) + ms);
        if (nodePattern?.test(op)) entry.perNode.set(`${op} ${node}`, [...(entry.perNode.get(`${op} ${node}`) ?? []), ms]);
      }
      for (const [op, ms] of totals) entry.perOp.set(op, [...(entry.perOp.get(op) ?? []), ms]);
    }
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const baseline = median(loaded[0].times);
const summary = loaded.map((entry) => {
  const best = Math.min(...entry.times);
  const med = median(entry.times);
  const perOp = Object.fromEntries([...entry.perOp].map(([op, ms]) => [op, +median(ms).toFixed(2)]).sort((a, b) => (b[1] as number) - (a[1] as number)));
  process.stdout.write(`${entry.path}: best ${best.toFixed(1)} ms, median ${med.toFixed(1)} ms (${(baseline / med).toFixed(2)}× the first), constants ${(entry.compiled.stats.constantBytes / 2 ** 20).toFixed(2)} MiB\n`);
  if (values.profile) process.stdout.write(`  GPU ms by op (median): ${JSON.stringify(perOp)}\n`);
  for (const [node, ms] of entry.perNode) process.stdout.write(`  ${node}: ${median(ms).toFixed(2)} ms\n`);
  return { model: entry.path, bestMs: +best.toFixed(2), medianMs: +med.toFixed(2), speedup: +(baseline / med).toFixed(2), constantBytes: entry.compiled.stats.constantBytes, ...(values.profile ? { perOp } : {}) };
});
process.stdout.write(`${JSON.stringify({ adapter: `${runtime.caps.vendor} ${runtime.caps.architecture}`.trim(), rounds, summary })}\n`);
for (const entry of loaded) await entry.session.dispose();
await runtime.close();
process.exit(0);
