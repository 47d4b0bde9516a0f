/**
 * An onnxruntime thread: holds one InferenceSession and runs it. onnxruntime-node's run() is synchronous
 * native code on the calling thread (measured: a 340 ms model stalls the event loop for 340 ms), so serving
 * keeps it off the main thread. Tensor conversions (int64, float16, bool) happen here too.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import type { Dim } from '../graph/ir.ts';
import type { OrtLoaded, OrtReply, OrtRequestMessage, OrtRunResult, OrtSessionOptions } from './ort-protocol.ts';
import { dtypeOfOrtType, fromOrtTensor, toOrtTensor } from './ort-tensors.ts';
import type { TensorInfo } from './types.ts';

const port = parentPort;
if (!port) throw new Error('ort-thread.ts must run in a worker thread');

let session: ort.InferenceSession | null = null;
let modelPath = '';

function describe(metadata: readonly ort.InferenceSession.ValueMetadata[], kind: 'input' | 'output'): TensorInfo[] {
  return metadata.map((value) => {
    if (!value.isTensor) {
      throw new EdgerunError('EDGERUN_ERR_ENGINE', `${kind} '${value.name}' of ${modelPath} is not a tensor (sequences and maps are not served)`, { [kind]: value.name, model: modelPath });
    }
    const dtype = dtypeOfOrtType(value.type);
    if (!dtype) {
      throw new EdgerunError('EDGERUN_ERR_ENGINE', `${kind} '${value.name}' of ${modelPath} has element type ${value.type}, which edgerun does not serve`, { [kind]: value.name, model: modelPath, type: value.type });
    }
    // onnxruntime reports a dynamic dim by its symbolic name, '' when the model leaves it unnamed.
    const dims: Dim[] = value.shape.map((d) => (typeof d === 'number' ? d : d === '' ? null : d));
    return { name: value.name, dtype, dims };
  });
}

async function load(path: string, options: OrtSessionOptions): Promise<OrtLoaded> {
  modelPath = path;
  try {
    session = await ort.InferenceSession.create(path, {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' }, inter_op: { allow_spinning: options.allowSpinning ? '1' : '0' } } },
      ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
    });
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_ENGINE', `onnxruntime could not load ${path}: ${(error as Error).message}`, { model: path }, { cause: error });
  }
  return { inputs: describe(session.inputMetadata, 'input'), outputs: describe(session.outputMetadata, 'output') };
}

async function run(request: Extract<OrtRequestMessage, { op: 'run' }>): Promise<{ value: OrtRunResult; transfer: ArrayBuffer[] }> {
  if (!session) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', `the onnxruntime session for ${modelPath} is not open`, { model: modelPath });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of request.feeds) feeds[name] = toOrtTensor(tensor);
  const started = performance.now();
  let results: ort.InferenceSession.ReturnType;
  try {
    results = await session.run(feeds);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_ENGINE', `onnxruntime failed running ${modelPath}: ${(error as Error).message}`, { model: modelPath }, { cause: error });
  }
  const computeMs = performance.now() - started;
  const outputs: OrtRunResult['outputs'] = [];
  const transfer: ArrayBuffer[] = [];
  for (const name of session.outputNames) {
    const tensor = fromOrtTensor(name, results[name] as ort.Tensor);
    outputs.push([name, tensor]);
    transfer.push(tensor.data.buffer as ArrayBuffer);
  }
  for (const value of Object.values(results)) value.dispose();
  return { value: { outputs, computeMs }, transfer };
}

async function handle(message: OrtRequestMessage): Promise<void> {
  try {
    let reply: { value: unknown; transfer: ArrayBuffer[] };
    switch (message.op) {
      case 'load': reply = { value: await load(message.modelPath, message.options), transfer: [] }; break;
      case 'run': reply = await run(message); break;
      case 'close':
        await session?.release();
        session = null;
        reply = { value: null, transfer: [] };
        break;
    }
    port!.postMessage({ id: message.id, ok: true, value: reply.value } satisfies OrtReply, reply.transfer);
    if (message.op === 'close') port!.close();
  } catch (error) {
    const serialized = isEdgerunError(error)
      ? { message: error.message, code: error.code, context: error.context }
      : { message: (error as Error).message ?? String(error) };
    port!.postMessage({ id: message.id, ok: false, error: serialized } satisfies OrtReply);
  }
}

port.on('message', (message: OrtRequestMessage) => void handle(message));
