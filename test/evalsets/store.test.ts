/** Eval sets on disk: a written set reads back the same, and broken sets are errors naming the set and item. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildEvalSets, TINY_SIZES } from '../../daemon/evalsets/generate.ts';
import { readLabelledSet, writeEvalSets } from '../../daemon/evalsets/store.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const sizes = structuredClone(TINY_SIZES);
sizes.calib.det = { ...sizes.calib.det, clean: 0, degraded: 0 };
sizes.test.det = { ...sizes.test.det, clean: 0, degraded: 0 };
const sets = buildEvalSets(sizes, ['ppocr-rec', 'ppocr-cls']);
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-evalstore-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const out = path.join(dir, 'sets');
await writeEvalSets(out, sets, sizes);

t.test('a written set reads back with the same labels and inputs', async (t) => {
  const rec = await readLabelledSet(out, 'test', 'ppocr-rec');
  const original = sets.test.find((s) => s.task === 'ppocr-rec')!;
  t.equal(rec.items.length, original.items.length);
  t.same(rec.items.map((i) => 'label' in i && i.label), original.items.map((i) => 'label' in i && i.label));
  t.same(rec.items[3].input, original.items[3].input);
  const cls = await readLabelledSet(out, 'calib', 'ppocr-cls');
  t.equal(cls.items.length, sizes.calib.cls);
});

t.test('rewriting replaces the folder whole', async (t) => {
  await fs.writeFile(path.join(out, 'stale.txt'), 'x');
  await writeEvalSets(out, sets, sizes);
  await t.rejects(fs.access(path.join(out, 'stale.txt')));
  t.same((await fs.readdir(dir)).sort(), ['sets']);
});

t.test('a missing set, a bad label and a missing input are errors naming the set and item', async (t) => {
  await expectEdgerunError(t, readLabelledSet(out, 'test', 'ppocr-det'), 'EDGERUN_ERR_EVALSET', /det\.json.*cannot be read/);
  await expectEdgerunError(t, readLabelledSet(out, 'test', 'ppocr-kie'), 'EDGERUN_ERR_EVALSET', /'ppocr-kie'/);
  const broken = path.join(dir, 'broken');
  await fs.cp(out, broken, { recursive: true });
  const labels = JSON.parse(await fs.readFile(path.join(broken, 'test', 'rec.json'), 'utf8'));
  delete labels.items[1].label;
  await fs.writeFile(path.join(broken, 'test', 'rec.json'), JSON.stringify(labels));
  await expectEdgerunError(t, readLabelledSet(broken, 'test', 'ppocr-rec'), 'EDGERUN_ERR_EVALSET', new RegExp(`'${labels.items[1].id}'.*'label'`));
  await fs.rm(path.join(broken, 'test', 'cls', 'cls-0002.npy'));
  await expectEdgerunError(t, readLabelledSet(broken, 'test', 'ppocr-cls'), 'EDGERUN_ERR_EVALSET', /'cls-0002'/);
});
