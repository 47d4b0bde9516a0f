/** The compression table as Markdown, and its marked section in docs/BENCHMARKS.md (replaced in place, written atomically). */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EdgerunError } from '../daemon/errors.ts';
import type { CompareRow } from './quant-table.ts';

export const SECTION_BEGIN = '<!-- edgerun bench --compare: begin (generated; edit the command, not the table) -->';
export const SECTION_END = '<!-- edgerun bench --compare: end -->';

function mb(bytes: number | undefined): string {
  return bytes === undefined ? '–' : `${(bytes / 1e6).toFixed(2)} MB`;
}

function ms(value: number | undefined): string {
  if (value === undefined) return '–';
  return value >= 100 ? `${value.toFixed(0)} ms` : `${value.toFixed(1)} ms`;
}

function pct(value: number): string {
  return `${(value * 100).toFixed(2)} %`;
}

function signed(points: number): string {
  const rounded = Math.abs(points) < 0.005 ? 0 : points;
  return `${rounded > 0 ? '+' : rounded < 0 ? '−' : '±'}${Math.abs(rounded).toFixed(2)}`;
}

/** [clean, degraded] cells of the accuracy column. */
function accuracyCells(row: CompareRow): [string, string] {
  const a = row.accuracy;
  switch (a.task) {
    case 'ppocr-rec': return [`${pct(a.clean.charAccuracy)} (lines ${pct(a.clean.lineAccuracy)})`, `${pct(a.degraded.charAccuracy)} (lines ${pct(a.degraded.lineAccuracy)})`];
    case 'ppocr-det': return [`hmean ${pct(a.clean.hmean)} (P ${pct(a.clean.precision)} R ${pct(a.clean.recall)})`, `hmean ${pct(a.degraded.hmean)} (P ${pct(a.degraded.precision)} R ${pct(a.degraded.recall)})`];
    case 'ppocr-cls': return [`${pct(a.accuracy)} (${a.lines} lines)`, '–'];
    case 'agreement': return [`eval-set agreement ${pct(a.fraction)} (${a.cases} cases)`, '–'];
    default: return ['–', '–'];
  }
}

export function compareTable(rows: readonly CompareRow[]): string {
  const header = '| model | task | precision | size | × smaller | edgerun WebGPU | ORT CPU | accuracy: clean | accuracy: degraded | Δ vs FP32 (pt) | GPU memory | peak RSS edgerun / ORT | max abs(edgerun − ORT) |';
  const lines = [header, `|${' --- |'.repeat(13)}`];
  for (const row of rows) {
    const [clean, degraded] = accuracyCells(row);
    const delta = row.deltaPoints ? row.deltaPoints.map(signed).join(' / ') : '–';
    const agreement = row.agreement ? `${row.agreement.maxAbs.toExponential(2)} (of ${row.agreement.maxRef.toFixed(3)})` : '–';
    lines.push(`| ${row.label} | ${row.task ?? '–'} | ${row.precision} | ${mb(row.modelBytes)} | ${row.sizeRatio === undefined ? '–' : `${row.sizeRatio.toFixed(2)}×`} | `
      + `${ms(row.latencyMs.edgerun)} | ${ms(row.latencyMs['ort-node'])} | ${clean} | ${degraded} | ${delta} | ${mb(row.gpuBytes)} | `
      + `${mb(row.peakRssBytes.edgerun)} / ${mb(row.peakRssBytes['ort-node'])} | ${agreement} |`);
  }
  const errors = rows.flatMap((r) => r.latencyErrors.map((e) => `- ${r.label}: ${e}`));
  return [...lines, ...(errors.length > 0 ? ['', 'Latency not measured:', ...errors] : [])].join('\n');
}

export function machineDescription(rows: readonly CompareRow[]): string {
  const cpus = os.cpus();
  const adapter = rows.find((r) => r.adapter)?.adapter;
  return `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, `
    + `${os.type()} ${os.release()}, Node ${process.version}${adapter ? `, WebGPU adapter: ${adapter}` : ''}`;
}

export function compareSection(rows: readonly CompareRow[], command: string, date = new Date()): string {
  return [
    SECTION_BEGIN,
    '## Compression: FP32 / FP16 / INT8 / INT4 / mixed on the PaddleOCR models',
    '',
    `Command: \`${command}\` · ${date.toISOString().slice(0, 10)}`,
    '',
    `Machine: ${machineDescription(rows)}`,
    '',
    compareTable(rows),
    '',
    'Size: model.onnx and its external data; × smaller against the FP32 model of the same task. Latency: steady median in a',
    'fresh process (edgerun on WebGPU, onnxruntime-node on the CPU) on rec 1×3×48×320, det the test pages, cls 1×3×48×192.',
    'Accuracy: the test split of the rendered eval sets (docs/ACCURACY.md) — rec: character accuracy after CTC greedy',
    'decoding (exact lines in brackets); det: hmean at IoU ≥ 0.5; cls: 0°/180° accuracy. Δ: clean / degraded points',
    'against FP32. GPU memory: edgerun\'s activation + constant buffers. Peak RSS: the measuring process.',
    SECTION_END,
  ].join('\n');
}

/** Replaces the marked section of `docsPath` (or appends it), through a temp file and a rename. */
export async function writeDocsSection(docsPath: string, section: string): Promise<void> {
  let text = '';
  try {
    text = await fs.readFile(docsPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new EdgerunError('EDGERUN_ERR_IO', `${docsPath}: cannot read (${(error as Error).message})`, { file: docsPath }, { cause: error });
    }
  }
  const begin = text.indexOf(SECTION_BEGIN);
  const end = text.indexOf(SECTION_END);
  let next: string;
  if (begin >= 0 && end > begin) next = `${text.slice(0, begin)}${section}${text.slice(end + SECTION_END.length)}`;
  else next = `${text}${text.length === 0 || text.endsWith('\n\n') ? '' : text.endsWith('\n') ? '\n' : '\n\n'}${section}\n`;
  const temp = path.join(path.dirname(docsPath), `.${path.basename(docsPath)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx');
    try {
      await handle.writeFile(next);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, docsPath);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw new EdgerunError('EDGERUN_ERR_IO', `${docsPath}: cannot write (${(error as Error).message})`, { file: docsPath }, { cause: error });
  }
}
