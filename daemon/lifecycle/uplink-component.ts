/**
 * The telemetry uplink as a daemon component (daemon/fleet/uplink.ts): with the fleet agent connected to a
 * broker and telemetry on, it opens the backlog in the state folder and publishes a report every
 * fleet.telemetryIntervalMs over the agent's MQTT client. It starts after the fleet agent and stops before it, so
 * acknowledgements of reports in flight can still arrive; unacknowledged reports stay in the backlog.
 */
import type { ResolvedConfig } from '../config/types.ts';
import type { FleetAgent } from '../fleet/agent.ts';
import { SqliteTelemetryBacklog, telemetryBacklogPath } from '../fleet/telemetry-backlog.ts';
import { TelemetryUplink } from '../fleet/uplink.ts';
import type { Logger } from '../log.ts';
import type { Telemetry } from '../telemetry/telemetry.ts';
import type { Component } from './lifecycle.ts';

export interface UplinkDependencies {
  agent: () => FleetAgent | undefined;
  telemetry: () => Telemetry | undefined;
}

export class UplinkComponent implements Component {
  readonly name = 'telemetry-uplink';
  // Telemetry leaving the device is worth less than serving: a backlog that cannot open does not stop the daemon.
  readonly optional = true;
  #backlog: SqliteTelemetryBacklog | undefined;
  #uplink: TelemetryUplink | undefined;

  constructor(private readonly config: ResolvedConfig, private readonly deps: UplinkDependencies, private readonly log: Logger) {}

  get uplink(): TelemetryUplink | undefined { return this.#uplink; }

  async start(): Promise<void> {
    const agent = this.deps.agent();
    const telemetry = this.deps.telemetry();
    if (!agent || !telemetry) {
      this.log.debug({ fleet: Boolean(agent), telemetry: Boolean(telemetry) }, 'telemetry uplink off: it needs both a fleet broker and telemetry');
      return;
    }
    const { fleet, state } = this.config;
    this.#backlog = new SqliteTelemetryBacklog(telemetryBacklogPath(state.dir), { maxRows: fleet.telemetryBacklogMaxRows, maxBytes: fleet.telemetryBacklogMaxBytes });
    this.#uplink = new TelemetryUplink({
      client: agent.client, prefix: agent.prefix, deviceId: agent.deviceId, backlog: this.#backlog,
      telemetry: telemetry.db, intervalMs: fleet.telemetryIntervalMs, log: this.log,
    });
    this.#uplink.start();
    this.log.info({ intervalMs: fleet.telemetryIntervalMs, backlog: this.#backlog.stats() }, 'telemetry uplink started');
  }

  async stop(): Promise<void> {
    await this.#uplink?.stop();
    this.#backlog?.close();
  }
}
