/**
 * One loaded ExecutionPlan on the GPU thread: its pipelines (from the shared cache), its buffers (from the
 * shared pool), its bind groups (made once: plans are static), and its runs. Runs of one session are
 * serialised (they share intermediate buffers); runs of different sessions interleave freely.
 *
 * A run is: writeBuffer the inputs, encode every step into one compute pass, copy the outputs into one
 * mapped-read staging buffer, one submit, one mapAsync, copy out. No readback between ops.
 */
import { EdgerunError } from '../errors.ts';
import { MAP_MODE_READ, READBACK_USAGE, STORAGE_USAGE, type BufferPool, type PooledBuffer } from './buffer-pool.ts';
import { dawnPromise } from './dawn-promises.ts';
import { captureErrors, captureErrorsUnthrown } from './error-scopes.ts';
import type { SubmissionTracker } from './lifetimes.ts';
import type { PipelineCache } from './pipeline-cache.ts';
import type { ExecutionPlan, PlannedStep } from './plan.ts';
import type { SessionStats, ThreadRunResult } from './protocol.ts';
import { TimestampProfiler } from './timestamp-profiler.ts';

export interface HostContext {
  device: GPUDevice;
  pool: BufferPool;
  pipelines: PipelineCache;
  tracker: SubmissionTracker;
  timestampQuery: boolean;
  /** Set once the device is lost: every later operation fails with it. */
  lostError(): EdgerunError | null;
}

/** Bind groups are created in batches, yielding between them, so a huge plan never holds the thread long. */
const BIND_GROUP_BATCH = 256;
/** Constant bytes written per synchronous stretch (a writeBuffer copies its data before returning). */
const UPLOAD_SLICE_BYTES = 4 * 1024 * 1024;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const align4 = (n: number): number => Math.ceil(n / 4) * 4;

interface Acquired {
  pipelineKeys: string[];
  buffers: PooledBuffer[];
}

export class SessionHost {
  private tail: Promise<unknown> = Promise.resolve();
  private disposing: Promise<void> | null = null;
  private lastSerial = 0;
  private profiler: TimestampProfiler | null = null;
  private readonly outputOffsets: number[] = [];
  private readonly outputBytes: number;

  private constructor(
    private readonly ctx: HostContext,
    readonly id: number,
    private readonly plan: ExecutionPlan,
    private readonly pipelines: GPUComputePipeline[],
    private readonly buffers: Map<number, PooledBuffer>,
    private readonly bindGroups: GPUBindGroup[],
    private readonly acquired: Acquired,
    readonly stats: SessionStats,
  ) {
    let offset = 0;
    for (const output of plan.outputs) {
      this.outputOffsets.push(offset);
      offset += align4(output.bytes);
    }
    this.outputBytes = offset;
  }

  get label(): string {
    return `session ${this.id}`;
  }

  static async load(ctx: HostContext, id: number, plan: ExecutionPlan): Promise<SessionHost> {
    const acquired: Acquired = { pipelineKeys: [], buffers: [] };
    const release = (): void => SessionHost.releaseAcquired(ctx, acquired, null);
    try {
      const started = performance.now();
      const [pipelineResults, bufferResults] = await Promise.all([
        Promise.allSettled(plan.pipelines.map((p) => ctx.pipelines.acquire(p))),
        Promise.allSettled(plan.buffers.map((b) => ctx.pool.acquire(b.bytes, STORAGE_USAGE, `session ${id} buffer ${b.id}`))),
      ]);
      const compileMs = performance.now() - started;
      pipelineResults.forEach((r, i) => { if (r.status === 'fulfilled') acquired.pipelineKeys.push(plan.pipelines[i].key); });
      bufferResults.forEach((r) => { if (r.status === 'fulfilled') acquired.buffers.push(r.value); });
      const failed = [...pipelineResults, ...bufferResults].find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;

      const pipelines = pipelineResults.map((r) => (r as PromiseFulfilledResult<{ pipeline: GPUComputePipeline }>).value.pipeline);
      const buffers = new Map<number, PooledBuffer>();
      plan.buffers.forEach((b, i) => buffers.set(b.id, (bufferResults[i] as PromiseFulfilledResult<PooledBuffer>).value));

      const lastSerial = await SessionHost.initialiseBuffers(ctx, id, plan, buffers);
      const bindGroups = await SessionHost.createBindGroups(ctx, plan, pipelines, buffers);
      const stats: SessionStats = {
        pipelines: new Set(plan.pipelines.map((p) => p.key)).size,
        compiledPipelines: pipelineResults.filter((r) => r.status === 'fulfilled' && r.value.compiled).length,
        bufferBytes: acquired.buffers.reduce((sum, b) => sum + b.size, 0),
        constantBytes: plan.constants.reduce((sum, c) => sum + c.data.byteLength, 0),
        compileMs,
      };
      const session = new SessionHost(ctx, id, plan, pipelines, buffers, bindGroups, acquired, stats);
      session.lastSerial = lastSerial;
      return session;
    } catch (error) {
      // Nothing of this session was submitted beyond what the tracker knows: release after current work.
      ctx.tracker.afterSerial(ctx.tracker.submittedSerial, release);
      throw error;
    }
  }

