/** Opening the telemetry database: migrations, pragmas, and damaged or foreign files. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import Database from 'better-sqlite3';
import { openOrQuarantine, openTelemetryDb, SCHEMA_VERSION, telemetryDbPath } from '../../daemon/telemetry/schema.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { tempDir } from './telemetry-plans.ts';

t.test('a new database is migrated to the current schema with WAL and incremental auto-vacuum', async (t) => {
  const file = telemetryDbPath(path.join(tempDir(t), 'state'));
  const db = openTelemetryDb(file, { check: 'quick' });
  t.teardown(() => db.close());
  t.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
  t.equal(db.pragma('synchronous', { simple: true }), 1, 'NORMAL');
  t.equal(db.pragma('auto_vacuum', { simple: true }), 2, 'INCREMENTAL');
  const tables = db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`).all().map((r) => (r as { name: string }).name);
  t.same(tables, ['accuracy', 'energy', 'events', 'power_samples', 'requests', 'rollups']);
});

t.test('reopening keeps data and does not migrate again', async (t) => {
  const file = path.join(tempDir(t), 'telemetry.db');
  const first = openTelemetryDb(file);
  first.prepare(`INSERT INTO events (at, kind) VALUES (1, 'start')`).run();
  first.close();
  const again = openTelemetryDb(file);
  t.teardown(() => again.close());
  t.equal((again.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, 1);
  t.equal(again.pragma('user_version', { simple: true }), SCHEMA_VERSION);
});

t.test('a file that is not a database is EDGERUN_ERR_TELEMETRY naming the file', async (t) => {
  const file = path.join(tempDir(t), 'telemetry.db');
  fs.writeFileSync(file, Buffer.from('this is not an SQLite database, just garbage bytes '.repeat(200)));
  await expectEdgerunError(t, () => openTelemetryDb(file), 'EDGERUN_ERR_TELEMETRY', new RegExp(file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')), /not a database/);
});

t.test('a database with damaged pages fails the quick check at open', async (t) => {
  const file = path.join(tempDir(t), 'telemetry.db');
  const db = openTelemetryDb(file);
  const insert = db.prepare(`INSERT INTO requests (at, model, version, engine, queue_ms, compute_ms, total_ms, batch, ok) VALUES (?, 'm', '1', 'cpu', 0, 1, 1, 1, 1)`);
  db.transaction(() => { for (let i = 0; i < 5000; i++) insert.run(i); })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  // Scribble over pages in the middle of the file (b-tree pages of the requests table and its indexes).
  const fd = fs.openSync(file, 'r+');
  const size = fs.fstatSync(fd).size;
  fs.writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, Math.floor(size / 2 / 4096) * 4096);
  fs.closeSync(fd);
  await expectEdgerunError(t, () => openTelemetryDb(file, { check: 'quick' }), 'EDGERUN_ERR_TELEMETRY', /telemetry\.db/);
});

t.test('a database from a newer edgerun is refused, not downgraded', async (t) => {
  const file = path.join(tempDir(t), 'telemetry.db');
  const raw = new Database(file);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  await expectEdgerunError(t, () => openTelemetryDb(file), 'EDGERUN_ERR_TELEMETRY', /newer than this edgerun/);
  await expectEdgerunError(t, () => openOrQuarantine(file), 'EDGERUN_ERR_TELEMETRY', /newer than this edgerun/);
  t.ok(fs.existsSync(file), 'a newer database is not moved aside');
});

t.test('read-only opening needs an existing, migrated database', async (t) => {
  const dir = tempDir(t);
  await expectEdgerunError(t, () => openTelemetryDb(path.join(dir, 'missing.db'), { readonly: true }), 'EDGERUN_ERR_TELEMETRY', /no telemetry database at .*missing\.db/);
  const file = path.join(dir, 'telemetry.db');
  openTelemetryDb(file).close();
  const reader = openTelemetryDb(file, { readonly: true });
  t.teardown(() => reader.close());
  t.equal((reader.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n, 0);
  const old = path.join(dir, 'old.db');
  new Database(old).close();
  await expectEdgerunError(t, () => openTelemetryDb(old, { readonly: true }), 'EDGERUN_ERR_TELEMETRY', /schema 0.*start the daemon once/);
});

t.test('openOrQuarantine moves a damaged database aside and starts a new one', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'telemetry.db');
  fs.writeFileSync(file, 'garbage'.repeat(1000));
  let moved = '';
  const db = openOrQuarantine(file, (to) => { moved = to; });
  t.teardown(() => db.close());
  t.match(moved, /telemetry\.db\.corrupt-\d+$/);
  t.equal(fs.readFileSync(moved, 'utf8'), 'garbage'.repeat(1000), 'the damaged file is kept for inspection');
  t.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
});
