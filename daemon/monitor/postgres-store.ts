/** The monitor's store for fleets that outgrow one box: PostgreSQL, through one `pg` connection. */
import pg from 'pg';
import { EdgerunError } from '../errors.ts';
import { SqlMonitorStore, type SqlDriver } from './sql-store.ts';

class PostgresDriver implements SqlDriver {
  constructor(private readonly client: pg.Client, readonly description: string) {}

  async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.client.query(numbered(sql), params)).rows as T[];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.client.query(numbered(sql), params)).rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/** `?` → `$1, $2, …` (the store's SQL has no `?` inside string literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The URL as logs and errors may show it: without the password. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable PostgreSQL URL)';
  }
}

export async function openPostgresMonitorStore(url: string): Promise<SqlMonitorStore> {
  const description = redactUrl(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // A connection lost later surfaces as an error of the next query; without a listener it would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_MONITOR', `monitor store ${description} cannot be reached: ${(error as Error).message}`, { store: description }, { cause: error });
  }
  const store = new SqlMonitorStore(new PostgresDriver(client, description));
  await store.init();
  return store;
}
