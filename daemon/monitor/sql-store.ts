/**
 * The monitor's store in SQL that SQLite and PostgreSQL both run: `?` placeholders (the PostgreSQL driver numbers
 * them), BIGINT times in epoch ms, ON CONFLICT upserts, casts where PostgreSQL needs a parameter's type. Every
 * operation runs alone (a promise queue), so a report and its model rows are one transaction on the one
 * connection either driver holds.
 */
import { EdgerunError } from '../errors.ts';
import type { DeploymentProgress, DeploymentState, DeviceStatus, TelemetryReport } from '../fleet/protocol.ts';
import type {
  FleetDevice, MonitorStore, RolloutSummary, SeqGap, StoreCounts, TelemetryOutcome, TelemetryQuery, TelemetryRow,
} from './store-types.ts';

export interface SqlDriver {
  readonly description: string;
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    online INTEGER,
    groups_json TEXT NOT NULL DEFAULT '[]',
    target TEXT,
    agent_version TEXT,
    models_json TEXT NOT NULL DEFAULT '[]',
    last_seen BIGINT NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS progress (
    device_id TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    rollout_id TEXT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    state TEXT NOT NULL,
    received_chunks BIGINT NOT NULL,
    chunk_count BIGINT NOT NULL,
    code TEXT,
    reason TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (device_id, deployment_id)
  )`,
  `CREATE TABLE IF NOT EXISTS reports (
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    dropped BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
  )`,
  `CREATE TABLE IF NOT EXISTS report_models (
    device_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    window_end BIGINT NOT NULL,
    window_ms BIGINT NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    throughput DOUBLE PRECISION NOT NULL,
    p50 DOUBLE PRECISION,
    p95 DOUBLE PRECISION,
    p99 DOUBLE PRECISION,
    power_w DOUBLE PRECISION,
    energy_j DOUBLE PRECISION,
    accuracy DOUBLE PRECISION,
    PRIMARY KEY (device_id, seq, model, version)
  )`,
  'CREATE INDEX IF NOT EXISTS report_models_by_time ON report_models (window_end)',
  'CREATE INDEX IF NOT EXISTS report_models_by_model ON report_models (model, window_end)',
  `CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
];

const LATER = (column: string) => `CASE WHEN devices.${column} > excluded.${column} THEN devices.${column} ELSE excluded.${column} END`;

const num = (value: unknown): number => Number(value);
const numOrNull = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

