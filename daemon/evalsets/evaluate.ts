/** Runs a model over a labelled set with any Engine and scores it by the set's task. */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import type { Engine, Session } from '../engine/types.ts';
import { matchBoxes, scoreDetection, type DetScore } from './box-match.ts';
import { ctcGreedyDecode, scoreRecognition, type RecScore } from './ctc.ts';
import { dbPostprocess } from './db-postprocess.ts';
import { loadRecDictionary, type RecDictionary } from './dictionary.ts';
import type { EvalTask, LabelledSet, Variant } from './generate.ts';

export interface RecMetrics { task: 'ppocr-rec'; clean: RecScore; degraded: RecScore; misread: { label: string; predicted: string }[] }
export interface DetMetrics { task: 'ppocr-det'; clean: DetScore; degraded: DetScore }
export interface ClsMetrics { task: 'ppocr-cls'; accuracy: number; lines: number }
export type TaskMetrics = RecMetrics | DetMetrics | ClsMetrics;

function only(outputs: Map<string, Tensor>, task: EvalTask): Tensor {
  const first = outputs.values().next();
  if (first.done) throw new EdgerunError('EDGERUN_ERR_EVALSET', `the model gave no output on the ${task} set`, { task });
  return first.value;
}

async function runOne(session: Session, input: Tensor, task: EvalTask): Promise<Tensor> {
  const name = session.inputs[0]?.name;
  if (session.inputs.length !== 1 || !name) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `the ${task} set feeds one image input; the model has ${session.inputs.length} inputs`, { task });
  }
  return only((await session.run(new Map([[name, input]]))).outputs, task);
}

async function evaluateRec(session: Session, set: Extract<LabelledSet, { task: 'ppocr-rec' }>, dictionary: RecDictionary, progress: (done: number) => void): Promise<RecMetrics> {
  const pairs: Record<Variant, { label: string; predicted: string }[]> = { clean: [], degraded: [] };
  for (const [index, item] of set.items.entries()) {
    const output = await runOne(session, item.input, set.task);
    if (output.dims.length !== 3) {
      throw new EdgerunError('EDGERUN_ERR_EVALSET', `rec output has dims [${output.dims.join(', ')}], expected [1, steps, classes]`, { task: set.task });
    }
    pairs[item.variant].push({ label: item.label, predicted: ctcGreedyDecode(output.data as Float32Array, output.dims[1], output.dims[2], dictionary) });
    progress(index + 1);
  }
  const misread = [...pairs.clean, ...pairs.degraded].filter((p) => p.label.replace(/ /g, '') !== p.predicted.replace(/ /g, ''));
  return { task: 'ppocr-rec', clean: scoreRecognition(pairs.clean), degraded: scoreRecognition(pairs.degraded), misread };
}

async function evaluateDet(session: Session, set: Extract<LabelledSet, { task: 'ppocr-det' }>, progress: (done: number) => void): Promise<DetMetrics> {
  const counts: Record<Variant, ReturnType<typeof matchBoxes>[]> = { clean: [], degraded: [] };
  for (const [index, item] of set.items.entries()) {
    const output = await runOne(session, item.input, set.task);
    const [height, width] = output.dims.slice(-2);
    if (output.dims.length !== 4 || width !== item.input.dims[3] || height !== item.input.dims[2]) {
      throw new EdgerunError('EDGERUN_ERR_EVALSET', `det output has dims [${output.dims.join(', ')}], expected [1, 1, ${item.input.dims[2]}, ${item.input.dims[3]}]`, { task: set.task });
    }
    const boxes = dbPostprocess(output.data as Float32Array, width, height, item.scale);
    counts[item.variant].push(matchBoxes(item.boxes, boxes));
    progress(index + 1);
  }
  return { task: 'ppocr-det', clean: scoreDetection(counts.clean), degraded: scoreDetection(counts.degraded) };
}

async function evaluateCls(session: Session, set: Extract<LabelledSet, { task: 'ppocr-cls' }>, progress: (done: number) => void): Promise<ClsMetrics> {
  let correct = 0;
  for (const [index, item] of set.items.entries()) {
    const output = await runOne(session, item.input, set.task);
    const scores = output.data as Float32Array;
    if (scores.length !== 2) throw new EdgerunError('EDGERUN_ERR_EVALSET', `cls output has ${scores.length} values, expected 2 (0°, 180°)`, { task: set.task });
    if ((scores[1] > scores[0]) === item.rotated) correct++;
    progress(index + 1);
  }
  return { task: 'ppocr-cls', accuracy: set.items.length === 0 ? 1 : correct / set.items.length, lines: set.items.length };
}

/** Loads `modelPath` in `engine`, runs every item of `set` and returns the task's metrics. */
export async function evaluateTask(task: EvalTask, modelPath: string, set: LabelledSet, engine: Engine,
  onProgress?: (done: number, total: number) => void): Promise<TaskMetrics> {
  if (set.task !== task) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `model task '${task}' cannot be scored on a ${set.task} set`, { task, set: set.task });
  }
  const dictionary = task === 'ppocr-rec' ? await loadRecDictionary() : undefined;
  const session = await engine.load(modelPath);
  const progress = (done: number) => onProgress?.(done, set.items.length);
  try {
    if (set.task === 'ppocr-rec') return await evaluateRec(session, set, dictionary!, progress);
    if (set.task === 'ppocr-det') return await evaluateDet(session, set, progress);
    return await evaluateCls(session, set, progress);
  } finally {
    await session.close();
  }
}
