/**
 * The fleet protocol over MQTT 5 (docs/PROTOCOL.md is the prose version of this file): topic tree, payload
 * types, and the binary chunk frame. Both sides — the daemon's fleet agent and the operator commands
 * (publish, rollout, fleet status, monitor) — import these definitions; nothing else spells a topic.
 *
 * Topic tree under a prefix (default `edgerun/v1`; the `v1` is the protocol version):
 *   {prefix}/devices/{deviceId}/status          retained JSON DeviceStatus; the MQTT will publishes it with online=false
 *   {prefix}/devices/{deviceId}/deploy          retained signed DeploymentManifest addressed to one device
 *   {prefix}/groups/{group}/deploy              retained signed DeploymentManifest addressed to a group
 *   {prefix}/devices/{deviceId}/command         signed FleetCommand (rollback, abort, trust-keys); QoS 1, not retained
 *   {prefix}/groups/{group}/command             the same for a group
 *   {prefix}/devices/{deviceId}/progress        retained JSON DeploymentProgress: the device's latest deployment state
 *   {prefix}/devices/{deviceId}/telemetry       JSON TelemetryReport, QoS 1, not retained, replayed in order after an outage
 *   {prefix}/transfers/{transferId}/chunk/{i}   binary chunk frame (below), QoS 1, not retained
 *   {prefix}/transfers/{transferId}/request     JSON ChunkRequest: a device asks the sender for (missing) chunks
 *   {prefix}/transfers/{transferId}/ack         JSON TransferAck: a device's stored progress; the sender paces itself on it
 */

export const PROTOCOL_VERSION = 1;
export const DEFAULT_TOPIC_PREFIX = 'edgerun/v1';
/** Mosquitto's default message_size_limit is 0 (none) but max_packet_size defaults to 256 MiB; many brokers cap at 256 KiB–1 MiB. */
export const DEFAULT_CHUNK_BYTES = 128 * 1024;
/** Device ids and group names become topic levels: no wildcards, separators or control characters. */
export const FLEET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const topics = {
  status: (prefix: string, deviceId: string) => `${prefix}/devices/${deviceId}/status`,
  deviceDeploy: (prefix: string, deviceId: string) => `${prefix}/devices/${deviceId}/deploy`,
  groupDeploy: (prefix: string, group: string) => `${prefix}/groups/${group}/deploy`,
  deviceCommand: (prefix: string, deviceId: string) => `${prefix}/devices/${deviceId}/command`,
  groupCommand: (prefix: string, group: string) => `${prefix}/groups/${group}/command`,
  progress: (prefix: string, deviceId: string) => `${prefix}/devices/${deviceId}/progress`,
  telemetry: (prefix: string, deviceId: string) => `${prefix}/devices/${deviceId}/telemetry`,
  chunk: (prefix: string, transferId: string, index: number) => `${prefix}/transfers/${transferId}/chunk/${index}`,
  chunkWildcard: (prefix: string, transferId: string) => `${prefix}/transfers/${transferId}/chunk/+`,
  chunkRequest: (prefix: string, transferId: string) => `${prefix}/transfers/${transferId}/request`,
  transferAck: (prefix: string, transferId: string) => `${prefix}/transfers/${transferId}/ack`,
  /** Subscriptions for fleet-wide observers (fleet status, monitor, rollout). */
  allStatus: (prefix: string) => `${prefix}/devices/+/status`,
  allProgress: (prefix: string) => `${prefix}/devices/+/progress`,
  allTelemetry: (prefix: string) => `${prefix}/devices/+/telemetry`,
} as const;

/**
 * A signed message: `payload` is the exact JSON text that was signed (UTF-8), so no canonicalisation is needed.
 * keyId = the first 16 hex digits of sha256(SPKI DER of the public key).
 */
export interface SignedEnvelope {
  alg: 'ed25519';
  keyId: string;
  payload: string;
  signature: string; // base64
}

export interface DeploymentFile {
  /** Package-relative path ('/'-separated); `manifest.json` (the package manifest itself) is always the first file. */
  path: string;
  sha256: string;
  bytes: number;
}

/**
 * What a deploy topic carries, inside a SignedEnvelope. The package's files are concatenated in `files` order
 * into one byte stream that is cut into `chunkCount` chunks of `chunkBytes` (the last one shorter).
 */
export interface DeploymentManifest {
  protocol: 1;
  kind: 'deploy';
  /** Unique per deployment (UUID); a device processes a deploymentId once. */
  deploymentId: string;
  /** Where the chunks travel: topics.chunk(prefix, transferId, i). */
  transferId: string;
  model: { name: string; version: string };
  files: DeploymentFile[];
  totalBytes: number;
  chunkBytes: number;
  chunkCount: number;
  /** Target profiles (targets/*.json names) the package fits; empty or absent = any device. */
  targets?: string[];
  issuedAt: string;
  expiresAt: string;
  /** Optional rollout bookkeeping, echoed in progress reports. */
  rolloutId?: string;
}