export class SqlMonitorStore implements MonitorStore {
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly driver: SqlDriver) {}

  get description(): string { return this.driver.description; }

  init(): Promise<void> {
    return this.#serial('init', async () => {
      for (const statement of SCHEMA) await this.driver.run(statement);
    });
  }

  recordStatus(status: DeviceStatus, _receivedAt: number): Promise<void> {
    // The newest status received wins: a device's retained status and its will are the latest word on it.
    return this.#serial('recordStatus', async () => {
      await this.driver.run(`INSERT INTO devices (device_id, online, groups_json, target, agent_version, models_json, last_seen)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, groups_json = excluded.groups_json,
          target = excluded.target, agent_version = excluded.agent_version, models_json = excluded.models_json,
          last_seen = ${LATER('last_seen')}`,
      [status.deviceId, status.online ? 1 : 0, JSON.stringify(status.groups), status.target ?? null, status.agentVersion,
        JSON.stringify(status.models), Date.parse(status.at)]);
    });
  }

  recordProgress(p: DeploymentProgress, _receivedAt: number): Promise<void> {
    return this.#serial('recordProgress', async () => {
      const at = Date.parse(p.at);
      await this.driver.run('BEGIN');
      try {
        await this.driver.run(`INSERT INTO progress (device_id, deployment_id, rollout_id, model, version, state, received_chunks,
            chunk_count, code, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (device_id, deployment_id) DO UPDATE SET rollout_id = excluded.rollout_id, model = excluded.model,
            version = excluded.version, state = excluded.state, received_chunks = excluded.received_chunks,
            chunk_count = excluded.chunk_count, code = excluded.code, reason = excluded.reason, at = excluded.at
          WHERE progress.at <= excluded.at`,
        [p.deviceId, p.deploymentId, p.rolloutId ?? null, p.model.name, p.model.version, p.state, p.receivedChunks, p.chunkCount,
          p.code ?? null, p.reason ?? null, at]);
        await this.#touch(p.deviceId, at);
        await this.driver.run('COMMIT');
      } catch (error) {
        await this.driver.run('ROLLBACK');
        throw error;
      }
    });
  }

  recordTelemetry(r: TelemetryReport, receivedAt: number): Promise<TelemetryOutcome> {
    return this.#serial('recordTelemetry', async () => {
      const start = Date.parse(r.windowStart);
      const end = Date.parse(r.windowEnd);
      await this.driver.run('BEGIN');
      try {
        const inserted = await this.driver.run(`INSERT INTO reports (device_id, seq, window_start, window_end, dropped, received_at)
          VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, seq) DO NOTHING`,
        [r.deviceId, r.seq, start, end, r.dropped ?? 0, receivedAt]);
        if (inserted === 0) {
          await this.#count('duplicate_reports');
        } else {
          for (const m of r.models) {
            await this.driver.run(`INSERT INTO report_models (device_id, seq, model, version, window_end, window_ms, requests, errors,
              throughput, p50, p95, p99, power_w, energy_j, accuracy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (device_id, seq, model, version) DO NOTHING`,
            [r.deviceId, r.seq, m.name, m.version, end, Math.max(0, end - start), m.requests, m.errors, m.throughputPerSec,
              m.latencyMs.p50, m.latencyMs.p95, m.latencyMs.p99, m.powerWatts, m.energyPerInferenceJ, m.accuracy]);
          }
          await this.#touch(r.deviceId, end);
        }
        await this.driver.run('COMMIT');
        return inserted === 0 ? 'duplicate' : 'stored';
      } catch (error) {
        await this.driver.run('ROLLBACK');
        throw error;
      }
    });
  }

  devices(): Promise<FleetDevice[]> {
    return this.#serial('devices', async () => {
      const rows = await this.driver.all<Record<string, unknown>>(`SELECT d.device_id, d.online, d.groups_json, d.target,
          d.agent_version, d.models_json, d.last_seen, s.first_seq, s.last_seq, s.reports
        FROM devices d LEFT JOIN (SELECT device_id, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS reports
          FROM reports GROUP BY device_id) s ON s.device_id = d.device_id
        ORDER BY d.device_id`);
      const latest = await this.driver.all<Record<string, unknown>>(`SELECT p.* FROM progress p
        WHERE p.at = (SELECT max(q.at) FROM progress q WHERE q.device_id = p.device_id) ORDER BY p.device_id, p.deployment_id`);
      const deployments = new Map(latest.map((p) => [String(p.device_id), p]));
      return rows.map((d): FleetDevice => {
        const p = deployments.get(String(d.device_id));
        const reports = numOrNull(d.reports);
        return {
          deviceId: String(d.device_id),
          online: d.online === null ? null : num(d.online) === 1,
          groups: JSON.parse(String(d.groups_json)) as string[],
          target: (d.target as string | null) ?? null,
          agentVersion: (d.agent_version as string | null) ?? null,
          models: JSON.parse(String(d.models_json)) as FleetDevice['models'],
          deployment: p ? {
            deploymentId: String(p.deployment_id), rolloutId: (p.rollout_id as string | null) ?? null, model: String(p.model),
            version: String(p.version), state: p.state as DeploymentState, receivedChunks: num(p.received_chunks),
            chunkCount: num(p.chunk_count), code: (p.code as string | null) ?? null, reason: (p.reason as string | null) ?? null, at: num(p.at),
          } : null,
          lastSeen: num(d.last_seen),
          lastSeq: numOrNull(d.last_seq),
          missingReports: reports ? num(d.last_seq) - num(d.first_seq) + 1 - reports : 0,
        };
      });
    });
  }

  telemetry(q: TelemetryQuery): Promise<TelemetryRow[]> {
    return this.#serial('telemetry', async () => {
      const rows = await this.driver.all<Record<string, unknown>>(`SELECT * FROM report_models
        WHERE window_end > ? AND window_end <= ? AND (CAST(? AS TEXT) IS NULL OR device_id = ?) AND (CAST(? AS TEXT) IS NULL OR model = ?)
        ORDER BY window_end DESC, device_id DESC, seq DESC, model DESC, version DESC LIMIT ?`,
      [q.since, q.until, q.deviceId ?? null, q.deviceId ?? null, q.model ?? null, q.model ?? null, q.limit ?? 20_000]);
      return rows.reverse().map((r) => ({
        deviceId: String(r.device_id), seq: num(r.seq), at: num(r.window_end), windowMs: num(r.window_ms),
        model: String(r.model), version: String(r.version), requests: num(r.requests), errors: num(r.errors),
        throughputPerSec: num(r.throughput), p50: numOrNull(r.p50), p95: numOrNull(r.p95), p99: numOrNull(r.p99),
        powerWatts: numOrNull(r.power_w), energyPerInferenceJ: numOrNull(r.energy_j), accuracy: numOrNull(r.accuracy),
      }));
    });
  }

  seqs(deviceId: string): Promise<number[]> {
    return this.#serial('seqs', async () => (await this.driver.all<{ seq: unknown }>('SELECT seq FROM reports WHERE device_id = ? ORDER BY seq', [deviceId])).map((r) => num(r.seq)));
  }

  gaps(): Promise<SeqGap[]> {
    return this.#serial('gaps', async () => {
      const rows = await this.driver.all<{ device_id: string; seq: unknown; next_seq: unknown }>(`SELECT device_id, seq, next_seq FROM (
          SELECT device_id, seq, lead(seq) OVER (PARTITION BY device_id ORDER BY seq) AS next_seq FROM reports) w
        WHERE next_seq > seq + 1 ORDER BY device_id, seq`);
      const byDevice = new Map<string, SeqGap>();
      for (const r of rows) {
        const gap = byDevice.get(r.device_id) ?? { deviceId: r.device_id, ranges: [], missing: 0 };
        const range: [number, number] = [num(r.seq) + 1, num(r.next_seq) - 1];
        gap.ranges.push(range);
        gap.missing += range[1] - range[0] + 1;
        byDevice.set(r.device_id, gap);
      }
      return [...byDevice.values()];
    });
  }

  rollouts(): Promise<RolloutSummary[]> {
    return this.#serial('rollouts', async () => {
      const rows = await this.driver.all<Record<string, unknown>>(`SELECT device_id, deployment_id, rollout_id, model, version, state, at
        FROM progress ORDER BY at, device_id`);
      const rollouts = new Map<string, RolloutSummary & { byDevice: Map<string, DeploymentState> }>();
      for (const r of rows) {
        const id = String(r.rollout_id ?? r.deployment_id);
        const summary = rollouts.get(id) ?? {
          id, kind: r.rollout_id ? 'rollout' as const : 'deployment' as const, model: String(r.model), version: String(r.version),
          states: {}, devices: 0, updatedAt: 0, byDevice: new Map<string, DeploymentState>(),
        };
        // Rows come oldest first: a device's last row in a rollout is its current state there.
        summary.byDevice.set(String(r.device_id), r.state as DeploymentState);
        summary.updatedAt = Math.max(summary.updatedAt, num(r.at));
        rollouts.set(id, summary);
      }
      return [...rollouts.values()].sort((a, b) => b.updatedAt - a.updatedAt).map(({ byDevice, ...summary }) => {
        const states: RolloutSummary['states'] = {};
        for (const state of byDevice.values()) states[state] = (states[state] ?? 0) + 1;
        return { ...summary, states, devices: byDevice.size };
      });
    });
  }

  counts(): Promise<StoreCounts> {
    return this.#serial('counts', async () => {
      const [row] = await this.driver.all<Record<string, unknown>>(`SELECT (SELECT count(*) FROM devices) AS devices,
        (SELECT count(*) FROM reports) AS reports, (SELECT coalesce(sum(d), 0) FROM (SELECT max(dropped) AS d FROM reports GROUP BY device_id) m) AS dropped,
        (SELECT coalesce(max(value), 0) FROM counters WHERE name = 'duplicate_reports') AS duplicates`);
      return { devices: num(row.devices), reports: num(row.reports), duplicateReports: num(row.duplicates), droppedReported: num(row.dropped) };
    });
  }

  close(): Promise<void> {
    return this.#serial('close', () => this.driver.close());
  }

  /** A device heard of only through progress or telemetry still gets a row (online unknown until its status). */
  async #touch(deviceId: string, at: number): Promise<void> {
    await this.driver.run(`INSERT INTO devices (device_id, last_seen) VALUES (?, ?)
      ON CONFLICT (device_id) DO UPDATE SET last_seen = ${LATER('last_seen')}`, [deviceId, at]);
  }

  async #count(name: string): Promise<void> {
    await this.driver.run(`INSERT INTO counters (name, value) VALUES (?, 1)
      ON CONFLICT (name) DO UPDATE SET value = counters.value + 1`, [name]);
  }

  #serial<T>(operation: string, work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work).catch((error: unknown) => {
      if (error instanceof EdgerunError) throw error;
      throw new EdgerunError('EDGERUN_ERR_MONITOR', `monitor store ${this.description}: ${operation} failed: ${(error as Error).message}`,
        { store: this.description, operation }, { cause: error });
    });
    this.#queue = result.catch(() => undefined);
    return result;
  }
}
