/**
 * Eval sets on disk. Layout under DIR:
 *   calib/{rec,det,cls}/<id>.npy   one model input (name `x`) per file: what `edgerun compress --calib` reads
 *   test/{rec,det,cls}/<id>.npy    test inputs, same form
 *   <split>/<folder>.json          labels and how each item was made (font, size, degradation)
 *   manifest.json, README.txt
 * The whole folder is built under a temp name and renamed into place: a reader never sees half a set.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { encodeNpy, readNpyFile } from '../util/npy.ts';
import { FONT_FACES } from './fonts.ts';
import { assertEvalTask, type EvalSetSizes, type EvalTask, type LabelledSet, type Split } from './generate.ts';

export const EVALSETS_FORMAT = 'edgerun-evalsets/1';

export const TASK_FOLDERS: Record<EvalTask, string> = { 'ppocr-rec': 'rec', 'ppocr-det': 'det', 'ppocr-cls': 'cls' };

interface StoredSet {
  format: typeof EVALSETS_FORMAT;
  task: EvalTask;
  split: Split;
  items: (Record<string, unknown> & { id: string; file: string })[];
}

function readme(sizes: EvalSetSizes): string {
  return `edgerun eval sets (${EVALSETS_FORMAT}), written by: node --import tsx bench/make-evalsets.ts
Calibration folders for \`edgerun compress --calib DIR --task TASK\` (one .npy per sample, float32 1x3xHxW,
the models' single input \`x\`; a folder holds nothing but .npy files):
  calib/rec  ppocr-rec  ${sizes.calib.rec.clean} clean + ${sizes.calib.rec.degraded} degraded lines, 1x3x48xW, W in {320, 480, 640}
  calib/det  ppocr-det  ${sizes.calib.det.clean + sizes.calib.det.degraded} pages, 1x3x${sizes.calib.det.pageSize}x${sizes.calib.det.pageSize}
  calib/cls  ppocr-cls  ${sizes.calib.cls} lines, 1x3x48x192
Test sets (never share a string with calib): test/rec, test/det, test/cls with labels in test/<folder>.json.
Metrics and how the sets are built: docs/ACCURACY.md.
`;
}

function storedItems(set: LabelledSet): StoredSet['items'] {
  return set.items.map(({ input: _input, ...rest }) => ({ ...rest, file: `${TASK_FOLDERS[set.task]}/${rest.id}.npy` }));
}

async function writeSync(filePath: string, bytes: Uint8Array | string): Promise<void> {
  const handle = await fs.open(filePath, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes both splits to `outDir`, replacing what was there only once the new sets are complete. */
export async function writeEvalSets(outDir: string, sets: { calib: LabelledSet[]; test: LabelledSet[] }, sizes: EvalSetSizes): Promise<void> {
  const target = path.resolve(outDir);
  const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await fs.mkdir(path.dirname(target), { recursive: true });
    for (const set of [...sets.calib, ...sets.test]) {
      const folder = path.join(temp, set.split, TASK_FOLDERS[set.task]);
      await fs.mkdir(folder, { recursive: true });
      for (const item of set.items) await writeSync(path.join(folder, `${item.id}.npy`), encodeNpy(item.input));
      const stored: StoredSet = { format: EVALSETS_FORMAT, task: set.task, split: set.split, items: storedItems(set) };
      await writeSync(path.join(temp, set.split, `${TASK_FOLDERS[set.task]}.json`), `${JSON.stringify(stored, null, 1)}\n`);
    }
    const manifest = { format: EVALSETS_FORMAT, sizes, fonts: FONT_FACES.map((f) => ({ family: f.family, file: f.file })) };
    await writeSync(path.join(temp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writeSync(path.join(temp, 'README.txt'), readme(sizes));
    const old = `${target}.old-${randomBytes(6).toString('hex')}`;
    const hadOld = await fs.rename(target, old).then(() => true, (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    });
    await fs.rename(temp, target);
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
  } catch (error) {
    await fs.rm(temp, { recursive: true, force: true });
    if (isEdgerunError(error)) throw error;
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `eval sets cannot be written to ${target} (${(error as Error).message})`, { set: target }, { cause: error });
  }
}

function setError(source: string, reason: string, cause?: unknown): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_EVALSET', `eval set ${source}: ${reason}`, { set: source }, cause === undefined ? undefined : { cause });
}

function checkItem(task: EvalTask, item: Record<string, unknown>, source: string): void {
  const id = String(item.id);
  const wrong = (field: string) => setError(source, `item '${id}' has no valid '${field}'`);
  if (typeof item.id !== 'string' || typeof item.file !== 'string') throw wrong(typeof item.id !== 'string' ? 'id' : 'file');
  if (item.file.split('/').some((part) => part === '..' || part === '') || path.isAbsolute(item.file)) throw wrong('file');
  if (task === 'ppocr-rec' && (typeof item.label !== 'string' || (item.variant !== 'clean' && item.variant !== 'degraded'))) throw wrong(typeof item.label !== 'string' ? 'label' : 'variant');
  if (task === 'ppocr-det' && (!Array.isArray(item.boxes) || (item.variant !== 'clean' && item.variant !== 'degraded'))) throw wrong(Array.isArray(item.boxes) ? 'variant' : 'boxes');
  if (task === 'ppocr-cls' && typeof item.rotated !== 'boolean') throw wrong('rotated');
}

/** Reads one split of one task, inputs included. */
export async function readLabelledSet(dir: string, split: Split, taskName: string): Promise<LabelledSet> {
  const task = assertEvalTask(taskName);
  const root = path.join(dir, split);
  const source = path.join(root, `${TASK_FOLDERS[task]}.json`);
  let stored: StoredSet;
  try {
    stored = JSON.parse(await fs.readFile(source, 'utf8')) as StoredSet;
  } catch (error) {
    throw setError(source, `cannot be read (${(error as Error).message}); build the sets with bench/make-evalsets.ts`, error);
  }
  if (stored?.format !== EVALSETS_FORMAT || stored.task !== task || !Array.isArray(stored.items)) {
    throw setError(source, `is not a ${task} set in format ${EVALSETS_FORMAT}`);
  }
  const items = [];
  for (const item of stored.items) {
    checkItem(task, item, source);
    let input;
    try {
      input = await readNpyFile(path.join(root, item.file));
    } catch (error) {
      throw setError(source, `item '${item.id}': ${(error as Error).message}`, error);
    }
    if (input.dtype !== 'float32' || input.dims.length !== 4 || input.dims[1] !== 3) {
      throw setError(source, `item '${item.id}' input is ${input.dtype} [${input.dims.join(', ')}], expected float32 [1, 3, H, W]`);
    }
    const { file: _file, ...rest } = item;
    items.push({ ...rest, input });
  }
  return { task, split, items } as LabelledSet;
}
