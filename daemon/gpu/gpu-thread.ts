/**
 * The GPU thread (a worker_thread). It does nothing but drive the device: dawn.node crashes when the thread
 * owning a device blocks for more than a millisecond or two, so WGSL generation, parsing and tensor
 * conversion stay on the main thread, and nothing here runs a long synchronous loop.
 */
import { parentPort } from 'node:worker_threads';
import { EdgerunError } from '../errors.ts';
import { listAdapterReports } from './adapters.ts';
import { drainDawnPromises } from './dawn-promises.ts';
import { GpuHost } from './device-host.ts';
import type { EventMessage, RequestMessage, ResponseMessage, SerializedError, ThreadRunResult } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('gpu-thread.ts must run in a worker_thread (use GpuRuntime.start())');

let host: GpuHost | null = null;
let opening: Promise<GpuHost> | null = null;
let exiting = false;

/** How long the thread waits for Dawn to settle its promises before exiting anyway. */
const DRAIN_MS = 5000;

const emit = (event: EventMessage): void => port.postMessage(event);

function serialize(error: unknown): SerializedError {
  if (error instanceof EdgerunError) return { code: error.code, message: error.message, context: error.context, stack: error.stack };
  const e = error instanceof Error ? error : new Error(String(error));
  return { message: e.message, stack: e.stack };
}

function requireHost(): GpuHost {
  if (!host) throw new EdgerunError('EDGERUN_ERR_GPU_UNAVAILABLE', 'the GPU thread has no device (init failed or not sent)', {});
  return host;
}

async function handle(request: RequestMessage): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (request.op) {
    case 'init':
      opening ??= GpuHost.open(request.options, emit);
      host = await opening;
      return { value: host.info, transfer: [] };
    case 'listAdapters':
      return { value: await listAdapterReports(), transfer: [] };
    case 'load':
      return { value: await requireHost().load(request.plan), transfer: [] };
    case 'run': {
      const result: ThreadRunResult = await requireHost().run(request.session, request.inputs, request.profile);
      return { value: result, transfer: [...result.outputs.values()] };
    }
    case 'dispose':
      await requireHost().dispose(request.session);
      return { value: null, transfer: [] };
    case 'stats':
      return { value: requireHost().stats(), transfer: [] };
    case 'close':
      await host?.close();
      setImmediate(() => void exitThread(0));
      return { value: null, transfer: [] };
    case 'destroyDevice':
      requireHost().destroyDevice();
      return { value: null, transfer: [] };
    case 'crash':
      setImmediate(() => { throw new Error('deliberate GPU thread crash (diagnostics)'); });
      return { value: null, transfer: [] };
  }
}

/**
 * The only way this thread ends: from here, between Dawn calls, once Dawn has no promise pending. Being
 * terminated from outside while inside Dawn, or with a Dawn promise pending, aborts the whole process.
 */
async function exitThread(code: number): Promise<void> {
  exiting = true;
  await drainDawnPromises(DRAIN_MS);
  process.exit(code);
}

/** A bug on this thread: report the runtime lost (the main thread rejects every call), then end cleanly. */
function crashed(error: unknown): void {
  if (exiting) return;
  const message = `the GPU thread crashed: ${error instanceof Error ? error.message : String(error)}`;
  emit({ kind: 'lost', reason: 'crashed', message });
  try {
    host?.destroyDevice();
  } finally {
    void exitThread(1);
  }
}
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

port.on('message', (request: RequestMessage) => {
  if (exiting) {
    const error = new EdgerunError('EDGERUN_ERR_GPU_LOST', 'the GPU thread is shutting down', {});
    port.postMessage({ kind: 'response', id: request.id, ok: false, error: serialize(error) } satisfies ResponseMessage);
    return;
  }
  handle(request).then(
    ({ value, transfer }) => port.postMessage({ kind: 'response', id: request.id, ok: true, value } satisfies ResponseMessage, transfer),
    (error: unknown) => {
      const reported = host?.lostError ?? error;
      port.postMessage({ kind: 'response', id: request.id, ok: false, error: serialize(reported) } satisfies ResponseMessage);
    },
  );
});
