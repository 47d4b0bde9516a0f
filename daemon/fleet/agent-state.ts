/**
 * What the fleet agent must remember across restarts and power loss, in SQLite with synchronous=FULL under
 * <state dir>/fleet/agent.db: every deployment it has seen (by deploymentId, with its signed envelope while it
 * is in progress), the highest version per model that became active (the floor a new deployment must exceed),
 * processed command ids, and the trust keys added or removed by signed trust-keys commands.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EdgerunError } from '../errors.ts';
import { compareVersions } from '../package/versions.ts';
import type { DeploymentState } from './protocol.ts';

export const IN_PROGRESS_STATES: readonly DeploymentState[] = ['accepted', 'downloading', 'verifying', 'installing'];

export interface DeploymentRecord {
  deploymentId: string;
  model: string;
  version: string;
  transferId: string;
  state: DeploymentState;
  /** The signed envelope text, kept while the deployment is in progress (re-verified on restart). */
  envelope: string | null;
  code: string | null;
  reason: string | null;
  updatedAt: number;
}

interface DeploymentRow {
  deployment_id: string; model: string; version: string; transfer_id: string; state: string;
  envelope: string | null; code: string | null; reason: string | null; updated_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS deployments (
  deployment_id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL, transfer_id TEXT NOT NULL,
  state TEXT NOT NULL, envelope TEXT, code TEXT, reason TEXT, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS model_floor (model TEXT PRIMARY KEY, version TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (command_id TEXT PRIMARY KEY, kind TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS trust_changes (key_id TEXT PRIMARY KEY, pem TEXT, removed INTEGER NOT NULL, at INTEGER NOT NULL);
`;

function toRecord(row: DeploymentRow): DeploymentRecord {
  return {
    deploymentId: row.deployment_id, model: row.model, version: row.version, transferId: row.transfer_id,
    state: row.state as DeploymentState, envelope: row.envelope, code: row.code, reason: row.reason, updatedAt: row.updated_at,
  };
}

export class AgentState {
  private constructor(private readonly db: Database.Database, readonly file: string) {}

  static open(fleetDir: string): AgentState {
    const file = path.join(fleetDir, 'agent.db');
    try {
      fs.mkdirSync(fleetDir, { recursive: true });
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      // A deployment recorded as processed must stay processed after a power loss: that is the replay guard.
      db.pragma('synchronous = FULL');
      db.exec(SCHEMA);
      return new AgentState(db, file);
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_IO', `fleet state ${file}: cannot open: ${(error as Error).message}`, { file }, { cause: error });
    }
  }

  close(): void {
    this.db.close();
  }

  deployment(deploymentId: string): DeploymentRecord | undefined {
    const row = this.db.prepare('SELECT * FROM deployments WHERE deployment_id = ?').get(deploymentId) as DeploymentRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  inProgress(): DeploymentRecord[] {
    const marks = IN_PROGRESS_STATES.map(() => '?').join(',');
    const rows = this.db.prepare(`SELECT * FROM deployments WHERE state IN (${marks}) ORDER BY updated_at`).all(...IN_PROGRESS_STATES) as DeploymentRow[];
    return rows.map(toRecord);
  }

  /** Inserts or updates a deployment; a finished one drops its envelope (nothing left to resume). */
  record(entry: Omit<DeploymentRecord, 'updatedAt'>): void {
    const keep = IN_PROGRESS_STATES.includes(entry.state) ? entry.envelope : null;
    this.db.prepare(`INSERT INTO deployments (deployment_id, model, version, transfer_id, state, envelope, code, reason, updated_at)
      VALUES (@deploymentId, @model, @version, @transferId, @state, @envelope, @code, @reason, @updatedAt)
      ON CONFLICT(deployment_id) DO UPDATE SET state = excluded.state, envelope = excluded.envelope, code = excluded.code,
        reason = excluded.reason, updated_at = excluded.updated_at`)
      .run({ ...entry, envelope: keep, updatedAt: Date.now() });
  }

  /** The version a new deployment of `model` must exceed (the highest that ever became active here). */
  floor(model: string): string | undefined {
    const row = this.db.prepare('SELECT version FROM model_floor WHERE model = ?').get(model) as { version: string } | undefined;
    return row?.version;
  }

  raiseFloor(model: string, version: string): void {
    const current = this.floor(model);
    if (current !== undefined && compareVersions(current, version) >= 0) return;
    this.db.prepare('INSERT INTO model_floor (model, version) VALUES (?, ?) ON CONFLICT(model) DO UPDATE SET version = excluded.version').run(model, version);
  }

  /** Records a command id; false when it was processed before (a replay or a QoS 1 redelivery). */
  claimCommand(commandId: string, kind: string): boolean {
    const result = this.db.prepare('INSERT OR IGNORE INTO commands (command_id, kind, at) VALUES (?, ?, ?)').run(commandId, kind, Date.now());
    return result.changes === 1;
  }

  trustChanges(): { keyId: string; pem: string | null; removed: boolean }[] {
    const rows = this.db.prepare('SELECT key_id, pem, removed FROM trust_changes ORDER BY at').all() as { key_id: string; pem: string | null; removed: number }[];
    return rows.map((row) => ({ keyId: row.key_id, pem: row.pem, removed: row.removed === 1 }));
  }

  /** One trust-keys command's changes, atomically. */
  changeTrust(added: { keyId: string; pem: string }[], removed: string[]): void {
    const upsert = this.db.prepare(`INSERT INTO trust_changes (key_id, pem, removed, at) VALUES (?, ?, ?, ?)
      ON CONFLICT(key_id) DO UPDATE SET pem = excluded.pem, removed = excluded.removed, at = excluded.at`);
    this.db.transaction(() => {
      const now = Date.now();
      for (const key of added) upsert.run(key.keyId, key.pem, 0, now);
      for (const keyId of removed) upsert.run(keyId, null, 1, now);
    })();
  }
}
