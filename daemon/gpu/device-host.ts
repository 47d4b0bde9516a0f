/**
 * Everything the GPU thread owns for one device: the device, the one buffer pool, the one pipeline cache,
 * the one submission tracker, and the loaded sessions. Lives only on the GPU thread.
 */
import { EdgerunError } from '../errors.ts';
import { deviceCaps, openDevice, selectAdapter } from './adapters.ts';
import { BufferPool } from './buffer-pool.ts';
import { SubmissionTracker } from './lifetimes.ts';
import { PipelineCache } from './pipeline-cache.ts';
import type { ExecutionPlan } from './plan.ts';
import type { EventMessage, RuntimeInfo, RuntimeOptions, RuntimeStats, SessionStats, ThreadRunResult } from './protocol.ts';
import { SessionHost, type HostContext } from './session-host.ts';

const DEFAULT_POOL_IDLE_BYTES = 64 * 1024 * 1024;
const DEFAULT_IDLE_PIPELINES = 256;

export type HostEvents = (event: EventMessage) => void;

export class GpuHost {
  private readonly sessions = new Map<number, SessionHost>();
  private nextSession = 1;
  private lost: EdgerunError | null = null;
  private closing: Promise<void> | null = null;
  private readonly ctx: HostContext;

  private constructor(
    /** Held so dawn.node keeps the instance alive as long as the device. */
    private readonly gpu: GPU,
    private readonly device: GPUDevice,
    readonly info: RuntimeInfo,
    options: RuntimeOptions,
    private readonly emit: HostEvents,
  ) {
    const tracker = new SubmissionTracker(device.queue, (error) =>
      emit({ kind: 'log', level: 'error', msg: 'releasing a GPU resource failed', context: { error: String(error) } }));
    this.ctx = {
      device,
      pool: new BufferPool(device, options.poolIdleBytes ?? DEFAULT_POOL_IDLE_BYTES),
      pipelines: new PipelineCache(device, options.idlePipelines ?? DEFAULT_IDLE_PIPELINES),
      tracker,
      timestampQuery: info.timestampQuery,
      lostError: () => this.lost,
    };
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      emit({ kind: 'log', level: 'warn', msg: 'uncaptured WebGPU error', context: { error: event.error.message } });
    };
    void device.lost.then((lostInfo) => {
      if (this.closing) return;
      this.lost = new EdgerunError('EDGERUN_ERR_GPU_LOST', `GPU device lost (${lostInfo.reason}): ${lostInfo.message}`,
        { reason: lostInfo.reason });
      tracker.abandon();
      emit({ kind: 'lost', reason: String(lostInfo.reason), message: this.lost.message });
    });
  }

  static async open(options: RuntimeOptions, emit: HostEvents): Promise<GpuHost> {
    const selected = await selectAdapter(options);
    const device = await openDevice(selected.adapter);
    const info: RuntimeInfo = {
      adapter: selected.report,
      caps: deviceCaps(device, selected.report, selected.gpu.wgslLanguageFeatures ?? []),
      minStorageBufferOffsetAlignment: device.limits.minStorageBufferOffsetAlignment,
      dawnToggles: selected.dawnToggles,
      timestampQuery: device.features.has('timestamp-query'),
    };
    emit({ kind: 'log', level: 'debug', msg: 'GPU device ready',
      context: { adapter: selected.report.name, backend: selected.report.backend, cpu: selected.report.isCpu, dawnToggles: selected.dawnToggles } });
    return new GpuHost(selected.gpu, device, info, options, emit);
  }

  get lostError(): EdgerunError | null {
    return this.lost;
  }

  async load(plan: ExecutionPlan): Promise<{ session: number; stats: SessionStats }> {
    this.assertUsable();
    const id = this.nextSession++;
    const session = await SessionHost.load(this.ctx, id, plan);
    if (this.closing || this.lost) {
      await session.dispose();
      this.assertUsable();
    }
    this.sessions.set(id, session);
    return { session: id, stats: session.stats };
  }

  run(id: number, inputs: Map<string, ArrayBuffer>, profile: boolean): Promise<ThreadRunResult> {
    this.assertUsable();
    return this.session(id).run(inputs, profile);
  }

  async dispose(id: number): Promise<void> {
    const session = this.sessions.get(id);
    if (!session) return;
    await session.dispose();
    this.sessions.delete(id);
  }

  stats(): RuntimeStats {
    return {
      sessions: this.sessions.size,
      ...this.ctx.pipelines.stats(),
      ...this.ctx.pool.stats(),
      submitted: this.ctx.tracker.submittedSerial,
      completed: this.ctx.tracker.completedSerial,
    };
  }

  /** Lets queued runs finish, releases everything, destroys the device. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.sessions.values()].map((s) => s.dispose()));
      this.sessions.clear();
      if (!this.lost) await this.ctx.tracker.idle();
      this.ctx.pool.clear();
      this.ctx.pipelines.clear();
      this.device.destroy();
      // Let Dawn deliver the loss callback now rather than into a thread that is exiting.
      await Promise.race([this.device.lost, new Promise((resolve) => setTimeout(resolve, 2000))]);
    })();
    return this.closing;
  }

  /** Diagnostics: makes the device lost, as a driver reset would. */
  destroyDevice(): void {
    this.device.destroy();
  }

  private session(id: number): SessionHost {
    const session = this.sessions.get(id);
    if (!session) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', `GPU session ${id} is not loaded (disposed?)`, { session: id });
    return session;
  }

  private assertUsable(): void {
    if (this.lost) throw this.lost;
    if (this.closing) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', 'the GPU runtime is closing', {});
  }
}