  /**
   * Zero-fills reused buffers (fresh ones are zero already), then uploads the constants in slices of at
   * most UPLOAD_SLICE_BYTES per synchronous stretch, so a large model never holds the thread for long.
   */
  private static async initialiseBuffers(ctx: HostContext, id: number, plan: ExecutionPlan, buffers: Map<number, PooledBuffer>): Promise<number> {
    const { device, tracker } = ctx;
    const subject = { what: 'constant upload', label: `session ${id}`, context: { session: id } };
    let serial = 0;
    const reused = [...buffers.values()].filter((b) => b.reused);
    if (reused.length > 0) {
      serial = await captureErrors(device, subject, () => {
        const encoder = device.createCommandEncoder({ label: `session ${id} clear reused buffers` });
        for (const b of reused) encoder.clearBuffer(b.buffer);
        return tracker.submit([encoder.finish()]);
      });
    }
    let slice: (() => void)[] = [];
    let sliceBytes = 0;
    const flush = async (): Promise<void> => {
      const writes = slice;
      slice = [];
      sliceBytes = 0;
      if (writes.length > 0) await captureErrors(device, subject, () => { for (const write of writes) write(); });
    };
    for (const constant of plan.constants) {
      const target = buffers.get(constant.buffer)!.buffer;
      for (let from = 0; from < constant.data.byteLength; from += UPLOAD_SLICE_BYTES) {
        const size = Math.min(UPLOAD_SLICE_BYTES, constant.data.byteLength - from);
        slice.push(() => device.queue.writeBuffer(target, constant.offset + from, constant.data, from, size));
        sliceBytes += size;
        if (sliceBytes >= UPLOAD_SLICE_BYTES) await flush();
      }
    }
    await flush();
    return serial;
  }

  private static async createBindGroups(ctx: HostContext, plan: ExecutionPlan, pipelines: GPUComputePipeline[],
    buffers: Map<number, PooledBuffer>): Promise<GPUBindGroup[]> {
    const layouts = new Map<number, GPUBindGroupLayout>();
    const groups: GPUBindGroup[] = [];
    for (let start = 0; start < plan.steps.length; start += BIND_GROUP_BATCH) {
      const batch = plan.steps.slice(start, start + BIND_GROUP_BATCH);
      const create = (step: PlannedStep): GPUBindGroup => {
        let layout = layouts.get(step.pipeline);
        if (!layout) layouts.set(step.pipeline, layout = pipelines[step.pipeline].getBindGroupLayout(0));
        return ctx.device.createBindGroup({
          label: `${step.node} (${plan.pipelines[step.pipeline].label})`,
          layout,
          entries: step.bindings.map((b, i) => ({ binding: i, resource: { buffer: buffers.get(b.buffer)!.buffer, offset: b.offset, size: b.size } })),
        });
      };
      const subject = (step: PlannedStep) =>
        ({ what: 'bind group of node', label: step.node, context: { node: step.node, program: plan.pipelines[step.pipeline].label } });
      const { value: created, error } = await captureErrorsUnthrown(ctx.device, subject(batch[0]), () => batch.map(create));
      if (error || !created) {
        // Rare path: find the step at fault so the error names its node.
        for (const step of batch) await captureErrors(ctx.device, subject(step), () => create(step));
        throw error;
      }
      groups.push(...created);
      if (start + BIND_GROUP_BATCH < plan.steps.length) await yieldToEventLoop();
    }
    return groups;
  }

