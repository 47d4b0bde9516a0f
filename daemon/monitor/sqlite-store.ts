/** The monitor's default store: one SQLite file (WAL), through better-sqlite3. */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { EdgerunError } from '../errors.ts';
import { SqlMonitorStore, type SqlDriver } from './sql-store.ts';

class SqliteDriver implements SqlDriver {
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(readonly description: string) {
    this.#db = new Database(description);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('busy_timeout = 1000');
  }

  #prepare(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.#prepare(sql).all(...params) as T[];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    return this.#prepare(sql).run(...params).changes;
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

export async function openSqliteMonitorStore(file: string): Promise<SqlMonitorStore> {
  let driver: SqliteDriver;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    driver = new SqliteDriver(file);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_MONITOR', `monitor store ${file} cannot be opened: ${(error as Error).message}`, { store: file }, { cause: error });
  }
  const store = new SqlMonitorStore(driver);
  await store.init();
  return store;
}
