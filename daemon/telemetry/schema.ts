/**
 * The telemetry database: schema, versioned migrations (PRAGMA user_version) and opening with the pragmas the
 * recorder relies on. One file per daemon, under the state directory.
 *
 * Durability: WAL with synchronous=NORMAL is the connection default (a commit is not fsynced; a power cut may
 * lose the last second of request rows but never corrupts the file). The recorder switches to synchronous=FULL
 * for batches that carry lifecycle events, whose loss would hide a swap or rollback from the operator.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EdgerunError } from '../errors.ts';

export type TelemetryDb = Database.Database;

export const TELEMETRY_DB_FILENAME = 'telemetry.db';

export function telemetryDbPath(stateDir: string): string {
  return path.join(stateDir, TELEMETRY_DB_FILENAME);
}

/** Each migration runs in its own transaction and bumps user_version to its index + 1. */
const MIGRATIONS: ((db: TelemetryDb) => void)[] = [
  (db) => db.exec(`
    CREATE TABLE requests (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      model TEXT NOT NULL,
      version TEXT NOT NULL,
      engine TEXT NOT NULL,
      queue_ms REAL NOT NULL,
      compute_ms REAL NOT NULL,
      total_ms REAL NOT NULL,
      batch INTEGER NOT NULL,
      ok INTEGER NOT NULL,
      error TEXT
    );
    CREATE INDEX requests_by_time ON requests(at);
    CREATE INDEX requests_by_version ON requests(model, version, at);

    CREATE TABLE events (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      kind TEXT NOT NULL,
      model TEXT,
      version TEXT,
      details TEXT
    );
    CREATE INDEX events_by_time ON events(at);

    -- resolution 'raw' rows are single gate runs or shadow comparisons; 'hour' rows are shadow comparisons merged by
    -- retention (agreement weighted by samples).
    CREATE TABLE accuracy (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      model TEXT NOT NULL,
      version TEXT NOT NULL,
      kind TEXT NOT NULL CHECK (kind IN ('gate', 'shadow')),
      agreement REAL NOT NULL,
      samples INTEGER NOT NULL,
      baseline_version TEXT,
      resolution TEXT NOT NULL DEFAULT 'raw' CHECK (resolution IN ('raw', 'hour'))
    );
    CREATE INDEX accuracy_by_version ON accuracy(model, version, kind, at);
    CREATE INDEX accuracy_by_time ON accuracy(at);

    -- One row per source per sampling interval ending at 'at'. watts is NULL when the source could not be read,
    -- and reason says why; energy_j is the energy over the interval. Retention downsamples old rows in place into
    -- one row per minute, then per hour (interval_ms grows, watts becomes the interval's mean).
    CREATE TABLE power_samples (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      source TEXT NOT NULL,
      watts REAL,
      reason TEXT,
      energy_j REAL,
      interval_ms INTEGER NOT NULL,
      resolution TEXT NOT NULL DEFAULT 'raw' CHECK (resolution IN ('raw', 'minute', 'hour')),
      CHECK ((watts IS NULL) = (reason IS NOT NULL))
    );
    CREATE INDEX power_by_time ON power_samples(at);
    CREATE INDEX power_by_source ON power_samples(source, at);

    -- Energy attributed to a model version over one sampling interval (see docs/TELEMETRY.md).
    CREATE TABLE energy (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      interval_ms INTEGER NOT NULL,
      model TEXT NOT NULL,
      version TEXT NOT NULL,
      inferences INTEGER NOT NULL,
      energy_j REAL NOT NULL
    );
    CREATE INDEX energy_by_time ON energy(at);

    -- Per minute (written with every batch of requests) and per hour (retention merges old minutes).
    CREATE TABLE rollups (
      resolution TEXT NOT NULL CHECK (resolution IN ('minute', 'hour')),
      bucket INTEGER NOT NULL,
      model TEXT NOT NULL,
      version TEXT NOT NULL,
      engine TEXT NOT NULL,
      count INTEGER NOT NULL,
      errors INTEGER NOT NULL,
      items INTEGER NOT NULL,
      sum_queue_ms REAL NOT NULL,
      sum_compute_ms REAL NOT NULL,
      sum_total_ms REAL NOT NULL,
      max_total_ms REAL NOT NULL,
      hist TEXT NOT NULL,
      p50_ms REAL,
      p95_ms REAL,
      p99_ms REAL,
      energy_j REAL NOT NULL DEFAULT 0,
      energy_inferences INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (resolution, model, version, bucket)
    ) WITHOUT ROWID;
    CREATE INDEX rollups_by_time ON rollups(resolution, bucket);
  `),
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface OpenOptions {
  readonly?: boolean;
  /**
   * 'quick' runs PRAGMA quick_check at open so a damaged file is reported at start, not at the first unlucky
   * query. Costs a read of the whole file; 'none' skips it (readers such as the CLI).
   */
  check?: 'quick' | 'none';
}

/** Opens (creating and migrating when writable) the database. Any failure is EDGERUN_ERR_TELEMETRY naming the file. */
export function openTelemetryDb(file: string, options: OpenOptions = {}): TelemetryDb {
  const readonly = options.readonly ?? false;
  if (readonly && !fs.existsSync(file)) {
    throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `no telemetry database at ${file}`, { file });
  }
  let db: TelemetryDb | undefined;
  try {
    if (!readonly) fs.mkdirSync(path.dirname(file), { recursive: true });
    db = new Database(file, { readonly, fileMustExist: readonly });
    configure(db, readonly);
    if (options.check === 'quick') quickCheck(db, file);
    if (readonly) checkReadableVersion(db, file);
    else migrate(db, file);
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof EdgerunError) throw error;
    const sqliteCode = (error as { code?: string }).code;
    const corrupt = sqliteCode === 'SQLITE_NOTADB' || sqliteCode === 'SQLITE_CORRUPT';
    throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `telemetry database ${file} cannot be opened: ${(error as Error).message}`, { file, corrupt }, { cause: error });
  }
}