export type FleetCommand =
  | { protocol: 1; kind: 'rollback'; commandId: string; model: string; toVersion?: string; issuedAt: string; expiresAt: string; rolloutId?: string }
  | { protocol: 1; kind: 'abort'; commandId: string; deploymentId: string; issuedAt: string; expiresAt: string }
  /** Key rotation: signed by a currently trusted key; the device persists the new trust set. */
  | { protocol: 1; kind: 'trust-keys'; commandId: string; add: string[]; remove: string[]; issuedAt: string; expiresAt: string };

export type DeploymentState =
  | 'accepted' | 'downloading' | 'verifying' | 'installing' | 'active'
  | 'rejected' | 'failed' | 'rolled-back' | 'aborted' | 'duplicate';

export interface DeploymentProgress {
  protocol: 1;
  deviceId: string;
  deploymentId: string;
  rolloutId?: string;
  model: { name: string; version: string };
  state: DeploymentState;
  receivedChunks: number;
  chunkCount: number;
  receivedBytes: number;
  totalBytes: number;
  /** For rejected/failed/rolled-back: the EdgerunError code and message. */
  code?: string;
  reason?: string;
  at: string;
}

export interface DeviceModelState {
  name: string;
  version: string | null;
  state: string;
}

export interface DeviceStatus {
  protocol: 1;
  deviceId: string;
  groups: string[];
  online: boolean;
  /** Target profile name the device declares (targets/*.json), if any. */
  target?: string;
  agentVersion: string;
  models: DeviceModelState[];
  at: string;
}

export interface ChunkRequest {
  protocol: 1;
  deviceId: string;
  transferId: string;
  /** Inclusive index ranges [first, last] the device is missing. */
  ranges: [number, number][];
}

/**
 * A device's stored progress on one transfer, QoS 1, not retained. Sent when the transfer starts or resumes, after
 * every reconnect, with every ChunkRequest, and at least every ackIntervalChunks(manifest) stored chunks.
 */
export interface TransferAck {
  protocol: 1;
  deviceId: string;
  transferId: string;
  /** Chunks 0 … contiguousChunks-1 are all stored. */
  contiguousChunks: number;
  receivedChunks: number;
}

/**
 * Pacing: a sender publishes chunk i only while i < (the lowest contiguousChunks its still-downloading devices
 * acknowledged) + senderLeadChunks(manifest). What a broker killed without saving loses — chunks it accepted but
 * had not delivered — is then at most the lead, which is what a resume has to send again.
 */
export const PACING = {
  /** The lead is this fraction of the transfer… */
  leadFraction: 0.02,
  /** …but at least this many bytes (a round trip's worth on a fast link)… */
  minLeadBytes: 192 * 1024,
  /** …and at most this many. */
  maxLeadBytes: 16 * 1024 * 1024,
  /** A device acknowledges at least every 1 % of the chunks, and at least every this many bytes. */
  ackFraction: 0.01,
  ackMaxBytes: 1024 * 1024,
} as const;

export function ackIntervalChunks(manifest: Pick<DeploymentManifest, 'chunkCount' | 'chunkBytes'>): number {
  return Math.max(1, Math.min(Math.ceil(manifest.chunkCount * PACING.ackFraction), Math.floor(PACING.ackMaxBytes / manifest.chunkBytes)));
}

/** At least two acknowledgement intervals, so a device that stored the whole lead has always acknowledged part of it. */
export function senderLeadChunks(manifest: Pick<DeploymentManifest, 'chunkCount' | 'chunkBytes' | 'totalBytes'>): number {
  const bytes = Math.min(PACING.maxLeadBytes, Math.max(PACING.minLeadBytes, PACING.leadFraction * manifest.totalBytes));
  return Math.max(2 * ackIntervalChunks(manifest), Math.ceil(bytes / manifest.chunkBytes));
}

/** A periodic summary of the device's telemetry since the previous report (window start/end). */
export interface TelemetryReport {
  protocol: 1;
  deviceId: string;
  /** Per-device monotonic sequence number: the monitor detects gaps and duplicates with it. */
  seq: number;
  windowStart: string;
  windowEnd: string;
  /** Reports the device's bounded offline backlog has dropped so far, cumulative (absent = 0); gaps in seq show which. */
  dropped?: number;
  models: {
    name: string;
    version: string;
    requests: number;
    errors: number;
    throughputPerSec: number;
    latencyMs: { p50: number | null; p95: number | null; p99: number | null };
    powerWatts: number | null;
    energyPerInferenceJ: number | null;
    /** Agreement with the eval set (gate) or the previous version (shadow), 0..1. */
    accuracy: number | null;
  }[];
}

/**
 * Binary chunk frame: 'ERC1' | u32 index | u32 chunkCount | 32-byte sha256 of data | data. Little-endian.
 * The topic also names the index; a frame whose header disagrees with its topic is rejected.
 */
export const CHUNK_MAGIC = 'ERC1';
export const CHUNK_HEADER_BYTES = 4 + 4 + 4 + 32;
