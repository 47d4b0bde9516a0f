/**
 * What the fleet agent's message handlers share: identity, policy, persisted state, trust, the model registry,
 * and the few ways they talk back to the broker. The agent (daemon/fleet/agent.ts) implements it.
 */
import type { Logger } from '../log.ts';
import type { ModelStore } from '../store/model-store.ts';
import type { ModelManager } from '../swap/model-manager.ts';
import type { ActiveDeployment } from './active-deployment.ts';
import type { AgentState } from './agent-state.ts';
import type { DeploymentPolicy } from './deployment-checks.ts';
import type { DeploymentProgress } from './protocol.ts';
import type { TrustSet } from './trust-set.ts';

export type ProgressUpdate = Omit<DeploymentProgress, 'protocol' | 'deviceId' | 'at'>;

export interface AgentContext {
  readonly deviceId: string;
  readonly prefix: string;
  readonly policy: DeploymentPolicy;
  readonly state: AgentState;
  readonly trust: TrustSet;
  /** <state dir>/fleet/transfers */
  readonly transfersDir: string;
  readonly chunkRequestTimeoutMs: number;
  readonly log: Logger;
  /** Transfers in progress, by transferId. */
  readonly active: Map<string, ActiveDeployment>;
  models(): ModelManager;
  store(): ModelStore;
  /** Retained, QoS 1; queued by mqtt.js while offline. */
  publishProgress(update: ProgressUpdate): void;
  /** The retained device status (models and their versions), after anything changed them. */
  publishStatus(): void;
  publishChunkRequest(transferId: string, ranges: [number, number][]): void;
  /** A TransferAck (QoS 1, not retained): the sender paces its chunk stream on it. */
  publishTransferAck(transferId: string, contiguousChunks: number, receivedChunks: number): void;
  /** Whether the MQTT connection is up now. */
  connected(): boolean;
  subscribe(topic: string): Promise<void>;
  unsubscribe(topic: string): Promise<void>;
  /** Runs `work` after every earlier deployment or command step (one at a time). */
  enqueue(work: () => Promise<void>): Promise<void>;
}
