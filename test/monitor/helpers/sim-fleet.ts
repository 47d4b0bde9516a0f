/**
 * A test fleet of simulated devices, each a real MQTT client with the daemon's own parts: a telemetry database
 * filled by the real recorder (requests, power samples, energy, shadow agreement), the SQLite backlog and the
 * TelemetryUplink. A device announces a retained status (its will says offline), reports deployment progress, and
 * its backlog starts with `historyMinutes` of one-per-10-s reports, as a device that was offline would have,
 * so charts have history the moment the monitor sees them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { topics, type DeploymentProgress, type DeviceStatus, type TelemetryReport } from '../../../daemon/fleet/protocol.ts';
import { SqliteTelemetryBacklog } from '../../../daemon/fleet/telemetry-backlog.ts';
import { TelemetryUplink } from '../../../daemon/fleet/uplink.ts';
import { cursorAtEnd } from '../../../daemon/fleet/uplink-report.ts';
import { TelemetryRecorder } from '../../../daemon/telemetry/recorder.ts';
import { openTelemetryDb, type TelemetryDb } from '../../../daemon/telemetry/schema.ts';

export const PREFIX = 'edgerun/v1';

export interface SimModel {
  name: string;
  version: string;
  /** Typical latency; the simulated requests spread around it. */
  latencyMs: number;
  accuracy: number;
}

export interface SimDeviceSpec {
  deviceId: string;
  groups: string[];
  target?: string;
  models: SimModel[];
  watts: number;
  progress?: Omit<DeploymentProgress, 'protocol' | 'deviceId' | 'at'>;
  historyMinutes?: number;
}

export interface SimDevice {
  readonly spec: SimDeviceSpec;
  readonly uplink: TelemetryUplink;
  readonly client: MqttClient;
  /** Ends the connection without a clean DISCONNECT, so the broker publishes the will (online: false). */
  dropOffline(): void;
  stop(): Promise<void>;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function status(spec: SimDeviceSpec, online: boolean): DeviceStatus {
  return {
    protocol: 1, deviceId: spec.deviceId, groups: spec.groups, online, ...(spec.target ? { target: spec.target } : {}),
    agentVersion: 'edgerun/0.1.0', models: spec.models.map((m) => ({ name: m.name, version: m.version, state: 'active' })), at: new Date().toISOString(),
  };
}

/** Past reports, one per 10 s, ending now: a daily-looking wave in latency and power. */
function seedHistory(spec: SimDeviceSpec, backlog: SqliteTelemetryBacklog, db: TelemetryDb, random: () => number): void {
  const minutes = spec.historyMinutes ?? 0;
  const now = Date.now();
  const cursor = JSON.stringify(cursorAtEnd(db, now));
  for (let i = minutes * 6; i >= 1; i--) {
    const end = now - i * 10_000;
    const wave = 1 + 0.25 * Math.sin(end / 120_000 + spec.watts);
    backlog.append((seq, dropped) => {
      const report: TelemetryReport = {
        protocol: 1, deviceId: spec.deviceId, seq, windowStart: new Date(end - 10_000).toISOString(), windowEnd: new Date(end).toISOString(),
        ...(dropped ? { dropped } : {}),
        models: spec.models.map((m) => {
          // The same shape as the live traffic below: latency spread 0.8–1.3 × typical, 40 requests a second per model.
          const p50 = m.latencyMs * wave * (1.02 + random() * 0.06);
          const requests = Math.round(380 + random() * 40);
          return {
            name: m.name, version: m.version, requests, errors: random() < 0.3 ? Math.round(requests * 0.02) : 0, throughputPerSec: requests / 10,
            latencyMs: { p50, p95: p50 * 1.22, p99: p50 * 1.27 },
            powerWatts: spec.watts * wave, energyPerInferenceJ: (spec.watts * wave * 10) / requests / spec.models.length,
            accuracy: Math.min(1, m.accuracy + (random() - 0.5) * 0.01),
          };
        }),
      };
      return { payload: JSON.stringify(report), cursor };
    });
  }
}

export async function startSimDevice(brokerUrl: string, protocolVersion: 4 | 5, spec: SimDeviceSpec, intervalMs = 200): Promise<SimDevice> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `edgerun-sim-${spec.deviceId}-`));
  const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 100 });
  const backlog = new SqliteTelemetryBacklog(path.join(dir, 'telemetry-backlog.db'));
  const random = rng(spec.deviceId.length * 7919 + spec.watts);
  seedHistory(spec, backlog, db, random);

  const statusTopic = topics.status(PREFIX, spec.deviceId);
  const client = mqtt.connect(brokerUrl, {
    clientId: `edgerun-${spec.deviceId}`, protocolVersion, reconnectPeriod: 200, clean: true,
    will: { topic: statusTopic, payload: Buffer.from(JSON.stringify(status(spec, false))), qos: 1, retain: true },
  });
  client.on('error', () => undefined);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.publishAsync(statusTopic, JSON.stringify(status(spec, true)), { qos: 1, retain: true });
  if (spec.progress) {
    const progress: DeploymentProgress = { protocol: 1, deviceId: spec.deviceId, ...spec.progress, at: new Date().toISOString() };
    await client.publishAsync(topics.progress(PREFIX, spec.deviceId), JSON.stringify(progress), { qos: 1, retain: true });
  }

  const uplink = new TelemetryUplink({ client, prefix: PREFIX, deviceId: spec.deviceId, backlog, telemetry: db, intervalMs, log: pino({ level: 'silent' }) });
  let lastPowerAt = Date.now();
  const traffic = setInterval(() => {
    const now = Date.now();
    for (const m of spec.models) {
      for (let i = 0; i < 4; i++) {
        const ms = m.latencyMs * (0.8 + random() * 0.5);
        recorder.recordRequest({ at: now, model: m.name, version: m.version, engine: 'webgpu', queueMs: 0.2, computeMs: ms * 0.9, totalMs: ms, batchSize: 1, ok: random() > 0.02 });
      }
      recorder.recordEnergy({ at: now, intervalMs: now - lastPowerAt, model: m.name, version: m.version, inferences: 4, energyJ: (spec.watts * (now - lastPowerAt)) / 1000 / spec.models.length });
      recorder.recordAccuracy({ at: now, model: m.name, version: m.version, kind: 'shadow', agreement: m.accuracy, samples: 2, baselineVersion: 'previous' });
    }
    const watts = spec.watts * (0.9 + random() * 0.2);
    recorder.recordPower({ at: now, source: 'rapl:package-0', watts, energyJ: (watts * (now - lastPowerAt)) / 1000, intervalMs: now - lastPowerAt });
    lastPowerAt = now;
  }, 100);
  uplink.start();

  let stopped = false;
  return {
    spec, uplink, client,
    dropOffline() { client.options.reconnectPeriod = 0; client.stream.destroy(); },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(traffic);
      await uplink.stop(500);
      await client.endAsync(true);
      backlog.close();
      recorder.close();
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
