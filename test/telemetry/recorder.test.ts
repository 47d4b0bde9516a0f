/** TelemetryRecorder: queued off the caller's path, batched transactions, bounded queue, failures, shutdown. */
import path from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb, type TelemetryDb } from '../../daemon/telemetry/schema.ts';
import { request, tempDir } from './telemetry-plans.ts';

function setup(t: Test, options: ConstructorParameters<typeof TelemetryRecorder>[1] = {}) {
  const db = openTelemetryDb(path.join(tempDir(t), 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000, ...options });
  t.teardown(() => { recorder.close(); db.close(); });
  return { db, recorder };
}

const count = (db: TelemetryDb, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

t.test('record* writes nothing on the caller\'s path; flush writes rows and minute rollups together', async (t) => {
  const { db, recorder } = setup(t);
  const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
  recorder.recordRequest(request(t0 + 1000, 10));
  recorder.recordRequest(request(t0 + 2000, 20, { ok: false, error: 'EDGERUN_ERR_TIMEOUT', batchSize: 4 }));
  recorder.recordRequest(request(t0 + 61_000, 30, { version: '3' }));
  recorder.recordAccuracy({ at: t0, model: 'resnet', version: '3', kind: 'gate', agreement: 0.995, samples: 200 });
  t.equal(count(db, 'requests'), 0, 'nothing written synchronously');
  recorder.flush();
  t.equal(count(db, 'requests'), 3);
  t.equal(count(db, 'accuracy'), 1);
  const failed = db.prepare('SELECT ok, error, batch FROM requests WHERE total_ms = 20').get();
  t.same(failed, { ok: 0, error: 'EDGERUN_ERR_TIMEOUT', batch: 4 });
  const rollups = db.prepare('SELECT bucket, version, count, errors, items, sum_total_ms, max_total_ms FROM rollups ORDER BY bucket').all();
  t.same(rollups, [
    { bucket: t0, version: '2', count: 2, errors: 1, items: 5, sum_total_ms: 30, max_total_ms: 20 },
    { bucket: t0 + 60_000, version: '3', count: 1, errors: 0, items: 1, sum_total_ms: 30, max_total_ms: 30 },
  ]);
  t.same(recorder.stats(), { queued: 0, written: 4, dropped: 0, invalid: 0, flushes: 1, writeErrors: 0 });
});

t.test('later batches merge into the same minute rollup', async (t) => {
  const { db, recorder } = setup(t);
  const t0 = Date.UTC(2025, 0, 1, 12, 0, 0);
  for (let i = 1; i <= 3; i++) {
    recorder.recordRequest(request(t0 + i * 1000, i * 10));
    recorder.flush();
  }
  const row = db.prepare('SELECT count, sum_total_ms, p50_ms, hist FROM rollups').get() as { count: number; sum_total_ms: number; p50_ms: number; hist: string };
  t.equal(row.count, 3);
  t.equal(row.sum_total_ms, 60);
  t.ok(Math.abs(row.p50_ms - 20) / 20 < 0.011, `p50 ${row.p50_ms} ≈ 20`);
  t.equal(JSON.parse(row.hist).length, 6, 'three buckets of one');
});

t.test('the timer flushes on its own', async (t) => {
  const { db, recorder } = setup(t, { flushIntervalMs: 20 });
  recorder.recordRequest(request(Date.now(), 5));
  for (let i = 0; i < 100 && count(db, 'requests') === 0; i++) await sleep(10);
  t.equal(count(db, 'requests'), 1);
});

t.test('a full batch and a lifecycle event each schedule a flush on the next turn', async (t) => {
  const { db, recorder } = setup(t, { batchSize: 10 });
  for (let i = 0; i < 9; i++) recorder.recordRequest(request(1000 + i, 5));
  await nextTurn();
  t.equal(count(db, 'requests'), 0, '9 of 10: still queued');
  recorder.recordRequest(request(2000, 5));
  t.equal(count(db, 'requests'), 0, 'not on the caller\'s path');
  await nextTurn();
  await nextTurn();
  t.equal(count(db, 'requests'), 10);
  recorder.recordEvent({ at: 3000, kind: 'swap', model: 'resnet', version: '3', details: { from: '2' } });
  t.equal(count(db, 'events'), 0);
  await nextTurn();
  await nextTurn();
  t.same(db.prepare('SELECT kind, model, version, details FROM events').get(), { kind: 'swap', model: 'resnet', version: '3', details: '{"from":"2"}' });
  t.equal(db.pragma('synchronous', { simple: true }), 1, 'back to NORMAL after the durable batch');
});

t.test('a large queue is written over several turns, one batch per transaction', async (t) => {
  const { db, recorder } = setup(t, { batchSize: 100 });
  for (let i = 0; i < 350; i++) recorder.recordRequest(request(1000 + i, 5));
  await nextTurn();
  await nextTurn();
  const afterOne = count(db, 'requests');
  t.ok(afterOne >= 100 && afterOne < 350, `written in steps (${afterOne} after the first turns)`);
  for (let i = 0; i < 20 && count(db, 'requests') < 350; i++) await nextTurn();
  t.equal(count(db, 'requests'), 350);
  t.equal(recorder.stats().flushes, 4);
});

t.test('a full queue drops the oldest records and counts them', async (t) => {
  const { db, recorder } = setup(t, { maxQueue: 5, batchSize: 1000 });
  for (let i = 0; i < 8; i++) recorder.recordRequest(request(1000 + i, i + 1));
  t.equal(recorder.stats().dropped, 3);
  t.equal(recorder.stats().queued, 5);
  recorder.flush();
  t.same(db.prepare('SELECT total_ms FROM requests ORDER BY at').all().map((r) => (r as { total_ms: number }).total_ms), [4, 5, 6, 7, 8]);
});

t.test('invalid records are refused and counted, valid ones around them are kept', async (t) => {
  const { db, recorder } = setup(t);
  recorder.recordRequest(request(1000, Number.NaN));
  recorder.recordRequest(request(1000, 5, { model: '' }));
  recorder.recordAccuracy({ at: 1000, model: 'm', version: '1', kind: 'gate', agreement: 1.5, samples: 10 });
  recorder.recordPower({ at: 1000, source: 'rapl:package-0', watts: null, energyJ: null, intervalMs: 1000 });
  recorder.recordRequest(request(1000, 5));
  recorder.flush();
  t.equal(recorder.stats().invalid, 4);
  t.equal(count(db, 'requests'), 1);
});

t.test('a failing batch is retried, then dropped and counted; later batches are written', async (t) => {
  const { db, recorder } = setup(t, { maxWriteAttempts: 2 });
  // A real write failure: the database itself refuses the row.
  db.exec(`CREATE TRIGGER refuse BEFORE INSERT ON requests WHEN NEW.model = 'poison' BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END`);
  recorder.recordRequest(request(1000, 5));
  recorder.recordRequest(request(1001, 5, { model: 'poison' }));
  recorder.flush();
  t.equal(count(db, 'requests'), 0, 'the whole batch rolled back');
  const stats = recorder.stats();
  t.equal(stats.writeErrors, 2);
  t.equal(stats.dropped, 2);
  t.match(stats.lastError, /refused by test trigger/);
  t.equal(count(db, 'rollups'), 0, 'no rollup without its rows');
  recorder.recordRequest(request(2000, 5));
  recorder.flush();
  t.equal(count(db, 'requests'), 1);
});

t.test('event details that cannot be serialised are replaced, not allowed to fail the batch', async (t) => {
  const { db, recorder } = setup(t);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  recorder.recordEvent({ at: 1000, kind: 'error', details: cyclic });
  recorder.recordEvent({ at: 1001, kind: 'error', details: { big: 10n } });
  recorder.recordRequest(request(1002, 5));
  recorder.flush();
  const details = db.prepare('SELECT details FROM events ORDER BY at').all().map((r) => JSON.parse((r as { details: string }).details));
  t.match(details, [{ unserializable: /circular/i }, { unserializable: /BigInt/ }]);
  t.equal(count(db, 'requests'), 1);
});

t.test('close flushes, is idempotent, and later records are counted as dropped', async (t) => {
  const { db, recorder } = setup(t);
  recorder.recordRequest(request(1000, 5));
  recorder.close();
  recorder.close();
  t.equal(count(db, 'requests'), 1);
  recorder.recordRequest(request(2000, 5));
  t.equal(recorder.stats().dropped, 1);
});

t.test('takeActivity reports inferences (batch items of successful requests) and compute time per version', async (t) => {
  const { recorder } = setup(t);
  recorder.recordRequest(request(1000, 10, { batchSize: 4 }));
  recorder.recordRequest(request(1000, 10, { ok: false, error: 'EDGERUN_ERR_INPUT' }));
  recorder.recordRequest(request(1000, 20, { version: '3' }));
  t.same(recorder.takeActivity(), [
    { model: 'resnet', version: '2', inferences: 4, computeMs: 16 },
    { model: 'resnet', version: '3', inferences: 1, computeMs: 16 },
  ]);
  t.same(recorder.takeActivity(), [], 'reset after each take');
});
