/**
 * The real ModelRegistry: serves models from the store and the models folder, and replaces a model's version
 * without dropping a request. Per model, one swap at a time runs this state machine:
 *
 *   READ (validate the package; install a folder package into the store)
 *   → LOAD (engine.load, compiling every input shape of the eval set)
 *   → WARM (warm-up runs on eval inputs, or zeros)
 *   → GATE (agreement with the package's reference outputs ≥ threshold; no eval set: skipped, and recorded so)
 *   → SWITCH (one synchronous assignment: new acquires lease the new version)
 *   → DRAIN (the old version's leases finish, then its session is closed)
 *   → PROBATION (error rate and latency of the new version; failing them switches back at once; a fraction of
 *     its live requests also run on the previous version to measure their agreement: shadow.ts).
 *
 * During probation the previous version stays loaded (memory for two versions, a rollback that is one
 * assignment with no load on the request path); it is drained and closed when probation passes. The store's
 * active pointer moves to a new version only once it is confirmed (probation passed, or nothing to roll back
 * to), so a crash during probation restarts on the last good version. A failed READ, LOAD, WARM or GATE leaves
 * the old version serving and shows up in get(name).versions[].reason and as a lifecycle event.
 */
import type { Engine, Session } from '../engine/types.ts';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import { logger } from '../log.ts';
import { compareVersions } from '../package/versions.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { LifecycleEventKind, TelemetrySink } from '../telemetry/sink.ts';
import { runGate, shapesToCompile, warmupFeeds } from './gate.ts';
import { LoadedVersion } from './loaded-version.ts';
import { type Located, ModelSources } from './model-sources.ts';
import { ModelSlot } from './model-slot.ts';
import { DEFAULT_PROBATION, Probation, type ProbationOptions, type ProbationVerdict } from './probation.ts';
import type { GateSummary, Lease, ModelInfo, ModelRegistry, ModelState, ShadowSample } from './registry.ts';
import { resolveShadowOptions, ShadowRunner, type ShadowOptions, type ShadowStats } from './shadow.ts';

const log = logger.child({ component: 'model-manager' });

export type EngineFactory = () => Promise<Engine>;

export interface ModelManagerOptions {
  /** Called once, on first need; the manager owns (and closes) the engine it returns. */
  engine: EngineFactory;
  telemetry: TelemetrySink;
  store?: ModelStore;
  /** The plain models folder (packages and bare NAME.onnx files). */
  modelsDir?: string;
  /** Warm-up runs before the gate (default 2). */
  warmupRuns?: number;
  /** enabled: false skips the gate (recorded as skipped); threshold overrides every package's threshold. */
  gate?: { enabled?: boolean; threshold?: number };
  probation?: Partial<ProbationOptions>;
  /** How long a replaced version may take to finish its in-flight requests before it is closed anyway (default 30 s). */
  drainTimeoutMs?: number;
  /** Shadow runs during probation (fraction 0 disables them); defaults in shadow.ts. */
  shadow?: Partial<ShadowOptions>;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ModelManager implements ModelRegistry {
  private readonly slots = new Map<string, ModelSlot>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly drains = new Set<Promise<void>>();
  private readonly sources: ModelSources;
  private readonly probationOptions: ProbationOptions;
  private readonly warmupRuns: number;
  private readonly drainTimeoutMs: number;
  private readonly shadow: ShadowRunner;
  private enginePromise: Promise<Engine> | undefined;
  private closing = false;

  constructor(private readonly options: ModelManagerOptions) {
    this.sources = new ModelSources(options.store, options.modelsDir);
    this.probationOptions = { ...DEFAULT_PROBATION, ...options.probation };
    this.warmupRuns = options.warmupRuns ?? 2;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    this.shadow = new ShadowRunner(resolveShadowOptions(options.shadow), options.telemetry);
    const threshold = options.gate?.threshold;
    if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) {
      throw new EdgerunError('EDGERUN_ERR_CONFIG', `swap.gate.threshold must be within [0, 1], got ${threshold}`, { key: 'swap.gate.threshold' });
    }
    const p = this.probationOptions;
    for (const [key, value] of Object.entries({ ...p, warmupRuns: this.warmupRuns, drainTimeoutMs: this.drainTimeoutMs })) {
      if (!Number.isFinite(value) || value < 0) {
        throw new EdgerunError('EDGERUN_ERR_CONFIG', `swap option ${key} must be a number >= 0, got ${value}`, { key });
      }
    }
  }

