/**
 * The main thread's handle on the GPU. The device lives in a worker_thread (gpu-thread.ts) that does
 * nothing but drive it; this side checks plans and inputs, sends them, and gets results back as
 * transferred ArrayBuffers. Everything expensive on the CPU (WGSL generation, tensor conversion) stays here.
 */
import { EdgerunError, isEdgerunError } from '../errors.ts';
import type { DeviceCaps } from '../kernels/types.ts';
import { logger } from '../log.ts';
import { checkInputs, checkPlan } from './plan-check.ts';
import type { ExecutionPlan, PlannedIO } from './plan.ts';
import type { AdapterReport, EventMessage, RuntimeInfo, RuntimeOptions, RuntimeStats, SessionStats, ThreadRunResult } from './protocol.ts';
import { GpuThreadClient } from './thread-client.ts';

export type { AdapterReport, RuntimeInfo as GpuRuntimeInfo, RuntimeOptions as GpuRuntimeOptions, RuntimeStats as GpuRuntimeStats, SessionStats as GpuSessionStats } from './protocol.ts';
export { CPU_ADAPTER_TOGGLES } from './protocol.ts';

const log = logger.child({ component: 'gpu' });

/**
 * How long close() waits for the GPU thread to finish queued work and exit before terminating it anyway
 * (which is only safe-ish: see thread-client.ts).
 */
const CLOSE_GRACE_MS = 30_000;

export interface GpuRunOptions {
  /** Per-dispatch GPU timestamps when the adapter has timestamp-query (one pass per step), else wall time. */
  profile?: boolean;
  /** Transfer the input ArrayBuffers to the GPU thread (they become detached here) instead of copying them. */
  transferInputs?: boolean;
}

export interface GpuRunResult {
  outputs: Map<string, ArrayBuffer>;
  /** Only when profiling: GPU time of all steps (timestamp queries), or the run's wall time as a fallback. */
  gpuMs?: number;
  /** Only when profiling with timestamp queries: summed GPU time per ONNX node. */
  perNodeMs?: Map<string, number>;
  timing?: 'timestamp-query' | 'wall-clock';
}

export interface GpuSession {
  readonly id: number;
  readonly stats: SessionStats;
  readonly inputs: readonly PlannedIO[];
  readonly outputs: readonly PlannedIO[];
  /** Inputs arrive in GPU layout (4 bytes per element), one ArrayBuffer per planned input. */
  run(inputs: Map<string, ArrayBuffer>, opts?: GpuRunOptions): Promise<GpuRunResult>;
  /** Waits for queued runs, then frees the session's GPU resources. Idempotent. */
  dispose(): Promise<void>;
}

export interface LoadPlanOptions {
  /** Transfer the constants' ArrayBuffers (they become detached here) instead of copying them. */
  transferConstants?: boolean;
}

export class GpuRuntime {
  /** Everything the GPU thread reported at start (adapter, caps, toggles). */
  readonly info: RuntimeInfo;
  readonly caps: DeviceCaps;
  readonly adapter: AdapterReport;
  /** Binding offsets in a plan must be multiples of this. */
  readonly minStorageBufferOffsetAlignment: number;
  /** The Dawn instance flags in force (CPU_ADAPTER_TOGGLES by default on CPU adapters). */
  readonly dawnToggles: readonly string[];
  readonly timestampQuery: boolean;
  private closing: Promise<void> | null = null;
  private readonly sessions = new Set<GpuSessionHandle>();

  private constructor(private readonly thread: GpuThreadClient, info: RuntimeInfo) {
    this.info = info;
    this.caps = { ...info.caps, features: new Set(info.caps.features) };
    this.adapter = info.adapter;
    this.minStorageBufferOffsetAlignment = info.minStorageBufferOffsetAlignment;
    this.dawnToggles = info.dawnToggles;
    this.timestampQuery = info.timestampQuery;
  }

  static async start(options: RuntimeOptions = {}): Promise<GpuRuntime> {
    const thread = GpuThreadClient.spawn(logThreadEvent);
    try {
      const info = await thread.request<RuntimeInfo>({ op: 'init', options });
      return new GpuRuntime(thread, info);
    } catch (error) {
      await thread.shutdown('the GPU runtime failed to start', CLOSE_GRACE_MS);
      throw error;
    }
  }

