/**
 * Reads a folder of .npy samples for `--calib` and `--eval`: for a single-input model the .npy files directly in
 * the folder; for several inputs a subfolder per input name with the same file names in each. A file holds one
 * sample (the input's rank minus the batch dim, or the full rank with batch 1) or a batch along dim 0, which is
 * split into single samples. Every problem names the file: wrong dtype or shape, NaN/Inf, unreadable, none at all.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError, isEdgerunError, type ErrorCode } from '../errors.ts';
import { isFloatDType, type Tensor } from '../graph/ir.ts';
import { readNpyFile } from '../util/npy.ts';
import type { ValueSpec } from './ort-runner.ts';

export interface Sample {
  /** The file (or file stem, for multi-input samples) and batch index it came from. */
  source: string;
  feeds: Record<string, Tensor>;
}

async function listEntries(dir: string, code: ErrorCode, what: string): Promise<import('node:fs').Dirent[]> {
  try {
    return (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  } catch (error) {
    throw new EdgerunError(code, `${what} folder ${dir} cannot be read (${(error as Error).message})`, { file: dir }, { cause: error });
  }
}

export async function readSampleFolder(dir: string, inputs: readonly ValueSpec[], code: ErrorCode, what: string): Promise<Sample[]> {
  const entries = await listEntries(dir, code, what);
  const fail = (file: string, reason: string): EdgerunError => new EdgerunError(code, `${what} ${file}: ${reason}`, { file });
  const perInput = new Map<string, string[]>();
  if (inputs.length === 1) {
    perInput.set(inputs[0]!.name, entries.filter((e) => e.isFile() && e.name.endsWith('.npy')).map((e) => path.join(dir, e.name)));
  } else {
    const known = new Map(inputs.map((i) => [safeName(i.name), i.name]));
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const input = known.get(entry.name);
      if (!input) throw fail(path.join(dir, entry.name), `is not a model input (inputs: ${inputs.map((i) => i.name).join(', ')})`);
      const files = (await listEntries(path.join(dir, entry.name), code, what)).filter((e) => e.isFile() && e.name.endsWith('.npy'));
      perInput.set(input, files.map((e) => path.join(dir, entry.name, e.name)));
    }
    for (const input of inputs) if (!perInput.has(input.name)) throw fail(path.join(dir, safeName(input.name)), `is missing: a subfolder per model input is needed`);
  }
  const counts = [...perInput.values()].map((files) => files.length);
  if (counts.every((n) => n === 0)) throw fail(dir, 'holds no .npy files');
  const first = [...perInput.values()][0]!;
  for (const [input, files] of perInput) {
    const names = files.map((f) => path.basename(f));
    const expected = first.map((f) => path.basename(f));
    if (names.join('\n') !== expected.join('\n')) {
      throw fail(path.join(dir, safeName(input)), 'does not hold the same file names as the other input folders');
    }
  }

  const samples: Sample[] = [];
  for (let f = 0; f < first.length; f++) {
    const batches = new Map<string, Tensor[]>();
    for (const input of inputs) {
      const file = perInput.get(input.name)![f]!;
      batches.set(input.name, splitBatch(await readChecked(file, input, fail), input));
    }
    const sizes = new Set([...batches.values()].map((b) => b.length));
    if (sizes.size !== 1) throw fail(first[f]!, 'the inputs of this sample hold different batch sizes');
    const count = [...sizes][0]!;
    for (let b = 0; b < count; b++) {
      const feeds: Record<string, Tensor> = {};
      for (const [name, list] of batches) feeds[name] = list[b]!;
      samples.push({ source: count > 1 ? `${first[f]!}[${b}]` : first[f]!, feeds });
    }
  }
  return samples;
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function readChecked(file: string, input: ValueSpec, fail: (file: string, reason: string) => EdgerunError): Promise<Tensor> {
  let tensor: Tensor;
  try {
    tensor = await readNpyFile(file);
  } catch (error) {
    if (isEdgerunError(error)) throw fail(file, error.message.startsWith(`${file}: `) ? error.message.slice(file.length + 2) : error.message);
    throw error;
  }
  if (tensor.dtype !== input.dtype) throw fail(file, `holds ${tensor.dtype} but model input '${input.name}' is ${input.dtype}`);
  const rank = input.dims.length;
  let dims = tensor.dims;
  if (dims.length === rank - 1) dims = [1, ...dims];
  if (dims.length !== rank) {
    throw fail(file, `has shape (${tensor.dims.join(', ')}) but model input '${input.name}' has rank ${rank} [${input.dims.map((d) => d ?? '?').join(', ')}]`);
  }
  for (let i = 1; i < rank; i++) {
    const declared = input.dims[i];
    if (typeof declared === 'number' && declared !== dims[i]) {
      throw fail(file, `has shape (${tensor.dims.join(', ')}) but model input '${input.name}' needs dim ${i} = ${declared}`);
    }
  }
  if (dims[0] === 0) throw fail(file, 'holds an empty batch');
  if (isFloatDType(tensor.dtype)) {
    const bad = tensor.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw fail(file, `holds ${tensor.data[bad]} at flat index ${bad}; calibration data must be finite`);
  }
  return { ...tensor, dims };
}

function splitBatch(tensor: Tensor, input: ValueSpec): Tensor[] {
  const batch = tensor.dims[0]!;
  const declaredBatch = input.dims[0];
  if (batch === 1 || (typeof declaredBatch === 'number' && declaredBatch === batch)) return [tensor];
  const per = tensor.data.length / batch;
  const dims = [1, ...tensor.dims.slice(1)];
  return Array.from({ length: batch }, (_, b) => ({ dtype: tensor.dtype, dims, data: tensor.data.slice(b * per, (b + 1) * per) }));
}
