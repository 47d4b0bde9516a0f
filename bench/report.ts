/** Markdown for benchmark results, and the update of a generated section of docs/BENCHMARKS.md. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ModelBenchmark } from './compare.ts';

const fmt = (ms: number) => (Number.isFinite(ms) ? (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`) : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–');

export function machineLine(adapter: string | undefined): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, adapter: ${adapter ?? 'unknown'}`;
}

export function runtimeTable(results: ModelBenchmark[], roofline?: { n: number; gflops: number }): string {
  const lines: string[] = [];
  lines.push('| model | input | engine | cold start | steady median | p95 | runs |');
  lines.push('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const input = Object.entries(r.inputs).map(([n, d]) => `${n} ${d.join('×')}`).join(', ');
    for (const e of r.engines) {
      lines.push(`| ${path.basename(r.model)} | ${input} | ${e.engine}${e.error ? ` (failed: ${e.error.replace(/\|/g, '/')})` : ''} | ${fmt(e.coldStartMs)} | ${fmt(e.medianMs)} | ${fmt(e.p95Ms)} | ${e.runs} |`);
    }
  }
  lines.push('');
  lines.push('| model | steady: ort-web WebGPU ÷ edgerun (target ≥ 3×) | cold: ort-web ÷ edgerun (target ≥ 10×) | edgerun ÷ ort-node CPU | GFLOP | edgerun GFLOP/s | of matmul roofline | pipelines / dispatches | max abs diff vs ort-node (max ref) |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const by = (name: string) => r.engines.find((e) => e.engine === name);
    const ours = by('edgerun');
    const web = by('ort-web');
    const cpu = by('ort-node');
    const gflop = r.flops !== undefined ? (r.flops / 1e9).toFixed(3) : '–';
    const achieved = r.achievedGflops !== undefined ? r.achievedGflops.toFixed(2) : '–';
    const fraction = r.achievedGflops !== undefined && roofline ? `${((100 * r.achievedGflops) / roofline.gflops).toFixed(0)} %` : '–';
    const agreement = r.agreement ? `${r.agreement.maxAbs.toExponential(2)} (${r.agreement.maxRef.toFixed(3)})` : '–';
    lines.push(`| ${path.basename(r.model)} | ${ratio(web?.medianMs ?? NaN, ours?.medianMs ?? NaN)} | ${ratio(web?.coldStartMs ?? NaN, ours?.coldStartMs ?? NaN)} | ${ratio(ours?.medianMs ?? NaN, cpu?.medianMs ?? NaN)} | ${gflop} | ${achieved} | ${fraction} | ${r.pipelines ?? '–'} / ${r.dispatches ?? '–'} | ${agreement} |`);
  }
  if (roofline) lines.push('', `Matmul roofline measured by the benchmark on this adapter: FP32 ${roofline.n}³ MatMul at ${roofline.gflops.toFixed(2)} GFLOP/s (edgerun's kernel).`);
  return lines.join('\n');
}

/** Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` (appending the section if absent). */
export async function updateGeneratedSection(file: string, name: string, body: string): Promise<void> {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let text = '';
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    text = '# Benchmarks\n';
  }
  const block = `${start}\n${body}\n${end}`;
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? `${text.slice(0, i)}${block}${text.slice(j + end.length)}` : `${text.trimEnd()}\n\n${block}\n`;
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, text);
  await fs.rename(temp, file);
}