  /** Loads every model the store and the models folder hold; a model that fails is recorded, not thrown. */
  async start(): Promise<void> {
    for (const name of await this.sources.names()) {
      await this.load(name).catch((error: unknown) => log.error({ model: name, err: message(error) }, 'a model could not be loaded at start'));
    }
  }

  list(): ModelInfo[] {
    return [...this.slots.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((slot) => slot.info());
  }

  get(name: string): ModelInfo | undefined {
    return this.slots.get(name)?.info();
  }

  acquire(name: string, version?: string): Lease {
    const slot = this.slots.get(name);
    if (!slot) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}'`, { model: name });
    const target = version === undefined
      ? slot.active
      : [slot.active, slot.previous].find((v) => v !== undefined && compareVersions(v.version, version) === 0);
    if (target && !target.retired && !this.closing) return target.lease();
    if (version !== undefined && !slot.knows(version)) {
      const known = slot.info().versions.map((v) => v.version).join(', ') || 'none';
      throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model '${name}' has no version '${version}' (known: ${known})`, { model: name, version });
    }
    const versions = slot.info().versions;
    const described = version !== undefined ? versions.find((v) => compareVersions(v.version, version) === 0) : versions.at(-1);
    const why = this.closing ? 'the model manager is shutting down'
      : slot.unloaded ? 'it was unloaded'
        : described?.reason ?? (slot.candidate ? 'it is still loading' : 'no version is ready');
    throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_READY',
      `model '${name}'${version !== undefined ? ` version '${version}'` : ''} is not ready: ${why}`, { model: name, ...(version !== undefined ? { version } : {}) });
  }

  /** Shadow-runs the sample on the previous version when its version is on probation and it is drawn; returns at once. */
  offerShadow(sample: ShadowSample): void {
    const slot = this.slots.get(sample.model);
    const candidate = slot?.active;
    if (!slot?.probation?.active || !candidate || !slot.previous || compareVersions(candidate.version, sample.version) !== 0) return;
    if (this.shadow.draw()) this.shadow.run(candidate, slot.previous, sample);
  }

  /** Counters of the shadow runs so far (sampled, dropped, failed, compared, in flight). */
  shadowStats(): ShadowStats {
    return { ...this.shadow.stats };
  }

  /** Serves the version the sources hold now (hot-swapping if it differs from the active one). */
  load(name: string): Promise<ModelInfo> {
    return this.serialized(name, async () => {
      const located = await this.sources.locate(name);
      if (!located) {
        const slot = this.slots.get(name);
        if (slot) return slot.info();
        throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model '${name}' is neither in the model store nor in the models folder`, { model: name });
      }
      const slot = this.slotFor(name);
      await this.deploy(slot, located);
      if (!slot.active) await this.fallBack(slot, located.version);
      return slot.info();
    });
  }

  /**
   * Nothing serves because the newest version failed (READ, LOAD, WARM or GATE; its reason is recorded): serve
   * the store's active version instead, else the ones active before it, so a bad package in the models folder
   * cannot take a model offline at start.
   */
  private async fallBack(slot: ModelSlot, failed: string): Promise<void> {
    const fallbacks = await this.sources.fallbacks(slot.name, failed).catch((error: unknown) => {
      log.error({ model: slot.name, err: message(error) }, 'could not list the versions to fall back to');
      return [];
    });
    const reason = slot.info().versions.find((v) => compareVersions(v.version, failed) === 0)?.reason;
    for (const located of fallbacks) {
      log.warn({ model: slot.name, failed, version: located.version, reason }, 'the newest version failed; falling back to an earlier one');
      await this.deploy(slot, located, { fallbackFrom: failed, ...(reason !== undefined ? { fallbackReason: reason } : {}) });
      if (slot.active) return;
    }
  }

  /** Hot-swaps to a specific version installed in the store (the fleet agent's rollout and rollback). */
  deployVersion(name: string, version: string): Promise<ModelInfo> {
    return this.serialized(name, async () => {
      const located = await this.sources.stored(name, version);
      const slot = this.slotFor(name);
      await this.deploy(slot, located);
      return slot.info();
    });
  }

  unload(name: string): Promise<void> {
    return this.serialized(name, async () => {
      const slot = this.slots.get(name);
      if (!slot) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}'`, { model: name });
      slot.probation?.cancel();
      slot.probation = undefined;
      this.shadow.flush(name);
      const loaded = [slot.active, slot.previous].filter((v): v is LoadedVersion => v !== undefined);
      slot.active = undefined;
      slot.previous = undefined;
      slot.unloaded = true;
      this.event('unload', name, loaded[0]?.version, { versions: loaded.map((v) => v.version) });
      await Promise.all(loaded.map((v) => this.retire(slot, v, 'UNAVAILABLE', 'unloaded')));
    });
  }

  /** Waits for swaps in progress, drains and closes every version, then the engine. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.allSettled([...this.chains.values()]);
    for (const slot of this.slots.values()) {
      slot.probation?.cancel();
      slot.probation = undefined;
      for (const loaded of [slot.active, slot.previous]) if (loaded) void this.retire(slot, loaded, 'UNAVAILABLE', 'the model manager was closed');
      slot.active = undefined;
      slot.previous = undefined;
    }
    await Promise.allSettled([...this.drains]);
    await this.shadow.close();
    if (this.enginePromise) await (await this.enginePromise.catch(() => undefined))?.close();
  }

  private slotFor(name: string): ModelSlot {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = new ModelSlot(name);
      this.slots.set(name, slot);
    }
    return slot;
  }

  /** Runs `action` after every earlier swap, load or unload of the same model. */
  private serialized<T>(name: string, action: () => Promise<T>): Promise<T> {
    if (this.closing) {
      return Promise.reject(new EdgerunError('EDGERUN_ERR_MODEL_NOT_READY', `model '${name}': the model manager is shutting down`, { model: name }));
    }
    const result = (this.chains.get(name) ?? Promise.resolve()).then(action);
    this.chains.set(name, result.catch(() => undefined));
    return result;
  }

  private engine(): Promise<Engine> {
    // A factory that failed (no adapter yet, a transient error) is asked again on the next load.
    this.enginePromise ??= this.options.engine().catch((error: unknown) => {
      this.enginePromise = undefined;
      throw error;
    });
    return this.enginePromise;
  }

  private event(kind: LifecycleEventKind, model: string, version: string | undefined, details?: Record<string, unknown>): void {
    this.options.telemetry.recordEvent({ at: Date.now(), kind, model, ...(version !== undefined ? { version } : {}), ...(details ? { details } : {}) });
  }

  /** `note` is added to the swap event's details (e.g. which failed version this one stands in for). */
  private async deploy(slot: ModelSlot, located: Located, note: Record<string, unknown> = {}): Promise<void> {
    const { name, version } = located;
    if (slot.active && compareVersions(slot.active.version, version) === 0) return;
    if (slot.previous && slot.probation && compareVersions(slot.previous.version, version) === 0) {
      this.rollBack(slot, slot.probation, `version ${slot.previous.version} was deployed again during probation`);
      return;
    }
    slot.candidate = { version, engine: '', inputs: [], outputs: [], stage: 'reading the package' };
    let session: Session | undefined;
    const fail = async (kind: 'load_failed' | 'gate_failed', reason: string, details: Record<string, unknown>, gate?: GateSummary): Promise<void> => {
      await session?.close().catch((error: unknown) => log.warn({ model: name, version, err: message(error) }, 'closing a failed candidate failed'));
      const { engine, inputs, outputs } = slot.candidate!;
      slot.remember({ name, version, state: 'FAILED', engine, inputs, outputs, reason, ...(gate ? { gate } : {}) });
      this.event(kind, name, version, { reason, ...details });
      log.warn({ model: name, version, reason, serving: slot.active?.version }, 'a new version was not swapped in');
    };
    try {
      let candidate;
      try {
        candidate = await located.read();
      } catch (error) {
        return await fail('load_failed', `invalid package: ${message(error)}`, { stage: 'read', code: isEdgerunError(error) ? error.code : undefined });
      }
      const { pkg, origin } = candidate;
      if (candidate.installed) this.event('install', name, version, { source: 'models folder' });
      let engine: Engine;
      try {
        engine = await this.engine();
      } catch (error) {
        return await fail('load_failed', `no engine: ${message(error)}`, { stage: 'engine' });
      }
      Object.assign(slot.candidate, { engine: engine.name, inputs: pkg.inputs, outputs: pkg.outputs, stage: 'loading' });

      const started = performance.now();
      try {
        const shapes = shapesToCompile(pkg);
        session = await engine.load(pkg.modelPath, shapes.length > 0 ? { inputShapes: shapes[0] } : {});
        for (const more of shapes.slice(1)) await session.prepare(more);
      } catch (error) {
        return await fail('load_failed', `load failed: ${message(error)}`, { stage: 'load', code: isEdgerunError(error) ? error.code : undefined });
      }
      this.event('load', name, version, { engine: engine.name, origin, loadMs: Math.round(performance.now() - started) });

      slot.candidate.stage = 'warming up';
      try {
        for (let run = 0; run < this.warmupRuns; run++) {
          const feeds = warmupFeeds(pkg, run);
          if (!feeds) break;
          await session.run(feeds);
        }
      } catch (error) {
        return await fail('load_failed', `warm-up failed: ${message(error)}`, { stage: 'warmup', code: isEdgerunError(error) ? error.code : undefined });
      }

      slot.candidate.stage = 'accuracy gate';
      let gate: GateSummary;
      if (this.options.gate?.enabled === false) {
        gate = { status: 'skipped', reason: 'the accuracy gate is disabled' };
      } else if (!pkg.eval) {
        gate = { status: 'skipped', reason: pkg.kind === 'bare' ? 'a bare model has no eval set' : 'the package has no eval set' };
      } else {
        let result;
        try {
          result = await runGate(session, pkg.eval, this.options.gate?.threshold);
        } catch (error) {
          return await fail('gate_failed', `accuracy gate could not run: ${message(error)}`, { stage: 'gate' });
        }
        this.options.telemetry.recordAccuracy({ at: Date.now(), model: name, version, kind: 'gate', agreement: result.fraction, samples: result.compared });
        gate = {
          status: result.passed ? 'passed' : 'failed', agreement: result.fraction, threshold: result.threshold, compared: result.compared,
          ...(result.problem ? { reason: result.problem } : {}),
        };
        if (!result.passed) {
          const reason = result.problem
            ? `accuracy gate failed: ${result.problem}`
            : `accuracy gate failed: agreement ${result.fraction.toFixed(4)} < threshold ${result.threshold} (${result.agreeing} of ${result.compared} outputs over ${result.cases} eval cases)`;
          return await fail('gate_failed', reason, { stage: 'gate', ...gate }, gate);
        }
      }
      this.event('gate_passed', name, version, { ...gate, ...(gate.status === 'skipped' ? { skipped: true } : {}) });

      const loaded = new LoadedVersion(name, version, engine.name, session, pkg, origin);
      slot.gates.set(loaded, gate);
      session = undefined;
      slot.candidate = undefined;
      await this.switchTo(slot, loaded, note);
    } finally {
      slot.candidate = undefined;
    }
  }

  /** SWITCH: new acquires lease `next` from this statement on; then DRAIN or PROBATION for the old version. */
  private async switchTo(slot: ModelSlot, next: LoadedVersion, note: Record<string, unknown> = {}): Promise<void> {
    if (slot.probation) {
      // A newer version supersedes one still on probation: the version before it is no longer a rollback target.
      slot.probation.cancel();
      slot.probation = undefined;
      this.shadow.flush(slot.name);
      if (slot.previous) void this.retire(slot, slot.previous, 'UNAVAILABLE', `replaced by version ${slot.active?.version}`);
      slot.previous = undefined;
    }
    const old = slot.active;
    slot.active = next;
    slot.unloaded = false;
    this.event('swap', slot.name, next.version, { from: old?.version, engine: next.engine, ...note });
    log.info({ model: slot.name, from: old?.version, to: next.version }, 'switched versions');
    if (old && this.probationOptions.windowMs > 0) {
      slot.previous = old;
      const probation: Probation = new Probation(next, old, this.probationOptions, (verdict) => this.probationDecided(slot, probation, verdict));
      slot.probation = probation;
      probation.start();
      return;
    }
    if (old) void this.retire(slot, old, 'UNAVAILABLE', `replaced by version ${next.version}`);
    await this.persist(next);
  }

  private probationDecided(slot: ModelSlot, probation: Probation, verdict: ProbationVerdict): void {
    if (slot.probation !== probation) return;
    if (!verdict.passed) {
      this.rollBack(slot, probation, verdict.reason, { requests: verdict.requests, errors: verdict.errors });
      return;
    }
    const { candidate, previous } = probation;
    slot.probation = undefined;
    slot.previous = undefined;
    this.shadow.flush(slot.name);
    this.event('probation_passed', slot.name, candidate.version, { requests: verdict.requests, errors: verdict.errors, medianLatencyMs: verdict.medianLatencyMs, previous: previous.version });
    void this.retire(slot, previous, 'UNAVAILABLE', `replaced by version ${candidate.version}`);
    void this.serialized(slot.name, () => this.persist(candidate)).catch(() => undefined);
  }

  /** ROLLBACK: the previous version (still loaded) serves again from this statement on. */
  private rollBack(slot: ModelSlot, probation: Probation, reason: string, details: Record<string, unknown> = {}): void {
    probation.cancel();
    const { candidate, previous } = probation;
    slot.probation = undefined;
    slot.previous = undefined;
    slot.active = previous;
    this.shadow.flush(slot.name);
    this.event('rollback', slot.name, previous.version, { from: candidate.version, to: previous.version, reason, ...details });
    log.warn({ model: slot.name, from: candidate.version, to: previous.version, reason }, 'rolled back');
    void this.retire(slot, candidate, 'FAILED', `rolled back during probation: ${reason}`);
  }

  /** DRAIN: no new leases; once the in-flight ones are back (or the drain timeout passes) the session is closed. */
  private retire(slot: ModelSlot, loaded: LoadedVersion, state: ModelState, reason: string): Promise<void> {
    const entry = slot.startDraining(loaded, state, reason);
    const drained = (async () => {
      const idle = await loaded.retire(this.drainTimeoutMs);
      if (!idle) {
        const detail = `draining version ${loaded.version} timed out after ${this.drainTimeoutMs} ms with ${loaded.leases} request(s) in flight; closing it anyway`;
        log.error({ model: slot.name, version: loaded.version }, detail);
        this.event('error', slot.name, loaded.version, { reason: detail });
      }
      await loaded.session.close().catch((error: unknown) => log.warn({ model: slot.name, version: loaded.version, err: message(error) }, 'closing a drained session failed'));
      slot.finishDraining(entry);
      slot.gates.delete(loaded);
    })();
    this.drains.add(drained);
    void drained.finally(() => this.drains.delete(drained));
    return drained;
  }

  /** Moves the store's active pointer to a confirmed version that came from the store. */
  private async persist(loaded: LoadedVersion): Promise<void> {
    const { store } = this.options;
    if (!store || loaded.origin !== 'store') return;
    try {
      await store.activate(loaded.name, loaded.version);
    } catch (error) {
      log.error({ model: loaded.name, version: loaded.version, err: message(error) }, 'could not record the active version in the store');
      this.event('error', loaded.name, loaded.version, { reason: `store activation failed: ${message(error)}` });
    }
  }
}
