/**
 * The contract between serving (HTTP, CLI) and the model lifecycle (store + hot-swap). Serving never holds a
 * Session directly: it leases the version that is active now and releases it when the request is done, so a
 * swap can drain in-flight requests on the old version before freeing it.
 */
import type { Session, TensorInfo } from '../engine/types.ts';
import type { Tensor } from '../graph/ir.ts';

export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'FAILED';

export interface ModelVersionInfo {
  name: string;
  version: string;
  state: ModelState;
  /** 'webgpu' or 'onnxruntime-cpu'. */
  engine: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** Why the version is not ready (failed load, failed gate, unloaded), when it is not. */
  reason?: string;
  /** The accuracy gate's verdict, once the version went through it. */
  gate?: GateSummary;
}

export interface GateSummary {
  /** 'skipped': the package has no eval set (or the gate is disabled); `reason` says which. */
  status: 'passed' | 'failed' | 'skipped';
  /** Fraction of compared outputs that agree with the package's reference outputs. */
  agreement?: number;
  threshold?: number;
  /** Compared items (rows for argmax, elements for allclose) over all eval cases. */
  compared?: number;
  reason?: string;
}

export interface ModelInfo {
  name: string;
  /** The version serving unversioned requests, if any. */
  activeVersion?: string;
  /** Every version the registry knows (active, loading, draining, failed, previous), oldest version first. */
  versions: ModelVersionInfo[];
  /**
   * The version that served before the active one, kept loaded while the active one is on probation (the
   * rollback target); `acquire(name, previousVersion)` leases it, e.g. for shadow runs.
   */
  previousVersion?: string;
}

export interface Lease {
  readonly name: string;
  readonly version: string;
  readonly engine: string;
  readonly session: Session;
  /** Must be called exactly once when the request using the session is done (success or failure). */
  release(outcome?: { ok: boolean; latencyMs: number }): void;
}

/** One live request a version answered, as serving hands it to the registry after the reply was sent. */
export interface ShadowSample {
  model: string;
  /** The version that answered. */
  version: string;
  feeds: Map<string, Tensor>;
  /** Every output that version produced for `feeds`. */
  outputs: Map<string, Tensor>;
}

export interface ModelRegistry {
  list(): ModelInfo[];
  get(name: string): ModelInfo | undefined;
  /**
   * The session serving `name` (the active version, or exactly `version`), counted as in flight until released.
   * Throws EdgerunError EDGERUN_ERR_MODEL_NOT_FOUND / EDGERUN_ERR_MODEL_NOT_READY naming the model and version.
   */
  acquire(name: string, version?: string): Lease;
  /** Repository API: (re)load a model from the models folder or store; resolves when it serves or fails. */
  load(name: string): Promise<ModelInfo>;
  /** Repository API: stop serving a model (drains in-flight requests first). */
  unload(name: string): Promise<void>;
  /**
   * Shadow runs (optional): serving offers every successful request here once its reply was sent; while the
   * answering version is on probation the registry may run a fraction of them on the previous version and record
   * their agreement. Returns at once and never throws: it must not affect the live request.
   */
  offerShadow?(sample: ShadowSample): void;
}
