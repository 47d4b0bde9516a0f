/**
 * The telemetry uplink's outbox: reports wait here, oldest first, until the broker acknowledges them (PUBACK).
 * Bounded by rows and bytes: beyond the bound the oldest reports are dropped and counted; every report carries the
 * count so far (TelemetryReport.dropped, cumulative, so the count survives reports that are themselves dropped). Sequence numbers and the report builder's cursor live in the
 * same database and change in the same transaction as the append, so a crash never reuses a seq or reports the
 * same telemetry twice.
 *
 * `TelemetryBacklog` is the interface the uplink talks to; `SqliteTelemetryBacklog` keeps it in the daemon's state
 * directory with synchronous=FULL (a report the uplink built survives power loss). test/fleet/uplink-backlog.test.ts
 * is the contract suite every implementation passes.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EdgerunError } from '../errors.ts';

export const TELEMETRY_BACKLOG_FILENAME = 'telemetry-backlog.db';

export interface BacklogBounds {
  /** Most reports held (default 10,000: a week of one-minute reports). */
  maxRows: number;
  /** Most payload bytes held (default 16 MiB). */
  maxBytes: number;
}

export const DEFAULT_BACKLOG_BOUNDS: BacklogBounds = { maxRows: 10_000, maxBytes: 16 * 1024 * 1024 };

export interface BacklogEntry {
  seq: number;
  payload: string;
}

/** What the report builder returns for the seq it is given: the payload, and its cursor after this report. */
export interface BuiltReport {
  payload: string;
  cursor: string;
}

export interface BacklogStats {
  rows: number;
  bytes: number;
  /** Reports dropped by the bound since the backlog was created. */
  droppedTotal: number;
  /** The seq the next append gets. */
  nextSeq: number;
}

export interface TelemetryBacklog {
  /**
   * Builds and appends one report atomically: `build` gets the next seq and the number of reports dropped since
   * the backlog was created; the seq, the cursor it returns and the payload are stored together, or none of them.
   * Then drops the oldest reports beyond the bound (never the one just appended). Returns the appended entry.
   */
  append(build: (seq: number, droppedTotal: number) => BuiltReport): BacklogEntry;
  /** The oldest `limit` reports after `afterSeq` (default: from the oldest), in seq order. */
  peek(limit: number, afterSeq?: number): BacklogEntry[];
  /** Removes a report once the broker acknowledged it; a report already dropped is no error. */
  remove(seq: number): void;
  /** The cursor stored with the last append (null before the first). */
  cursor(): string | null;
  stats(): BacklogStats;
  close(): void;
}

export function telemetryBacklogPath(stateDir: string): string {
  return path.join(stateDir, TELEMETRY_BACKLOG_FILENAME);
}

export class SqliteTelemetryBacklog implements TelemetryBacklog {
  readonly #db: Database.Database;
  readonly #bounds: BacklogBounds;
  readonly #statements;

  constructor(readonly file: string, bounds: Partial<BacklogBounds> = {}) {
    this.#bounds = { ...DEFAULT_BACKLOG_BOUNDS, ...bounds };
    for (const [key, value] of Object.entries(this.#bounds)) {
      if (!Number.isInteger(value) || value < 1) throw new EdgerunError('EDGERUN_ERR_CONFIG', `telemetry backlog: ${key} must be a positive integer, got ${value}`, { key, value });
    }
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      this.#db = new Database(file);
      this.#db.pragma('journal_mode = WAL');
      // Every commit is fsynced: a report the uplink appended is not lost with the power.
      this.#db.pragma('synchronous = FULL');
      this.#db.pragma('busy_timeout = 1000');
      this.#db.exec(`
        CREATE TABLE IF NOT EXISTS reports (seq INTEGER PRIMARY KEY, payload TEXT NOT NULL, bytes INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS state (id INTEGER PRIMARY KEY CHECK (id = 1), next_seq INTEGER NOT NULL,
          dropped_total INTEGER NOT NULL, cursor TEXT);
        INSERT OR IGNORE INTO state (id, next_seq, dropped_total, cursor) VALUES (1, 1, 0, NULL);
      `);
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_TELEMETRY', `telemetry backlog ${file} cannot be opened: ${(error as Error).message}`, { file }, { cause: error });
    }
    const db = this.#db;
    this.#statements = {
      state: db.prepare<[], { next_seq: number; dropped_total: number; cursor: string | null }>('SELECT * FROM state WHERE id = 1'),
      insert: db.prepare('INSERT INTO reports (seq, payload, bytes) VALUES (?, ?, ?)'),
      advance: db.prepare('UPDATE state SET next_seq = ?, cursor = ? WHERE id = 1'),
      totals: db.prepare<[], { rows: number; bytes: number | null }>('SELECT count(*) AS rows, sum(bytes) AS bytes FROM reports'),
      oldest: db.prepare<[number], { seq: number; bytes: number }>('SELECT seq, bytes FROM reports WHERE seq < ? ORDER BY seq LIMIT 1'),
      deleteOne: db.prepare('DELETE FROM reports WHERE seq = ?'),
      countDrop: db.prepare('UPDATE state SET dropped_total = dropped_total + 1 WHERE id = 1'),
      peek: db.prepare<[number, number], BacklogEntry>('SELECT seq, payload FROM reports WHERE seq > ? ORDER BY seq LIMIT ?'),
    };
    this.#append = db.transaction((build: (seq: number, droppedTotal: number) => BuiltReport): BacklogEntry => {
      const state = this.#statements.state.get()!;
      const seq = state.next_seq;
      const built = build(seq, state.dropped_total);
      this.#statements.insert.run(seq, built.payload, Buffer.byteLength(built.payload));
      this.#statements.advance.run(seq + 1, built.cursor);
      this.#enforceBounds(seq);
      return { seq, payload: built.payload };
    });
  }

  readonly #append: (build: (seq: number, droppedTotal: number) => BuiltReport) => BacklogEntry;

  append(build: (seq: number, droppedTotal: number) => BuiltReport): BacklogEntry {
    return this.#append(build);
  }

  #enforceBounds(newest: number): void {
    let { rows, bytes } = this.#statements.totals.get()!;
    bytes ??= 0;
    while (rows > this.#bounds.maxRows || bytes > this.#bounds.maxBytes) {
      const oldest = this.#statements.oldest.get(newest);
      if (!oldest) break;
      this.#statements.deleteOne.run(oldest.seq);
      this.#statements.countDrop.run();
      rows--;
      bytes -= oldest.bytes;
    }
  }

  peek(limit: number, afterSeq = 0): BacklogEntry[] {
    return this.#statements.peek.all(afterSeq, limit);
  }

  remove(seq: number): void {
    this.#statements.deleteOne.run(seq);
  }

  cursor(): string | null {
    return this.#statements.state.get()!.cursor;
  }

  stats(): BacklogStats {
    const state = this.#statements.state.get()!;
    const totals = this.#statements.totals.get()!;
    return { rows: totals.rows, bytes: totals.bytes ?? 0, droppedTotal: state.dropped_total, nextSeq: state.next_seq };
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
