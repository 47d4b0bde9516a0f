/**
 * Real fleet agents (daemon/fleet/agent.ts: signature checks, policy, the persisted-bitmap transfer receiver,
 * package assembly with every file hash checked) running in this process, many at once, for the operator-side
 * tests and the fleet benchmarks. What happens after a package is verified — the store install and the
 * hot-swap with its inference engine — is replaced by a recorder: a device goes `active` once its package is
 * assembled and verified. Each agent counts the chunk bytes its MQTT client was handed, duplicates included.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { defaultConfig } from '../../../daemon/config/files.ts';
import { FleetAgent } from '../../../daemon/fleet/agent.ts';
import { chunkIndexOfTopic } from '../../../daemon/fleet/chunk-frame.ts';
import { CHUNK_HEADER_BYTES, DEFAULT_TOPIC_PREFIX } from '../../../daemon/fleet/protocol.ts';
import { logger } from '../../../daemon/log.ts';
import type { ModelStore } from '../../../daemon/store/model-store.ts';
import type { ModelManager } from '../../../daemon/swap/model-manager.ts';
import type { ModelInfo } from '../../../daemon/swap/registry.ts';

export interface AgentDeviceOptions {
  brokerUrl: string;
  deviceId: string;
  stateDir: string;
  trustFiles: string[];
  groups?: string[];
  /** Model name → version the device reports as serving at start. */
  serving?: Record<string, string>;
  /** Default 5000, the daemon's default. */
  chunkRequestTimeoutMs?: number;
  mqttProtocolVersion?: 4 | 5;
  /** Called after each chunk message is counted (benchmarks interrupt a transfer from here). */
  onChunk?: (device: AgentDevice) => void;
}

/** Stand-in for the model manager: deployVersion makes a version active at once (no engine, no gate). */
class InstallRecorder {
  readonly deployed: { name: string; version: string }[] = [];
  private readonly active = new Map<string, string>();

  constructor(serving: Record<string, string>) {
    for (const [name, version] of Object.entries(serving)) this.active.set(name, version);
  }

  private info(name: string): ModelInfo | undefined {
    const version = this.active.get(name);
    return version === undefined ? undefined : { name, activeVersion: version, versions: [] };
  }

  get(name: string): ModelInfo | undefined { return this.info(name); }
  list(): ModelInfo[] { return [...this.active.keys()].sort().map((name) => this.info(name)!); }
  async deployVersion(name: string, version: string): Promise<ModelInfo> {
    this.deployed.push({ name, version });
    this.active.set(name, version);
    return this.info(name)!;
  }
}

export class AgentDevice {
  /** Data bytes of every chunk message the device's client received (duplicates and redeliveries included). */
  deliveredBytes = 0;
  deliveredChunks = 0;
  /** performance.now() of the first and the latest chunk message. */
  firstChunkAt: number | null = null;
  lastChunkAt: number | null = null;
  private constructor(readonly deviceId: string, readonly agent: FleetAgent, readonly recorder: InstallRecorder, private readonly prefix: string) {}

  static async start(options: AgentDeviceOptions): Promise<AgentDevice> {
    await fs.mkdir(options.stateDir, { recursive: true });
    const recorder = new InstallRecorder(options.serving ?? {});
    const store = { install: async () => undefined } as unknown as ModelStore;
    const agent = await FleetAgent.start({
      fleet: {
        ...defaultConfig().fleet,
        broker: options.brokerUrl, deviceId: options.deviceId, groups: options.groups ?? [], trust: options.trustFiles, target: null,
        topicPrefix: DEFAULT_TOPIC_PREFIX, mqttProtocolVersion: options.mqttProtocolVersion ?? 5, maxPackageBytes: 1 << 30,
        minFreeDiskBytes: 0, chunkRequestTimeoutMs: options.chunkRequestTimeoutMs ?? 5000,
      },
      stateDir: options.stateDir,
      models: () => recorder as unknown as ModelManager,
      store: () => store,
      log: logger.child({ component: 'fleet-agent', deviceId: options.deviceId }, { level: process.env.EDGERUN_LOG_LEVEL ?? 'error' }),
    });
    const device = new AgentDevice(options.deviceId, agent, recorder, DEFAULT_TOPIC_PREFIX);
    agent.client.on('message', (topic, payload) => {
      if (topic.startsWith(`${device.prefix}/transfers/`) && chunkIndexOfTopic(topic) !== undefined) {
        device.lastChunkAt = performance.now();
        device.firstChunkAt ??= device.lastChunkAt;
        device.deliveredChunks++;
        device.deliveredBytes += Math.max(0, payload.length - CHUNK_HEADER_BYTES);
        options.onChunk?.(device);
      }
    });
    return device;
  }

  /** Waits until the agent's client is connected (it has published its status). */
  async connected(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.agent.client.connected) {
      if (Date.now() > deadline) throw new Error(`${this.deviceId}: not connected within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    await this.agent.stop();
  }
}

/** Starts `count` agents named `${idPrefix}-01`… in `group`, each with its own state folder under `root`. */
export async function startAgentFleet(options: Omit<AgentDeviceOptions, 'deviceId' | 'stateDir'> & { root: string; count: number; idPrefix: string }): Promise<AgentDevice[]> {
  const width = String(options.count).length;
  const devices: AgentDevice[] = [];
  for (let i = 1; i <= options.count; i++) {
    const deviceId = `${options.idPrefix}-${String(i).padStart(width, '0')}`;
    devices.push(await AgentDevice.start({ ...options, deviceId, stateDir: path.join(options.root, deviceId) }));
  }
  await Promise.all(devices.map((device) => device.connected()));
  return devices;
}