  /** True once the device is lost or the GPU thread died: every call now fails with EDGERUN_ERR_GPU_LOST. */
  get lost(): boolean {
    return this.thread.deadError !== null && this.closing === null;
  }

  /** Compiles every pipeline (in parallel, shared through the cache), allocates buffers, uploads constants. */
  async loadPlan(plan: ExecutionPlan, options: LoadPlanOptions = {}): Promise<GpuSession> {
    this.assertOpen();
    checkPlan(plan, this.caps, this.minStorageBufferOffsetAlignment);
    const transfer = options.transferConstants ? plan.constants.map((c) => c.data) : [];
    const loaded = await this.thread.request<{ session: number; stats: SessionStats }>({ op: 'load', plan }, transfer);
    const session = new GpuSessionHandle(this.thread, loaded.session, loaded.stats, plan.inputs, plan.outputs, (s) => this.sessions.delete(s));
    this.sessions.add(session);
    return session;
  }

  /** Pool, cache and submission counters of the GPU thread. */
  stats(): Promise<RuntimeStats> {
    this.assertOpen();
    return this.thread.request<RuntimeStats>({ op: 'stats' });
  }

  /** Lets queued runs finish, frees everything, destroys the device and ends the GPU thread. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const session of this.sessions) session.markClosed();
      await this.thread.shutdown('the GPU runtime is closed', CLOSE_GRACE_MS);
    })();
    return this.closing;
  }

  /** Diagnostics (and tests): makes the GPU thread throw an uncaught exception, as a bug would; the runtime is then lost. */
  async debugCrashThread(): Promise<void> {
    await this.thread.request({ op: 'crash' }).catch((error: unknown) => {
      if (!isEdgerunError(error, 'EDGERUN_ERR_GPU_LOST')) throw error;
    });
  }

  /** Diagnostics (and tests): destroys the device, as a driver reset would; the runtime is then lost. */
  async debugDestroyDevice(): Promise<void> {
    // The loss is reported as an event, usually before the reply: being lost is the expected outcome.
    await this.thread.request({ op: 'destroyDevice' }).catch((error: unknown) => {
      if (!isEdgerunError(error, 'EDGERUN_ERR_GPU_LOST')) throw error;
    });
  }

  private assertOpen(): void {
    if (this.closing) throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', 'the GPU runtime is closed', {});
    if (this.thread.deadError) throw this.thread.deadError;
  }
}

class GpuSessionHandle implements GpuSession {
  private disposing: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly thread: GpuThreadClient,
    readonly id: number,
    readonly stats: SessionStats,
    readonly inputs: readonly PlannedIO[],
    readonly outputs: readonly PlannedIO[],
    private readonly onDisposed: (session: GpuSessionHandle) => void,
  ) {}

  async run(inputs: Map<string, ArrayBuffer>, opts: GpuRunOptions = {}): Promise<GpuRunResult> {
    if (this.disposing || this.closed) {
      throw new EdgerunError('EDGERUN_ERR_SESSION_CLOSED', `GPU session ${this.id} was disposed`, { session: this.id });
    }
    checkInputs(this.inputs, inputs);
    const transfer = opts.transferInputs ? [...inputs.values()] : [];
    return this.thread.request<ThreadRunResult>({ op: 'run', session: this.id, inputs, profile: opts.profile === true }, transfer);
  }

  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      try {
        if (!this.closed && !this.thread.deadError) await this.thread.request({ op: 'dispose', session: this.id });
      } finally {
        this.onDisposed(this);
      }
    })();
    return this.disposing;
  }

  /** The runtime is closing: it frees the session itself. */
  markClosed(): void {
    this.closed = true;
  }
}

/** Lists every WebGPU adapter, from a short-lived GPU thread (dawn.node never loads on the main thread). */
export async function listAdapters(): Promise<AdapterReport[]> {
  const thread = GpuThreadClient.spawn(logThreadEvent);
  try {
    return await thread.request<AdapterReport[]>({ op: 'listAdapters' });
  } finally {
    await thread.shutdown('adapter listing finished', CLOSE_GRACE_MS);
  }
}

function logThreadEvent(event: EventMessage): void {
  if (event.kind === 'log') log[event.level](event.context ?? {}, event.msg);
  else if (event.kind === 'lost') log.error({ reason: event.reason }, event.message);
}
