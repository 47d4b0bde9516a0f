/**
 * Worker: onnxruntime-web's WebGPU execution provider on Dawn (npm `webgpu`), the peer edgerun is measured
 * against on the same adapter. It runs in a worker of its own because dawn.node crashes when the thread that
 * owns the device blocks (ENVIRONMENT.md). Messages: { modelPath, inputs: [{name, dims, data}], runs } →
 * { coldStartMs, firstRunMs, times, outputs } or { error }.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { create, globals } from 'webgpu';

interface Request {
  modelPath: string;
  inputs: { name: string; dims: number[]; data: Float32Array }[];
  runs: number;
  warmup: number;
}

async function main(request: Request): Promise<void> {
  const started = performance.now();
  process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
  // dawn.node rejects views of SharedArrayBuffers, which onnxruntime-web's wasm heap may be: copy them first.
  const writeBuffer = GPUQueue.prototype.writeBuffer;
  GPUQueue.prototype.writeBuffer = function patched(this: GPUQueue, buffer: GPUBuffer, offset: number, data: ArrayBuffer | ArrayBufferView | SharedArrayBuffer, dataOffset?: number, size?: number) {
    let source = data as ArrayBufferView | ArrayBuffer;
    if (ArrayBuffer.isView(source) && source.buffer instanceof SharedArrayBuffer) source = new Uint8Array(new Uint8Array(source.buffer, source.byteOffset, source.byteLength));
    else if (source instanceof SharedArrayBuffer) source = new Uint8Array(new Uint8Array(source));
    if (ArrayBuffer.isView(source) && source !== data) {
      const element = (data as ArrayBufferView & { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      return writeBuffer.call(this, buffer, offset, source, (dataOffset ?? 0) * element, size === undefined ? undefined : size * element);
    }
    return writeBuffer.call(this, buffer, offset, source as ArrayBuffer, dataOffset, size);
  } as typeof writeBuffer;
  const ort = await import('onnxruntime-web/webgpu');
  ort.env.logLevel = 'error';
  const bytes = await fs.readFile(request.modelPath);
  const session = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ['webgpu'] });
  const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
  for (const input of request.inputs) feeds[input.name] = new ort.Tensor('float32', input.data, input.dims);
  const firstStarted = performance.now();
  let result = await session.run(feeds);
  const firstRunMs = performance.now() - firstStarted;
  const coldStartMs = performance.now() - started;
  for (let i = 0; i < request.warmup; i++) result = await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < request.runs; i++) {
    const t0 = performance.now();
    result = await session.run(feeds);
    times.push(performance.now() - t0);
  }
  const outputs = Object.fromEntries(Object.entries(result).map(([name, t]) => [name, { dims: [...t.dims], data: Float32Array.from(t.data as Float32Array) }]));
  parentPort!.postMessage({ coldStartMs, firstRunMs, times, outputs });
  await session.release();
}

main(workerData as Request).catch((error: unknown) => {
  parentPort!.postMessage({ error: (error as Error).stack ?? String(error) });
});