  run(inputs: Map<string, ArrayBuffer>, profile: boolean): Promise<ThreadRunResult> {
    if (this.disposing) return Promise.reject(this.closedError());
    const result = this.tail.then(() => this.execute(inputs, profile));
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Waits for queued runs, then hands everything back once the GPU is done with it. Idempotent. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      await this.tail;
      await new Promise<void>((resolve) => {
        this.ctx.tracker.afterSerial(this.lastSerial, () => {
          SessionHost.releaseAcquired(this.ctx, this.acquired, this.profiler);
          resolve();
        });
      });
    })();
    return this.disposing;
  }

  private static releaseAcquired(ctx: HostContext, acquired: Acquired, profiler: TimestampProfiler | null): void {
    for (const key of acquired.pipelineKeys) ctx.pipelines.release(key);
    for (const buffer of acquired.buffers) ctx.pool.release(buffer);
    acquired.pipelineKeys = [];
    acquired.buffers = [];
    profiler?.destroy();
  }

  private closedError(): EdgerunError {
    return new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', `GPU ${this.label} was disposed`, { session: this.id });
  }

  private async execute(inputs: Map<string, ArrayBuffer>, profile: boolean): Promise<ThreadRunResult> {
    const lost = this.ctx.lostError();
    if (lost) throw lost;
    const { device, pool, tracker } = this.ctx;
    const profiler = profile && this.ctx.timestampQuery ? await this.ensureProfiler() : null;
    const stagingBytes = Math.max(4, this.outputBytes + (profiler?.bytes ?? 0));
    const staging = await pool.acquire(stagingBytes, READBACK_USAGE, `${this.label} readback`);
    const started = performance.now();
    let mapped: Promise<undefined> | null = null;
    let serial = 0;
    try {
      serial = await captureErrors(device, { what: 'inference', label: this.label, context: { session: this.id } }, () => {
        for (const io of this.plan.inputs) {
          const data = inputs.get(io.name);
          if (!data) throw new EdgerunError('EDGERUN_ERR_INPUT', `input "${io.name}" is missing`, { input: io.name });
          device.queue.writeBuffer(this.buffers.get(io.buffer)!.buffer, io.offset, data);
        }
        const encoder = device.createCommandEncoder({ label: this.label });
        this.encodeSteps(encoder, profiler);
        this.plan.outputs.forEach((io, i) => {
          encoder.copyBufferToBuffer(this.buffers.get(io.buffer)!.buffer, io.offset, staging.buffer, this.outputOffsets[i], io.bytes);
        });
        profiler?.resolveInto(encoder, staging.buffer, this.outputBytes);
        const submitted = tracker.submit([encoder.finish()]);
        mapped = dawnPromise(staging.buffer.mapAsync(MAP_MODE_READ, 0, stagingBytes));
        return submitted;
      });
      await mapped;
    } catch (error) {
      await (mapped as Promise<undefined> | null)?.catch(() => undefined);
      if (staging.buffer.mapState === 'mapped') staging.buffer.unmap();
      tracker.afterSerial(serial || tracker.submittedSerial, () => pool.release(staging));
      throw this.ctx.lostError() ?? error;
    }
    this.lastSerial = serial;
    tracker.markCompleted(serial);
    const wallMs = performance.now() - started;
    const range = staging.buffer.getMappedRange(0, stagingBytes);
    const outputs = new Map<string, ArrayBuffer>();
    this.plan.outputs.forEach((io, i) => outputs.set(io.name, range.slice(this.outputOffsets[i], this.outputOffsets[i] + io.bytes)));
    const timestamps = profiler ? profiler.read(range, this.outputBytes) : null;
    staging.buffer.unmap();
    pool.release(staging);

    if (!profile) return { outputs };
    if (timestamps) return { outputs, ...timestamps, timing: 'timestamp-query' };
    return { outputs, gpuMs: wallMs, timing: 'wall-clock' };
  }

  private encodeSteps(encoder: GPUCommandEncoder, profiler: TimestampProfiler | null): void {
    const { steps } = this.plan;
    if (profiler) {
      // One pass per step: timestamps are written at pass boundaries.
      steps.forEach((step, i) => {
        const pass = encoder.beginComputePass({ label: step.node, timestampWrites: profiler.passWrites(i) });
        pass.setPipeline(this.pipelines[step.pipeline]);
        pass.setBindGroup(0, this.bindGroups[i]);
        pass.dispatchWorkgroups(...step.workgroups);
        pass.end();
      });
      return;
    }
    const pass = encoder.beginComputePass({ label: this.label });
    let current = -1;
    steps.forEach((step, i) => {
      if (step.pipeline !== current) pass.setPipeline(this.pipelines[current = step.pipeline]);
      pass.setBindGroup(0, this.bindGroups[i]);
      pass.dispatchWorkgroups(...step.workgroups);
    });
    pass.end();
  }

  private async ensureProfiler(): Promise<TimestampProfiler> {
    this.profiler ??= await TimestampProfiler.create(this.ctx.device, this.ctx.pool, this.plan.steps.map((s) => s.node), this.label);
    return this.profiler;
  }
}
