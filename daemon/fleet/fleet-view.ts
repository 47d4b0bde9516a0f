/**
 * What the broker knows about the fleet: every device's retained status and latest deployment progress,
 * collected by subscribing to the fleet-wide wildcards. Retained messages arrive right after SUBACK, so the
 * collection ends once the stream goes quiet (or at the caller's limit). A malformed retained message is kept
 * as a problem line naming its topic, never fatal: one broken device must not hide the rest of the fleet.
 */
import type { MqttClient } from 'mqtt';
import { isEdgerunError } from '../errors.ts';
import { parseDeploymentProgress, parseDeviceStatus, parseJsonPayload } from './messages.ts';
import { type DeploymentProgress, type DeviceStatus, topics } from './protocol.ts';

export interface FleetDevice {
  deviceId: string;
  status?: DeviceStatus;
  progress?: DeploymentProgress;
}

export interface FleetView {
  devices: Map<string, FleetDevice>;
  problems: string[];
}

export interface ReadFleetOptions {
  /** The longest the collection lasts. */
  waitMs: number;
  /** It ends earlier once no message came for this long. */
  quietMs?: number;
}

const DEFAULT_QUIET_MS = 300;

function deviceIdOfTopic(topic: string): string {
  const parts = topic.split('/');
  return parts[parts.length - 2] ?? '';
}

/** Reads retained status and progress of every device under `prefix`. */
export async function readFleet(client: MqttClient, prefix: string, options: ReadFleetOptions): Promise<FleetView> {
  const view: FleetView = { devices: new Map(), problems: [] };
  const statusTopic = topics.allStatus(prefix);
  const progressTopic = topics.allProgress(prefix);
  const statusPrefix = statusTopic.slice(0, statusTopic.indexOf('+'));
  let lastMessageAt = Date.now();
  const device = (deviceId: string): FleetDevice => {
    let entry = view.devices.get(deviceId);
    if (!entry) view.devices.set(deviceId, entry = { deviceId });
    return entry;
  };
  const onMessage = (topic: string, payload: Buffer): void => {
    if (!topic.startsWith(statusPrefix)) return;
    const kind = topic.endsWith('/status') ? 'status' : topic.endsWith('/progress') ? 'progress' : null;
    if (!kind) return;
    lastMessageAt = Date.now();
    // An empty retained payload is a deletion; it carries nothing to show.
    if (payload.length === 0) return;
    try {
      const json = parseJsonPayload(payload, topic);
      if (kind === 'status') {
        const status = parseDeviceStatus(json, topic);
        if (status.deviceId !== deviceIdOfTopic(topic)) throw new Error(`${topic}: deviceId '${status.deviceId}' does not match the topic`);
        device(status.deviceId).status = status;
      } else {
        const progress = parseDeploymentProgress(json, topic);
        if (progress.deviceId !== deviceIdOfTopic(topic)) throw new Error(`${topic}: deviceId '${progress.deviceId}' does not match the topic`);
        device(progress.deviceId).progress = progress;
      }
    } catch (error) {
      view.problems.push(isEdgerunError(error) ? `${error.code}: ${error.message}` : (error as Error).message);
    }
  };
  client.on('message', onMessage);
  try {
    await client.subscribeAsync([statusTopic, progressTopic], { qos: 1 });
    const started = Date.now();
    lastMessageAt = started;
    const quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    while (Date.now() - started < options.waitMs && Date.now() - lastMessageAt < quietMs) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await client.unsubscribeAsync([statusTopic, progressTopic]);
  } finally {
    client.off('message', onMessage);
  }
  return view;
}

/** Online members of `group`, sorted by id. */
export function onlineGroupMembers(view: FleetView, group: string): DeviceStatus[] {
  return [...view.devices.values()]
    .map((entry) => entry.status)
    .filter((status): status is DeviceStatus => status !== undefined && status.online && status.groups.includes(group))
    .sort((a, b) => a.deviceId.localeCompare(b.deviceId));
}

export interface FleetSummary {
  devices: {
    deviceId: string;
    online: boolean | null;
    groups: string[];
    target: string | null;
    agentVersion: string | null;
    models: { name: string; version: string | null; state: string }[];
    lastSeen: string | null;
    deployment: null | {
      deploymentId: string; rolloutId: string | null; model: string; version: string; state: string; percent: number; code: string | null; reason: string | null; at: string;
    };
  }[];
  groups: Record<string, { devices: number; online: number }>;
  /** Per model, per version: how many devices run it. */
  models: Record<string, Record<string, number>>;
  problems: string[];
}

export function summarizeFleet(view: FleetView): FleetSummary {
  const devices = [...view.devices.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId)).map(({ deviceId, status, progress }) => ({
    deviceId,
    online: status ? status.online : null,
    groups: status?.groups ?? [],
    target: status?.target ?? null,
    agentVersion: status?.agentVersion ?? null,
    models: status?.models.map((m) => ({ name: m.name, version: m.version, state: m.state })) ?? [],
    lastSeen: status?.at ?? null,
    deployment: progress ? {
      deploymentId: progress.deploymentId,
      rolloutId: progress.rolloutId ?? null,
      model: progress.model.name,
      version: progress.model.version,
      state: progress.state,
      percent: progress.totalBytes > 0 ? Math.floor((100 * progress.receivedBytes) / progress.totalBytes) : 0,
      code: progress.code ?? null,
      reason: progress.reason ?? null,
      at: progress.at,
    } : null,
  }));
  const groups: FleetSummary['groups'] = {};
  const models: FleetSummary['models'] = {};
  for (const device of devices) {
    for (const group of device.groups) {
      const entry = groups[group] ??= { devices: 0, online: 0 };
      entry.devices++;
      if (device.online) entry.online++;
    }
    for (const model of device.models) {
      const versions = models[model.name] ??= {};
      const version = model.version ?? 'none';
      versions[version] = (versions[version] ?? 0) + 1;
    }
  }
  return { devices, groups, models, problems: view.problems };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/** The human-readable fleet report. */
export function renderFleet(summary: FleetSummary): string {
  if (summary.devices.length === 0) return 'no devices have announced themselves under this prefix\n';
  const rows = [['DEVICE', 'ONLINE', 'GROUPS', 'TARGET', 'MODELS', 'DEPLOYMENT']];
  for (const device of summary.devices) {
    const d = device.deployment;
    rows.push([
      device.deviceId,
      device.online === null ? '?' : device.online ? 'yes' : 'no',
      device.groups.join(',') || '-',
      device.target ?? '-',
      device.models.map((m) => `${m.name} ${m.version ?? '-'} (${m.state})`).join(', ') || '-',
      d ? `${d.model} ${d.version} ${d.state}${d.state === 'downloading' ? ` ${d.percent}%` : ''}${d.code ? ` ${d.code}` : ''}` : '-',
    ]);
  }
  const lines = [table(rows), ''];
  const groupNames = Object.keys(summary.groups).sort();
  if (groupNames.length > 0) {
    lines.push(`groups: ${groupNames.map((g) => `${g} ${summary.groups[g]!.online}/${summary.groups[g]!.devices} online`).join(', ')}`);
  }
  for (const [name, versions] of Object.entries(summary.models).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`model ${name}: ${Object.entries(versions).map(([v, n]) => `${v} on ${n}`).join(', ')}`);
  }
  const online = summary.devices.filter((d) => d.online).length;
  lines.push(`${summary.devices.length} devices, ${online} online`);
  for (const problem of summary.problems) lines.push(`warning: ${problem}`);
  return `${lines.join('\n')}\n`;
}
