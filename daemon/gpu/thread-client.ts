/**
 * The main thread's end of the GPU thread: spawns the worker, numbers requests, matches responses, and
 * turns a dead worker or a lost device into EDGERUN_ERR_GPU_LOST for every pending and later call (never
 * a hang). The worker is ref'd only while calls are pending, so an idle runtime does not keep a CLI alive.
 *
 * The thread is never ended with Worker.terminate() while it may be inside Dawn: a native call made while
 * the isolate is terminating aborts the whole process (napi_throw fails → FATAL ERROR). shutdown() asks the
 * thread to release everything and exit by itself; terminate() is the last resort for a hung thread.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { EdgerunError } from '../errors.ts';
import type { EventMessage, Request, SerializedError, ThreadMessage } from './protocol.ts';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  op: Request['op'];
}

/**
 * From compiled JS the worker runs dist/daemon/gpu/gpu-thread.js. From TypeScript sources (tsx, tap) it
 * must load gpu-thread.ts: Node 20 does not apply `--import tsx` from a Worker's execArgv to the worker's
 * entry module, so an eval'd bootstrap registers tsx's ESM hooks first and then imports the entry.
 */
function spawnGpuThread(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./gpu-thread.ts', here).href;
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(bootstrap, { eval: true, name: 'edgerun-gpu' });
  }
  return new Worker(new URL('./gpu-thread.js', here), { name: 'edgerun-gpu' });
}

function deserializeError(error: SerializedError): Error {
  if (error.code) {
    const restored = new EdgerunError(error.code, error.message, error.context ?? {});
    if (error.stack) restored.stack = error.stack;
    return restored;
  }
  const restored = new Error(error.message);
  if (error.stack) restored.stack = error.stack;
  return restored;
}

export class GpuThreadClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: EdgerunError | null = null;
  private terminating: string | null = null;
  private hasExited = false;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker, private readonly onEvent: (event: EventMessage) => void) {
    worker.unref();
    worker.on('message', (message: ThreadMessage) => this.receive(message));
    worker.on('error', (error) => this.fail(`the GPU thread crashed: ${error.message}`, error));
    worker.on('messageerror', (error) => this.fail(`a GPU thread message could not be decoded: ${error.message}`, error));
    this.exited = new Promise((resolve) => {
      worker.once('exit', (code) => {
        this.hasExited = true;
        this.fail(this.terminating ?? `the GPU thread exited (code ${code})`);
        resolve();
      });
    });
  }

  static spawn(onEvent: (event: EventMessage) => void): GpuThreadClient {
    // Dawn and Mesa read it through getenv(); a worker's process.env is a private copy, so set it here.
    process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
    return new GpuThreadClient(spawnGpuThread(), onEvent);
  }

  /** Null while the thread is alive; the error every call now fails with otherwise. */
  get deadError(): EdgerunError | null {
    return this.dead;
  }

  request<T>(request: Request, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, op: request.op });
      if (this.pending.size === 1) this.worker.ref();
      try {
        this.worker.postMessage({ ...request, id }, transfer);
      } catch (error) {
        this.settle(id);
        reject(error);
      }
    });
  }

  /** Rejects every pending call with EDGERUN_ERR_GPU_LOST; later calls fail the same way. */
  fail(message: string, cause?: unknown): void {
    this.dead ??= new EdgerunError('EDGERUN_ERR_GPU_LOST', message, {}, { cause });
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.worker.unref();
    for (const call of pending) call.reject(new EdgerunError('EDGERUN_ERR_GPU_LOST', `${this.dead.message} (during ${call.op})`, { op: call.op }));
  }

  /**
   * Asks the thread to finish queued work, free everything and exit; pending calls that remain then fail
   * with EDGERUN_ERR_GPU_LOST and `reason`. Terminates it only if it has not exited after `graceMs`.
   */
  async shutdown(reason: string, graceMs: number): Promise<void> {
    this.terminating ??= reason;
    if (!this.hasExited) {
      this.worker.ref();
      // Sent outside request(): it must also reach a thread whose device is already lost. Its reply is ignored.
      this.worker.postMessage({ op: 'close', id: 0 });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        this.exited.then(() => false),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), graceMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) await this.worker.terminate();
    }
    await this.exited;
  }

  private receive(message: ThreadMessage): void {
    if (message.kind === 'response') {
      const call = this.settle(message.id);
      if (!call) return;
      if (message.ok) call.resolve(message.value);
      else call.reject(deserializeError(message.error));
      return;
    }
    if (message.kind === 'lost') this.fail(message.message);
    this.onEvent(message);
  }

  private settle(id: number): Pending | undefined {
    const call = this.pending.get(id);
    if (!call) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    return call;
  }
}
