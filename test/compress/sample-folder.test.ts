/**
 * Calibration folders: single-input files, batches split into samples, rank − 1 files, a subfolder per input for
 * multi-input models, and the errors that name the offending file or folder.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { ValueSpec } from '../../daemon/compress/ort-runner.ts';
import { readSampleFolder } from '../../daemon/compress/sample-folder.ts';
import { encodeNpy } from '../../daemon/util/npy.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { randomTensorOf } from './helpers/models.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-samples-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const image: ValueSpec = { name: 'x', dtype: 'float32', dims: ['batch', 3, 4, 4] };

async function write(file: string, dims: number[], seed = 1): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, encodeNpy(randomTensorOf(dims, seed)));
}

t.test('single-input folders: one sample per file, batches split, a missing batch dim added', async (t) => {
  const folder = path.join(dir, 'single');
  await write(path.join(folder, 'a.npy'), [1, 3, 4, 4]);
  await write(path.join(folder, 'b.npy'), [3, 3, 4, 4]);
  await write(path.join(folder, 'c.npy'), [3, 4, 4]);
  await fs.writeFile(path.join(folder, 'notes.txt'), 'ignored');
  const samples = await readSampleFolder(folder, [image], 'EDGERUN_ERR_CALIBRATION', 'calibration');
  t.equal(samples.length, 5);
  t.same(samples.map((s) => s.feeds.x!.dims), Array(5).fill([1, 3, 4, 4]));
  t.match(samples[2]!.source, /b\.npy\[1\]$/);
});

t.test('multi-input folders: a subfolder per input with matching file names', async (t) => {
  const inputs: ValueSpec[] = [image, { name: 'mask:0', dtype: 'float32', dims: [1, 4] }];
  const folder = path.join(dir, 'multi');
  for (const name of ['s1.npy', 's2.npy']) {
    await write(path.join(folder, 'x', name), [1, 3, 4, 4]);
    await write(path.join(folder, 'mask_0', name), [1, 4]);
  }
  const samples = await readSampleFolder(folder, inputs, 'EDGERUN_ERR_CALIBRATION', 'calibration');
  t.same(samples.map((s) => Object.keys(s.feeds).sort()), [['mask:0', 'x'], ['mask:0', 'x']]);

  await write(path.join(folder, 'extra', 's1.npy'), [1, 4]);
  await expectEdgerunError(t, readSampleFolder(folder, inputs, 'EDGERUN_ERR_CALIBRATION', 'calibration'), 'EDGERUN_ERR_CALIBRATION',
    /calibration .*multi\/extra: is not a model input \(inputs: x, mask:0\)/);
  await fs.rm(path.join(folder, 'extra'), { recursive: true });
  await fs.rm(path.join(folder, 'mask_0', 's2.npy'));
  await expectEdgerunError(t, readSampleFolder(folder, inputs, 'EDGERUN_ERR_CALIBRATION', 'calibration'), 'EDGERUN_ERR_CALIBRATION',
    /does not hold the same file names as the other input folders/);
  await fs.rm(path.join(folder, 'mask_0'), { recursive: true });
  await expectEdgerunError(t, readSampleFolder(folder, inputs, 'EDGERUN_ERR_CALIBRATION', 'calibration'), 'EDGERUN_ERR_CALIBRATION',
    /multi\/mask_0: is missing: a subfolder per model input is needed/);
});

t.test('unreadable files and folders name themselves', async (t) => {
  const folder = path.join(dir, 'broken');
  await fs.mkdir(folder);
  await fs.writeFile(path.join(folder, 'junk.npy'), 'not numpy');
  await expectEdgerunError(t, readSampleFolder(folder, [image], 'EDGERUN_ERR_EVALSET', 'eval'), 'EDGERUN_ERR_EVALSET', /eval .*junk\.npy: .*bad magic/);
  await expectEdgerunError(t, readSampleFolder(path.join(dir, 'nowhere'), [image], 'EDGERUN_ERR_CALIBRATION', 'calibration'), 'EDGERUN_ERR_CALIBRATION',
    /calibration folder .*nowhere cannot be read/);
  const rank = path.join(dir, 'rank');
  await write(path.join(rank, 'r.npy'), [4, 4]);
  await expectEdgerunError(t, readSampleFolder(rank, [image], 'EDGERUN_ERR_CALIBRATION', 'calibration'), 'EDGERUN_ERR_CALIBRATION',
    /r\.npy: has shape \(4, 4\) but model input 'x' has rank 4 \[batch, 3, 4, 4\]/);
});
