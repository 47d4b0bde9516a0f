/**
 * The per-model state the manager keeps: the active version, the previous one while the active one is on
 * probation, the candidate being loaded, versions draining, and the outcome of versions no longer loaded —
 * and the ModelInfo built from it (live state wins over history).
 */
import type { TensorInfo } from '../engine/types.ts';
import { compareVersions } from '../package/versions.ts';
import type { LoadedVersion } from './loaded-version.ts';
import type { Probation } from './probation.ts';
import type { GateSummary, ModelInfo, ModelState, ModelVersionInfo } from './registry.ts';

/** Versions no longer loaded whose outcome (failed, rolled back, replaced, unloaded) get() still shows. */
const MAX_HISTORY = 16;

export interface CandidateState {
  version: string;
  engine: string;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  /** The pipeline stage: reading, loading, warming up, accuracy gate. */
  stage: string;
}

interface Draining {
  loaded: LoadedVersion;
  state: ModelState;
  reason: string;
}

export class ModelSlot {
  active: LoadedVersion | undefined;
  previous: LoadedVersion | undefined;
  probation: Probation | undefined;
  candidate: CandidateState | undefined;
  unloaded = false;
  readonly draining = new Set<Draining>();
  readonly gates = new Map<LoadedVersion, GateSummary>();
  private readonly history = new Map<string, ModelVersionInfo>();

  constructor(readonly name: string) {}

  /** Keeps a version's final outcome (replacing an older entry for the same version). */
  remember(info: ModelVersionInfo): void {
    for (const key of this.history.keys()) if (compareVersions(key, info.version) === 0) this.history.delete(key);
    this.history.set(info.version, info);
    if (this.history.size > MAX_HISTORY) {
      const oldest = [...this.history.keys()].sort(compareVersions)[0];
      this.history.delete(oldest);
    }
  }

  startDraining(loaded: LoadedVersion, state: ModelState, reason: string): Draining {
    const entry = { loaded, state, reason };
    this.draining.add(entry);
    return entry;
  }

  finishDraining(entry: Draining): void {
    this.draining.delete(entry);
    this.remember(this.describe(entry.loaded, entry.state, entry.reason));
  }

  describe(loaded: LoadedVersion, state: ModelState, reason?: string): ModelVersionInfo {
    const gate = this.gates.get(loaded);
    return {
      name: this.name,
      version: loaded.version,
      state,
      engine: loaded.engine,
      inputs: loaded.session.inputs,
      outputs: loaded.session.outputs,
      ...(reason !== undefined ? { reason } : {}),
      ...(gate ? { gate } : {}),
    };
  }

  /** Whether any version of the model is known under `version` (live or in history). */
  knows(version: string): boolean {
    return this.info().versions.some((v) => compareVersions(v.version, version) === 0);
  }

  info(): ModelInfo {
    const versions = new Map<string, ModelVersionInfo>();
    const put = (info: ModelVersionInfo): void => {
      for (const key of versions.keys()) if (compareVersions(key, info.version) === 0) versions.delete(key);
      versions.set(info.version, info);
    };
    for (const info of this.history.values()) put(info);
    for (const entry of this.draining) {
      const leases = entry.loaded.leases;
      put(this.describe(entry.loaded, entry.state, `${entry.reason}; ${leases > 0 ? `draining ${leases} in-flight request(s)` : 'closing'}`));
    }
    if (this.candidate) {
      const { version, engine, inputs, outputs, stage } = this.candidate;
      put({ name: this.name, version, state: 'LOADING', engine, inputs, outputs, reason: stage });
    }
    if (this.previous) put(this.describe(this.previous, 'READY'));
    if (this.active) put(this.describe(this.active, 'READY'));
    return {
      name: this.name,
      ...(this.active ? { activeVersion: this.active.version } : {}),
      versions: [...versions.values()].sort((a, b) => compareVersions(a.version, b.version)),
      ...(this.previous ? { previousVersion: this.previous.version } : {}),
    };
  }
}
