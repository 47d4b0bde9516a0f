/**
 * What the monitor keeps about a fleet, behind one interface with two implementations: SQLite (one box, the
 * default) and PostgreSQL (fleets that outgrow one box). Both are `SqlMonitorStore` over a small driver, so the
 * SQL is written once; test/monitor/store.test.ts is the contract suite both pass.
 */
import type { DeploymentProgress, DeploymentState, DeviceModelState, DeviceStatus, TelemetryReport } from '../fleet/protocol.ts';

export interface FleetDevice {
  deviceId: string;
  online: boolean | null;
  groups: string[];
  target: string | null;
  agentVersion: string | null;
  models: DeviceModelState[];
  /** The device's latest deployment (by its progress time), if any. */
  deployment: { deploymentId: string; rolloutId: string | null; model: string; version: string; state: DeploymentState; receivedChunks: number; chunkCount: number; code: string | null; reason: string | null; at: number } | null;
  /** The latest time anything was heard from or about the device (status, progress or telemetry), epoch ms. */
  lastSeen: number;
  /** The latest telemetry report's seq, and how many seqs are missing between the first and the latest seen. */
  lastSeq: number | null;
  missingReports: number;
}

/** One model version of one telemetry report. */
export interface TelemetryRow {
  deviceId: string;
  seq: number;
  /** windowEnd of the report, epoch ms: where the point sits on a chart. */
  at: number;
  windowMs: number;
  model: string;
  version: string;
  requests: number;
  errors: number;
  throughputPerSec: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  powerWatts: number | null;
  energyPerInferenceJ: number | null;
  accuracy: number | null;
}

export interface TelemetryQuery {
  since: number;
  until: number;
  deviceId?: string;
  model?: string;
  /** Newest rows kept when more match (default 20,000). */
  limit?: number;
}

export interface RolloutSummary {
  /** The rollout id, or the deployment id for a deployment outside any rollout. */
  id: string;
  kind: 'rollout' | 'deployment';
  model: string;
  version: string;
  /** Devices by their latest state in this rollout. */
  states: Partial<Record<DeploymentState, number>>;
  devices: number;
  updatedAt: number;
}

export interface SeqGap {
  deviceId: string;
  /** Inclusive ranges of seqs never received, between the first and the latest seq seen. */
  ranges: [number, number][];
  missing: number;
}

export interface StoreCounts {
  devices: number;
  reports: number;
  duplicateReports: number;
  /** Reports the devices' backlogs dropped while offline: each device's latest cumulative `dropped`, summed. */
  droppedReported: number;
}

export type TelemetryOutcome = 'stored' | 'duplicate';

export interface MonitorStore {
  /** Where the data lives, for logs and errors (a file, or a PostgreSQL URL without its password). */
  readonly description: string;
  /** Creates the schema when missing. */
  init(): Promise<void>;
  /** Keeps the newest status of each device (by its `at`; a retained status replayed after a reconnect changes nothing). */
  recordStatus(status: DeviceStatus, receivedAt: number): Promise<void>;
  /** Keeps the newest progress of each (device, deployment). */
  recordProgress(progress: DeploymentProgress, receivedAt: number): Promise<void>;
  /** Stores a report once per (device, seq): a second copy is 'duplicate' and changes nothing. */
  recordTelemetry(report: TelemetryReport, receivedAt: number): Promise<TelemetryOutcome>;
  devices(): Promise<FleetDevice[]>;
  telemetry(query: TelemetryQuery): Promise<TelemetryRow[]>;
  /** All seqs of a device in order (tests and gap audits). */
  seqs(deviceId: string): Promise<number[]>;
  gaps(): Promise<SeqGap[]>;
  rollouts(): Promise<RolloutSummary[]>;
  counts(): Promise<StoreCounts>;
  close(): Promise<void>;
}
