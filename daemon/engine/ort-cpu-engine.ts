/**
 * The CPU engine: onnxruntime-node, the default where the only WebGPU adapter is a software one. Packages are
 * standard ONNX, so onnxruntime runs them as they are. Each session lives in its own worker thread
 * (ort-thread.ts) because onnxruntime-node's run() blocks the thread that calls it; sessions of different
 * models therefore also run in parallel.
 */
import fs from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { EdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, type Tensor } from '../graph/ir.ts';
import { logger } from '../log.ts';
import { startModuleWorker } from '../util/worker.ts';
import { validateFeeds } from './feeds.ts';
import type { OrtLoaded, OrtReply, OrtRequest, OrtRunResult, OrtSessionOptions } from './ort-protocol.ts';
import type { Engine, LoadOptions, PrepareReport, RunResult, Session, TensorInfo } from './types.ts';

const log = logger.child({ component: 'ort-cpu-engine' });

export type OrtCpuEngineOptions = OrtSessionOptions;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** The serving thread's end of one onnxruntime thread: numbered requests, and a dead thread fails every call. */
class OrtThread {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: EdgerunError | null = null;
  private readonly exited: Promise<void>;

  constructor(private readonly worker: Worker, private readonly modelPath: string) {
    // Unref'd while idle so an open session does not keep a CLI process alive; ref'd while calls are pending.
    worker.unref();
    worker.on('message', (reply: OrtReply) => this.receive(reply));
    worker.on('error', (error) => this.fail(`the onnxruntime thread for ${modelPath} crashed: ${error.message}`));
    worker.on('messageerror', (error) => this.fail(`a message from the onnxruntime thread for ${modelPath} could not be decoded: ${error.message}`));
    this.exited = new Promise((resolve) => worker.once('exit', (code) => {
      this.fail(`the onnxruntime thread for ${modelPath} exited (code ${code})`);
      resolve();
    }));
  }

  request<T>(message: OrtRequest, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (this.pending.size === 1) this.worker.ref();
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  /** Asks the thread to release its session and exit; terminates it if it does not within `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.dead) {
      const timer = setTimeout(() => void this.worker.terminate(), graceMs);
      await this.request({ op: 'close' }).catch(() => undefined);
      await this.exited;
      clearTimeout(timer);
    }
  }

  private receive(reply: OrtReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.settled(reply.id);
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(reply.error.code
      ? new EdgerunError(reply.error.code, reply.error.message, reply.error.context ?? {})
      : new EdgerunError('EDGERUN_ERR_ENGINE', `onnxruntime thread for ${this.modelPath}: ${reply.error.message}`, { model: this.modelPath }));
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  private fail(message: string): void {
    this.dead ??= new EdgerunError('EDGERUN_ERR_ENGINE', message, { model: this.modelPath });
    for (const [id, pending] of [...this.pending]) {
      this.settled(id);
      pending.reject(this.dead);
    }
  }
}

/** How long close() waits for a session's thread to release onnxruntime and exit before terminating it. */
const CLOSE_GRACE_MS = 10_000;

export class OrtCpuEngine implements Engine {
  readonly name = 'onnxruntime-cpu';
  private readonly sessions = new Set<OrtCpuSession>();
  private closed = false;

  private constructor(private readonly options: OrtCpuEngineOptions) {}

  static async create(options: OrtCpuEngineOptions = {}): Promise<OrtCpuEngine> {
    return new OrtCpuEngine(options);
  }

  async load(modelPath: string, options: LoadOptions = {}): Promise<OrtCpuSession> {
    if (this.closed) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', 'the onnxruntime CPU engine is closed');
    try {
      await fs.access(modelPath);
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_IO', `cannot read model file ${modelPath}: ${(error as Error).message}`, { file: modelPath }, { cause: error });
    }
    const thread = new OrtThread(startModuleWorker(import.meta.url, 'ort-thread', { name: 'edgerun-ort' }), modelPath);
    let loaded: OrtLoaded;
    try {
      loaded = await thread.request<OrtLoaded>({ op: 'load', modelPath, options: this.options });
    } catch (error) {
      await thread.shutdown(CLOSE_GRACE_MS);
      throw error;
    }
    const session = new OrtCpuSession(thread, modelPath, loaded, () => this.sessions.delete(session));
    this.sessions.add(session);
    if (options.inputShapes) {
      try {
        await session.prepare(options.inputShapes);
      } catch (error) {
        await session.close();
        throw error;
      }
    }
    log.debug({ model: modelPath, inputs: loaded.inputs, outputs: loaded.outputs }, 'loaded model');
    return session;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.sessions].map((session) => session.close()));
  }
}

export class OrtCpuSession implements Session {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  private closing: Promise<void> | null = null;

  constructor(private readonly thread: OrtThread, readonly modelPath: string, loaded: OrtLoaded, private readonly onClose: () => void) {
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
  }

  /**
   * onnxruntime has nothing to compile per shape, but its first run of a shape allocates and plans memory:
   * a run on zeros moves that cost off the first request.
   */
  async prepare(inputShapes: Map<string, number[]>): Promise<PrepareReport> {
    const feeds = new Map<string, Tensor>();
    for (const input of this.inputs) {
      const dims = inputShapes.get(input.name);
      if (!dims) throw new EdgerunError('EDGERUN_ERR_INPUT', `prepare: no shape given for input '${input.name}'`, { input: input.name });
      const count = elementCount(dims);
      feeds.set(input.name, { dtype: input.dtype, dims, data: isFloatDType(input.dtype) ? new Float32Array(count) : new Int32Array(count) });
    }
    const result = await this.run(feeds);
    // The warm-up run is this engine's load-side cost; onnxruntime does not expose plan statistics.
    return { compileMs: 0, gpuLoadMs: result.timings.totalMs, pipelines: 0, dispatches: 0, flops: 0, activationBytes: 0, constantBytes: 0 };
  }

  async run(feeds: Map<string, Tensor>): Promise<RunResult> {
    if (this.closing) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', `the session for ${this.modelPath} is closed`, { model: this.modelPath });
    const started = performance.now();
    validateFeeds(this.inputs, feeds);
    // Structured clone copies the inputs: the caller keeps its tensors usable.
    const result = await this.thread.request<OrtRunResult>({ op: 'run', feeds: [...feeds] });
    return {
      outputs: new Map(result.outputs),
      timings: { totalMs: performance.now() - started, compileMs: 0 },
    };
  }

  /** Waits for queued runs (they are ahead of it on the thread), then frees onnxruntime's session. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.thread.shutdown(CLOSE_GRACE_MS);
      } finally {
        this.onClose();
      }
    })();
    return this.closing;
  }
}
