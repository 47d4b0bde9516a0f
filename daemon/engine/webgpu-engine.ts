/**
 * The WebGPU engine: edgerun's graph compiler and WGSL kernels, executed on the dedicated GPU thread.
 * A session compiles one ExecutionPlan per input-shape signature; every pipeline of a signature is
 * created before the signature is used.
 */
import { EdgerunError } from '../errors.ts';
import { compileModel, type CompiledModel } from '../graph/compile.ts';
import { isFloatDType, type Model, type Tensor } from '../graph/ir.ts';
import { GpuRuntime, type GpuSession } from '../gpu/gpu-runtime.ts';
import { logger } from '../log.ts';
import { loadModelFile } from '../onnx/decode.ts';
import { shapeSignature, staticShapes, toGpuLayout, validateFeeds } from './feeds.ts';
import type { Engine, LoadOptions, PrepareReport, RunResult, Session, TensorInfo } from './types.ts';

const log = logger.child({ component: 'webgpu-engine' });

interface Prepared {
  compiled: CompiledModel;
  gpu: GpuSession;
  report: PrepareReport;
}

export class WebGpuEngine implements Engine {
  readonly name = 'webgpu';
  private readonly sessions = new Set<WebGpuSession>();

  private constructor(readonly runtime: GpuRuntime) {}

  static async create(options: Parameters<typeof GpuRuntime.start>[0] = {}): Promise<WebGpuEngine> {
    return new WebGpuEngine(await GpuRuntime.start(options));
  }

  async load(modelPath: string, options: LoadOptions = {}): Promise<WebGpuSession> {
    const model = await loadModelFile(modelPath);
    return this.loadModel(model, options);
  }

  async loadModel(model: Model, options: LoadOptions = {}): Promise<WebGpuSession> {
    const session = new WebGpuSession(model, this.runtime, () => this.sessions.delete(session));
    this.sessions.add(session);
    const shapes = options.inputShapes ?? staticShapes(session.inputs);
    if (shapes) {
      try {
        await session.prepare(shapes);
      } catch (error) {
        await session.close();
        throw error;
      }
    }
    return session;
  }

  async close(): Promise<void> {
    for (const session of [...this.sessions]) await session.close();
    await this.runtime.close();
  }
}

export class WebGpuSession implements Session {
  readonly inputs: TensorInfo[];
  readonly outputs: TensorInfo[];
  private readonly prepared = new Map<string, Promise<Prepared>>();
  private closed = false;

  constructor(private readonly model: Model, private readonly runtime: GpuRuntime, private readonly onClose: () => void) {
    this.inputs = model.graph.inputs.map((i) => ({ name: i.name, dtype: i.dtype, dims: i.dims }));
    this.outputs = model.graph.outputs.map((o) => ({ name: o.name, dtype: o.dtype, dims: o.dims }));
  }

  /** The compiled plan for these shapes, once prepared (for reports and benchmarks). */
  async compiledFor(shapes: Map<string, number[]>): Promise<CompiledModel> {
    return (await this.ensure(shapes)).compiled;
  }

  async prepare(inputShapes: Map<string, number[]>): Promise<PrepareReport> {
    return (await this.ensure(inputShapes)).report;
  }

  private ensure(shapes: Map<string, number[]>): Promise<Prepared> {
    this.assertOpen();
    const signature = shapeSignature(shapes);
    let entry = this.prepared.get(signature);
    if (!entry) {
      entry = this.compile(shapes);
      this.prepared.set(signature, entry);
      entry.catch(() => this.prepared.delete(signature));
    }
    return entry;
  }

  private async compile(shapes: Map<string, number[]>): Promise<Prepared> {
    const compiled = compileModel(this.model, { inputShapes: shapes, caps: this.runtime.caps });
    const started = performance.now();
    const gpu = await this.runtime.loadPlan(compiled.plan);
    const gpuLoadMs = performance.now() - started;
    const report: PrepareReport = {
      compileMs: compiled.stats.compileMs,
      gpuLoadMs,
      pipelines: compiled.stats.pipelines,
      dispatches: compiled.stats.dispatches,
      flops: compiled.stats.flops,
      activationBytes: compiled.stats.activationBytes,
      constantBytes: compiled.stats.constantBytes,
    };
    log.debug({ signature: shapeSignature(shapes), ...report }, 'prepared shape signature');
    return { compiled, gpu, report };
  }

  async run(feeds: Map<string, Tensor>, options: { profile?: boolean } = {}): Promise<RunResult> {
    this.assertOpen();
    const started = performance.now();
    const shapes = validateFeeds(this.inputs, feeds);
    const signature = shapeSignature(shapes);
    const wasPrepared = this.prepared.has(signature);
    const prepared = await this.ensure(shapes);
    const compileMs = wasPrepared ? 0 : performance.now() - started;
    if (!wasPrepared) log.info({ signature }, 'compiled a new input shape signature on first use');
    const inputs = new Map<string, ArrayBuffer>();
    for (const input of prepared.compiled.inputs) inputs.set(input.name, toGpuLayout(feeds.get(input.name)!));
    const result = await prepared.gpu.run(inputs, { profile: options.profile ?? false, transferInputs: true });
    const outputs = new Map<string, Tensor>();
    for (const output of prepared.compiled.outputs) {
      if (output.constant) {
        outputs.set(output.name, output.constant);
        continue;
      }
      const bytes = result.outputs.get(output.name);
      if (!bytes) throw new EdgerunError('EDGERUN_ERR_GPU_LOST', `the GPU thread returned no data for output '${output.name}'`, { output: output.name });
      const data = isFloatDType(output.dtype) ? new Float32Array(bytes) : new Int32Array(bytes);
      outputs.set(output.name, { dtype: output.dtype, dims: output.shape, data });
    }
    return {
      outputs,
      timings: { totalMs: performance.now() - started, compileMs, ...(result.gpuMs !== undefined ? { gpuMs: result.gpuMs } : {}) },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.prepared.values()) {
      const prepared = await entry.catch(() => undefined);
      await prepared?.gpu.dispose();
    }
    this.prepared.clear();
    this.onClose();
  }

  private assertOpen(): void {
    if (this.closed) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', 'the session is closed');
  }
}