function configure(db: TelemetryDb, readonly: boolean): void {
  // The first statement reads the header: a file that is not SQLite fails here with SQLITE_NOTADB.
  db.pragma('schema_version', { simple: true });
  // A busy database (a checkpoint by another connection) waits briefly instead of failing the batch at once.
  db.pragma('busy_timeout = 250');
  if (readonly) return;
  if (db.pragma('user_version', { simple: true }) === 0 && tableCount(db) === 0) {
    // Must be chosen before the first table exists; lets retention return freed pages to the filesystem.
    db.pragma('auto_vacuum = INCREMENTAL');
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
}

function tableCount(db: TelemetryDb): number {
  return (db.prepare(`SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'`).get() as { n: number }).n;
}

function quickCheck(db: TelemetryDb, file: string): void {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  if (rows.length !== 1 || rows[0].quick_check !== 'ok') {
    const problems = rows.slice(0, 3).map((r) => r.quick_check).join('; ');
    throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `telemetry database ${file} is damaged: ${problems}`, { file, corrupt: true, problems: rows.length });
  }
}

function migrate(db: TelemetryDb, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  tooNew(current, file);
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      MIGRATIONS[version](db);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}

function checkReadableVersion(db: TelemetryDb, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  tooNew(current, file);
  if (current < SCHEMA_VERSION) {
    throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `telemetry database ${file} has schema ${current}, this edgerun reads ${SCHEMA_VERSION}: start the daemon once to migrate it`, { file, schema: current });
  }
}

function tooNew(current: number, file: string): void {
  if (current > SCHEMA_VERSION) {
    throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `telemetry database ${file} has schema ${current}, newer than this edgerun (${SCHEMA_VERSION})`, { file, schema: current });
  }
}

/**
 * Opens the database, or, when the file is damaged (not a database, or failing quick_check), moves it aside with
 * its WAL as `FILE.corrupt-<epoch ms>` and starts a new one: for a daemon that must keep serving. Other failures
 * (permissions, a newer schema) still throw.
 */
export function openOrQuarantine(file: string, onQuarantine?: (movedTo: string, error: EdgerunError) => void): TelemetryDb {
  try {
    return openTelemetryDb(file, { check: 'quick' });
  } catch (error) {
    if (!(error instanceof EdgerunError) || error.context.corrupt !== true) throw error;
    const movedTo = `${file}.corrupt-${Date.now()}`;
    fs.renameSync(file, movedTo);
    for (const suffix of ['-wal', '-shm']) {
      if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, movedTo + suffix);
    }
    onQuarantine?.(movedTo, error);
    return openTelemetryDb(file, { check: 'quick' });
  }
}
