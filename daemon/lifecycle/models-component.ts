/**
 * The model store and the ModelManager as one daemon component: opens (and recovers) the store under the state
 * folder, then loads every model the store and the models folder hold before the daemon reports READY. A model
 * that fails to load is recorded (FAILED, with its reason) and the others serve; stop drains in-flight requests
 * on every version, closes the sessions and the engine.
 */
import fs from 'node:fs/promises';
import type { ResolvedConfig } from '../config/types.ts';
import type { Engine } from '../engine/types.ts';
import type { Logger } from '../log.ts';
import { ModelStore } from '../store/model-store.ts';
import { ModelManager } from '../swap/model-manager.ts';
import type { TelemetrySink } from '../telemetry/sink.ts';
import type { Component } from './lifecycle.ts';

export interface ModelsDependencies {
  engine: () => Engine;
  telemetry: () => TelemetrySink;
}

export class ModelsComponent implements Component {
  readonly name = 'models';
  #store: ModelStore | undefined;
  #manager: ModelManager | undefined;

  constructor(private readonly config: ResolvedConfig, private readonly deps: ModelsDependencies, private readonly log: Logger) {}

  /** The registry serving HTTP reads from; only valid after start. */
  get manager(): ModelManager {
    if (!this.#manager) throw new Error('models: used before start');
    return this.#manager;
  }

  get store(): ModelStore | undefined { return this.#store; }

  async start(): Promise<void> {
    const { config } = this;
    await fs.mkdir(config.state.dir, { recursive: true });
    this.#store = await ModelStore.open(config.state.dir, { keepPrevious: config.swap.keepVersions });
    this.#manager = new ModelManager({
      engine: async () => this.deps.engine(),
      telemetry: this.deps.telemetry(),
      store: this.#store,
      modelsDir: config.models.dir,
      warmupRuns: config.swap.warmupRuns,
      gate: { enabled: config.swap.gate.enabled },
      probation: config.swap.probation,
      shadow: { fraction: config.telemetry.shadowFraction },
      // A request cannot be in flight longer than its timeout, so neither can a drain.
      drainTimeoutMs: config.server.requestTimeoutMs,
    });
    await this.#manager.start();
    const models = this.#manager.list();
    this.log.info({
      modelsDir: config.models.dir,
      models: models.map((m) => ({ name: m.name, active: m.activeVersion, states: m.versions.map((v) => `${v.version}:${v.state}${v.reason ? ` (${v.reason})` : ''}`) })),
    }, `${models.filter((m) => m.activeVersion !== undefined).length} of ${models.length} model(s) ready`);
  }

  async stop(): Promise<void> {
    await this.#manager?.close();
  }
}
