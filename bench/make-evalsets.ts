/**
 * Writes the OCR eval sets (calibration folders for `edgerun compress --calib` and labelled test sets):
 *   node --import tsx bench/make-evalsets.ts [--out tmp/evalsets] [--size bench|tiny] [--rec-test N] [--det-test N] [--cls-test N]
 * --rec-test / --det-test set the clean and the degraded count each; the output is byte-identical run to run.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_SIZES, buildEvalSets, TINY_SIZES, type EvalSetSizes } from '../daemon/evalsets/generate.ts';
import { writeEvalSets } from '../daemon/evalsets/store.ts';

export const DEFAULT_EVALSETS_DIR = path.resolve(import.meta.dirname, '..', 'tmp', 'evalsets');

function count(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} must be a non-negative integer, got '${value}'`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: DEFAULT_EVALSETS_DIR }, size: { type: 'string', default: 'bench' },
      'rec-test': { type: 'string' }, 'det-test': { type: 'string' }, 'cls-test': { type: 'string' },
    },
  });
  if (values.size !== 'bench' && values.size !== 'tiny') throw new Error(`--size must be bench or tiny, got '${values.size}'`);
  const base = values.size === 'tiny' ? TINY_SIZES : BENCH_SIZES;
  const sizes: EvalSetSizes = structuredClone(base);
  const rec = count(values['rec-test'], base.test.rec.clean, '--rec-test');
  const det = count(values['det-test'], base.test.det.clean, '--det-test');
  sizes.test.rec = { clean: rec, degraded: rec };
  sizes.test.det = { ...sizes.test.det, clean: det, degraded: det };
  sizes.test.cls = count(values['cls-test'], base.test.cls, '--cls-test');
  const started = performance.now();
  const sets = buildEvalSets(sizes);
  await writeEvalSets(values.out, sets, sizes);
  const items = [...sets.calib, ...sets.test].map((s) => `${s.split}/${s.task}: ${s.items.length}`).join(', ');
  process.stdout.write(`wrote ${path.resolve(values.out)} (${items}) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(1);
});
