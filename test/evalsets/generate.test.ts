/** Eval set generation: deterministic bytes, dictionary-safe labels, disjoint splits, and clear errors. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { decodeLabel, encodeLabel, loadRecDictionary } from '../../daemon/evalsets/dictionary.ts';
import { registerFonts } from '../../daemon/evalsets/fonts.ts';
import { assertEvalTask, buildEvalSets, setStrings, TINY_SIZES, type LabelledSet } from '../../daemon/evalsets/generate.ts';
import { createRng } from '../../daemon/evalsets/random.ts';
import { assertDisjoint, LineSource, TEXT_POOLS } from '../../daemon/evalsets/text-lines.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');

function hashSets(sets: LabelledSet[]): string {
  const hash = createHash('sha256');
  for (const set of sets) {
    for (const { input, ...rest } of set.items) {
      hash.update(JSON.stringify(rest));
      hash.update(new Uint8Array((input.data as Float32Array).buffer));
    }
  }
  return hash.digest('hex');
}

async function hashFolder(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const files = (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
  for (const file of files) hash.update(file).update(await fs.readFile(path.join(dir, file)));
  return hash.digest('hex');
}

const first = buildEvalSets(TINY_SIZES);

t.test('building the same sizes twice gives the same inputs and labels, bit for bit', async (t) => {
  const second = buildEvalSets(TINY_SIZES);
  t.equal(hashSets([...second.calib, ...second.test]), hashSets([...first.calib, ...first.test]));
});

t.test('make-evalsets writes byte-identical folders from two separate processes', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-evalsets-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const make = (out: string) => run(process.execPath, ['--import', 'tsx', path.join(root, 'bench/make-evalsets.ts'), '--size', 'tiny', '--out', out], { cwd: root });
  await make(path.join(dir, 'a'));
  await make(path.join(dir, 'b'));
  t.equal(await hashFolder(path.join(dir, 'a')), await hashFolder(path.join(dir, 'b')));
  const entries = await fs.readdir(path.join(dir, 'a', 'calib', 'rec'));
  t.equal(entries.length, TINY_SIZES.calib.rec.clean + TINY_SIZES.calib.rec.degraded, 'calib folders hold only the .npy samples');
  t.ok(entries.every((e) => e.endsWith('.npy')));
  t.same((await fs.readdir(dir)).sort(), ['a', 'b'], 'no temp folders left behind');
});

t.test('calibration and test splits share no string, in any task', async (t) => {
  const calib = first.calib.flatMap(setStrings);
  const test = first.test.flatMap(setStrings);
  t.ok(calib.length > 0 && test.length > 0);
  t.notOk(calib.some((s) => test.includes(s)));
  t.equal(new Set(test).size, test.length, 'no string repeats within a split');
  await expectEdgerunError(t, () => assertDisjoint(['a', 'shared'], ['shared', 'b']), 'EDGERUN_ERR_EVALSET', /'shared'.*both/);
});

t.test('a line source never returns an excluded string', async (t) => {
  const excluded = new Set<string>();
  const probe = new LineSource(createRng(5));
  for (let i = 0; i < 50; i++) excluded.add(probe.next('latin'));
  const source = new LineSource(createRng(5), excluded);
  for (let i = 0; i < 50; i++) t.notOk(excluded.has(source.next('latin')));
});

t.test('every character the sets can draw is in the dictionary and labels round-trip through it', async (t) => {
  const dictionary = await loadRecDictionary();
  t.equal(dictionary.classes.length, 6625, 'blank + 6,623 keys + space');
  t.equal(dictionary.classes[0], '');
  t.equal(dictionary.classes[6624], ' ');
  const characters = new Set([...TEXT_POOLS.words.join(' '), ...TEXT_POOLS.chinese, ...'0123456789$.-:_@()!?,EURSDINVOFZ']);
  t.same([...characters].filter((c) => !dictionary.indexOf.has(c)), [], 'no character outside the dictionary');
  const labels = first.test.flatMap(setStrings);
  t.same(labels.map((label) => decodeLabel(dictionary, encodeLabel(dictionary, label))), labels);
  await expectEdgerunError(t, () => encodeLabel(dictionary, 'ok\u2603'), 'EDGERUN_ERR_EVALSET', /'\u2603'.*U\+2603.*outside the recognition dictionary/);
});

t.test('rendered inputs have the PaddleOCR shapes and are not blank', async (t) => {
  for (const set of first.test) {
    for (const item of set.items) {
      const [n, c, h, w] = item.input.dims;
      t.same([n, c], [1, 3]);
      if (set.task === 'ppocr-rec') t.ok(h === 48 && [320, 480, 640].includes(w), `rec ${item.id} is 48×${w}`);
      if (set.task === 'ppocr-cls') t.same([h, w], [48, 192]);
      if (set.task === 'ppocr-det') t.same([h, w], [TINY_SIZES.test.det.pageSize, TINY_SIZES.test.det.pageSize]);
      let low = Infinity;
      let high = -Infinity;
      for (const v of item.input.data as Float32Array) { low = Math.min(low, v); high = Math.max(high, v); }
      // low-contrast lines span about 30 grey levels: 0.24 in the normalised range
      t.ok(high - low > 0.2, `${item.id} has ink`);
    }
  }
});

t.test('an unknown task and a missing font file are errors that name them', async (t) => {
  await expectEdgerunError(t, () => assertEvalTask('ppocr-table'), 'EDGERUN_ERR_EVALSET', /'ppocr-table'/);
  await expectEdgerunError(t, () => registerFonts([{ family: 'EvalMissing', file: '/nonexistent/Missing.ttf', scripts: ['latin'] }]),
    'EDGERUN_ERR_EVALSET', /\/nonexistent\/Missing\.ttf/);
});
