/**
 * A small in-memory ModelRegistry for serving tests: real sessions from a real engine, leases counted per
 * version, unload and replacement drain in-flight requests before closing a session. (The daemon's registry,
 * with the store, gates and probation, lives in daemon/swap/.)
 */
import type { Engine, Session } from '../../../daemon/engine/types.ts';
import { EdgerunError } from '../../../daemon/errors.ts';
import type { Lease, ModelInfo, ModelRegistry, ModelVersionInfo } from '../../../daemon/swap/registry.ts';

interface VersionEntry {
  info: ModelVersionInfo;
  session?: Session;
  inFlight: number;
  drained?: () => void;
}

interface ModelEntry {
  source?: string;
  active?: string;
  versions: Map<string, VersionEntry>;
}

export interface ReleaseOutcome {
  model: string;
  version: string;
  outcome?: { ok: boolean; latencyMs: number };
}

export class MemoryModelRegistry implements ModelRegistry {
  private readonly models = new Map<string, ModelEntry>();
  /** Every lease release, in order (what probation would watch). */
  readonly releases: ReleaseOutcome[] = [];

  /** `sources`: model name → ONNX file that load(name) serves (as version "1", then "2", … on reloads). */
  constructor(private readonly engine: Engine, sources: Record<string, string> = {}) {
    for (const [name, source] of Object.entries(sources)) this.models.set(name, { source, versions: new Map() });
  }

  list(): ModelInfo[] {
    return [...this.models.keys()].map((name) => this.get(name)!);
  }

  get(name: string): ModelInfo | undefined {
    const model = this.models.get(name);
    if (!model) return undefined;
    return { name, ...(model.active ? { activeVersion: model.active } : {}), versions: [...model.versions.values()].map((v) => ({ ...v.info })) };
  }

  acquire(name: string, version?: string): Lease {
    const model = this.models.get(name);
    if (!model) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}'`, { model: name });
    const wanted = version ?? model.active;
    if (wanted === undefined) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_READY', `model '${name}' has no active version`, { model: name });
    const entry = model.versions.get(wanted);
    if (!entry) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model '${name}' has no version '${wanted}'`, { model: name, version: wanted });
    if (entry.info.state !== 'READY' || !entry.session) {
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_READY', `model '${name}' version ${wanted} is ${entry.info.state}`, { model: name, version: wanted });
    }
    entry.inFlight++;
    let released = false;
    return {
      name, version: wanted, engine: entry.info.engine, session: entry.session,
      release: (outcome) => {
        if (released) throw new Error(`lease of ${name} version ${wanted} released twice`);
        released = true;
        this.releases.push({ model: name, version: wanted, ...(outcome ? { outcome } : {}) });
        entry.inFlight--;
        if (entry.inFlight === 0) entry.drained?.();
      },
    };
  }

  /** Leases not yet released for a model version. */
  inFlight(name: string, version: string): number {
    return this.models.get(name)?.versions.get(version)?.inFlight ?? 0;
  }

  /** Loads `source` as `version` of `name`; activates it (draining and closing the previous one) unless told not to. */
  async addVersion(name: string, version: string, source: string, options: { activate?: boolean } = {}): Promise<ModelInfo> {
    let model = this.models.get(name);
    if (!model) {
      model = { versions: new Map() };
      this.models.set(name, model);
    }
    const entry: VersionEntry = { info: { name, version, state: 'LOADING', engine: this.engine.name, inputs: [], outputs: [] }, inFlight: 0 };
    model.versions.set(version, entry);
    try {
      entry.session = await this.engine.load(source);
      entry.info = { ...entry.info, state: 'READY', inputs: entry.session.inputs, outputs: entry.session.outputs };
    } catch (error) {
      entry.info = { ...entry.info, state: 'FAILED', reason: (error as Error).message };
      return this.get(name)!;
    }
    if (options.activate !== false) {
      const previous = model.active;
      model.active = version;
      if (previous !== undefined && previous !== version) await this.retire(model.versions.get(previous)!, 'replaced');
    }
    return this.get(name)!;
  }

  async load(name: string): Promise<ModelInfo> {
    const model = this.models.get(name);
    if (!model?.source) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}' in the models folder`, { model: name });
    return this.addVersion(name, String(model.versions.size + 1), model.source);
  }

  async unload(name: string): Promise<void> {
    const model = this.models.get(name);
    if (!model) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}'`, { model: name });
    const active = model.active;
    model.active = undefined;
    await Promise.all([...model.versions.values()].filter((v) => v.session || v.info.version === active).map((v) => this.retire(v, 'unloaded')));
  }

  async close(): Promise<void> {
    for (const name of this.models.keys()) await this.unload(name);
  }

  /** Stops new leases, waits for in-flight ones, then closes the session. */
  private async retire(entry: VersionEntry, reason: string): Promise<void> {
    entry.info = { ...entry.info, state: 'UNAVAILABLE', reason };
    if (entry.inFlight > 0) await new Promise<void>((resolve) => { entry.drained = resolve; });
    const session = entry.session;
    entry.session = undefined;
    await session?.close();
  }
}
