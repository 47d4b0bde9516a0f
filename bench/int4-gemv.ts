/**
 * Quantized GEMV throughput on the local adapter against its measured memory bandwidth and the FP32 kernel:
 *   node --import tsx bench/int4-gemv.ts [--k 4096] [--n 4096] [--rec] [--submissions 15]
 * Cases: INT4 group-32 (edgerun.QMatMul, symmetric), INT8 per column, FP32 MatMul with B constant — each
 * built through the op registry, so it is the kernel the engine compiles. Reported: ms per GEMV (best and
 * median over submissions), effective GB/s of the weight bytes the kernel must read (packed weights + scales),
 * that figure as a share of the read bandwidth from bench/memory-bandwidth.ts, and the speedup over FP32.
 * --rec adds the recognition model's classifier shape (40×120·120×6625), where M > 1 rows share each weight read.
 * The kernels of one shape are timed in turn within every round, so a busy machine slows them alike.
 */
import { parseArgs } from 'node:util';
import type { DType, Tensor } from '../daemon/graph/ir.ts';
import { buildSingleOp, randomTensor, seededRandom, type SingleOpCase } from '../test/helpers/kernel-harness.ts';
import { measureBandwidth, prepareProgram, summarize, type Timing } from './memory-bandwidth.ts';

interface Case {
  name: string;
  op: SingleOpCase;
  weightBytes: number;
  M: number;
  N: number;
}

function randomInts(dtype: DType, dims: number[], seed: number, lo: number, hi: number): Tensor {
  const random = seededRandom(seed);
  const count = dims.reduce((a, b) => a * b, 1);
  const data = new Int32Array(count);
  for (let i = 0; i < count; i++) data[i] = lo + Math.floor(random() * (hi - lo + 1));
  return { dtype, dims, data };
}

function cases(M: number, K: number, N: number): Case[] {
  const a = randomTensor([M, K], 1);
  const blocks = Math.ceil(K / 32);
  return [
    {
      name: `INT4 g32 ${M}×${K}·${K}×${N}`, M, N,
      op: { opType: 'QMatMul', domain: 'edgerun', inputs: [a, randomInts('int4', [K, N], 2, -8, 7), randomTensor([blocks, N], 3, 0.001, 0.01)], constantInputs: [1, 2], attributes: { axis: 0, block_size: 32 } },
      weightBytes: (K * N) / 2 + blocks * N * 4,
    },
    {
      name: `INT8 per-column ${M}×${K}·${K}×${N}`, M, N,
      op: { opType: 'QMatMul', domain: 'edgerun', inputs: [a, randomInts('int8', [K, N], 4, -127, 127), randomTensor([N], 5, 0.001, 0.01)], constantInputs: [1, 2], attributes: { axis: 1, block_size: 0 } },
      weightBytes: K * N + N * 4,
    },
    {
      name: `FP32 ${M}×${K}·${K}×${N}`, M, N,
      op: { opType: 'MatMul', opset: 13, inputs: [a, randomTensor([K, N], 6)], constantInputs: [1] },
      weightBytes: K * N * 4,
    },
  ];
}

/** Times the cases round-robin: every round submits each case once (3 dispatches). */
async function timeInterleaved(list: Case[], rounds: number): Promise<(Timing & { label: string })[]> {
  const prepared = [];
  for (const c of list) {
    const { programs } = await buildSingleOp(c.op);
    prepared.push({ label: programs[0].label, program: await prepareProgram(programs[0], [c.op.inputs[0]!.data as Float32Array], [c.M * c.N * 4]), times: [] as number[] });
  }
  for (let round = 0; round < rounds; round++) for (const p of prepared) p.times.push(await p.program.time(3));
  for (const p of prepared) p.program.dispose();
  return prepared.map((p) => ({ ...summarize(p.times), label: p.label }));
}

const { values } = parseArgs({
  options: { k: { type: 'string', default: '4096' }, n: { type: 'string', default: '4096' }, rec: { type: 'boolean', default: false }, submissions: { type: 'string', default: '15' } },
});
const K = Number(values.k);
const N = Number(values.n);
const rounds = Number(values.submissions);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) {
  process.stderr.write(`--submissions must be an integer in 1..1000, got '${values.submissions}'\n`);
  process.exit(2);
}
if (![K, N].every((v) => Number.isInteger(v) && v >= 32 && v <= 16384)) {
  process.stderr.write(`--k and --n must be integers in 32..16384, got '${values.k}' and '${values.n}'\n`);
  process.exit(2);
}
const bandwidth = await measureBandwidth(64);
process.stdout.write(`adapter: ${bandwidth.adapter}; read bandwidth ${bandwidth.readGBs.toFixed(2)} GB/s, copy ${bandwidth.copyGBs.toFixed(2)} GB/s\n`);
const shapes: [number, number, number][] = [[1, K, N]];
if (values.rec) shapes.push([40, 120, 6625]);
const results: Record<string, unknown>[] = [];
for (const [m, k, n] of shapes) {
  const list = cases(m, k, n);
  const timings = await timeInterleaved(list, rounds);
  const timed = list.map((c, i) => ({ c, t: timings[i] }));
  const fp32 = timed[timed.length - 1].t.best;
  for (const { c, t } of timed) {
    const gbs = c.weightBytes / t.best / 1e6;
    const row = {
      case: c.name, kernel: t.label, bestMs: +t.best.toFixed(3), medianMs: +t.median.toFixed(3), weightMiB: +(c.weightBytes / 2 ** 20).toFixed(2),
      weightGBs: +gbs.toFixed(2), ofReadBandwidth: +(gbs / bandwidth.readGBs).toFixed(2), speedupVsFp32: +(fp32 / t.best).toFixed(2),
    };
    results.push(row);
    process.stdout.write(`${c.name}: ${row.bestMs} ms (median ${row.medianMs}), ${row.weightMiB} MiB of weights → ${row.weightGBs} GB/s = ${Math.round(row.ofReadBandwidth * 100)}% of read bandwidth, ${row.speedupVsFp32}× FP32\n`);
  }
}
process.stdout.write(`${JSON.stringify({ bandwidth, results })}\n`);
process.exit(0);
