/**
 * The fleet agent as a daemon component (daemon/fleet/agent.ts): with fleet.broker set it opens the fleet state,
 * loads the trusted keys, resumes transfers and connects (without waiting for the broker: the daemon serves
 * whether or not the broker is reachable). It starts after the models (it hands packages to the ModelManager)
 * and stops before them, publishing online=false and leaving unfinished transfers on disk to resume.
 */
import type { ResolvedConfig } from '../config/types.ts';
import { FleetAgent } from '../fleet/agent.ts';
import type { Logger } from '../log.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { ModelManager } from '../swap/model-manager.ts';
import type { Component } from './lifecycle.ts';

export interface FleetDependencies {
  models: () => ModelManager;
  store: () => ModelStore | undefined;
}

export class FleetComponent implements Component {
  readonly name = 'fleet';
  #agent: FleetAgent | undefined;

  constructor(private readonly config: ResolvedConfig, private readonly deps: FleetDependencies, private readonly log: Logger) {}

  /** The running agent (undefined when fleet.broker is null or before start). */
  get agent(): FleetAgent | undefined { return this.#agent; }

  async start(): Promise<void> {
    const { fleet, state } = this.config;
    if (fleet.broker === null) {
      this.log.debug('not in a fleet (fleet.broker is null)');
      return;
    }
    const store = (): ModelStore => {
      const opened = this.deps.store();
      if (!opened) throw new Error('fleet: the model store is not open');
      return opened;
    };
    this.#agent = await FleetAgent.start({ fleet: { ...fleet, broker: fleet.broker }, stateDir: state.dir, models: this.deps.models, store, log: this.log });
    this.log.info({ broker: fleet.broker, deviceId: fleet.deviceId, groups: fleet.groups, trustedKeys: this.#agent.trust.keys().map((k) => k.keyId) },
      'fleet agent started');
  }

  async stop(): Promise<void> {
    await this.#agent?.stop();
  }
}
