/**
 * The telemetry backlog contract: every TelemetryBacklog implementation runs this suite (MQTT.js's abstract store
 * test is the model). Today that is the SQLite one, on a fresh file and on a file reopened after each step.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { SqliteTelemetryBacklog, type BacklogBounds, type TelemetryBacklog } from '../../daemon/fleet/telemetry-backlog.ts';

type Factory = (t: Test, bounds?: Partial<BacklogBounds>) => { open: () => TelemetryBacklog };

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-backlog-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const report = (tag: string) => (seq: number, dropped: number) => ({ payload: JSON.stringify({ seq, dropped, tag }), cursor: `after-${tag}` });

function backlogContract(name: string, factory: Factory): void {
  t.test(`${name}: appends get consecutive seqs from 1 and peek returns them oldest first`, async (t) => {
    const backlog = factory(t).open();
    t.teardown(() => backlog.close());
    for (const tag of ['a', 'b', 'c']) backlog.append(report(tag));
    t.same(backlog.peek(10).map((e) => [e.seq, JSON.parse(e.payload).tag]), [[1, 'a'], [2, 'b'], [3, 'c']]);
    t.same(backlog.peek(2).map((e) => e.seq), [1, 2], 'limit');
    t.same(backlog.peek(10, 1).map((e) => e.seq), [2, 3], 'after a seq');
    t.equal(backlog.cursor(), 'after-c', 'the cursor of the last append');
  });

  t.test(`${name}: removing acknowledged reports never reuses their seqs`, async (t) => {
    const backlog = factory(t).open();
    t.teardown(() => backlog.close());
    backlog.append(report('a'));
    backlog.append(report('b'));
    backlog.remove(1);
    backlog.remove(2);
    backlog.remove(2);
    t.same(backlog.peek(10), []);
    t.equal(backlog.append(report('c')).seq, 3);
    t.match(backlog.stats(), { rows: 1, nextSeq: 4, droppedTotal: 0 });
  });

  t.test(`${name}: beyond maxRows the oldest are dropped and counted, and every report carries the count so far`, async (t) => {
    const backlog = factory(t, { maxRows: 3 }).open();
    t.teardown(() => backlog.close());
    for (let i = 0; i < 5; i++) backlog.append(report(`r${i}`));
    t.same(backlog.peek(10).map((e) => e.seq), [3, 4, 5], 'the newest three are kept');
    t.equal(backlog.stats().droppedTotal, 2);
    // Appending r3 dropped seq 1, which r4 counts; appending r4 dropped seq 2, which the next report counts.
    t.same(backlog.peek(10).map((e) => JSON.parse(e.payload).dropped), [0, 0, 1]);
    t.equal(JSON.parse(backlog.append(report('r5')).payload).dropped, 2);
    t.equal(JSON.parse(backlog.append(report('r6')).payload).dropped, 3, 'cumulative: the count survives reports that were dropped themselves');
  });

  t.test(`${name}: maxBytes bounds the payload bytes, but the newest report is always kept`, async (t) => {
    const backlog = factory(t, { maxBytes: 100 }).open();
    t.teardown(() => backlog.close());
    const big = (seq: number) => ({ payload: 'x'.repeat(40) + seq, cursor: String(seq) });
    for (let i = 0; i < 4; i++) backlog.append(big);
    t.same(backlog.peek(10).map((e) => e.seq), [3, 4]);
    t.ok(backlog.stats().bytes <= 100);
    backlog.append(() => ({ payload: 'y'.repeat(500), cursor: 'huge' }));
    t.same(backlog.peek(10).map((e) => e.seq), [5], 'a report over the bound alone is kept');
    t.equal(backlog.stats().droppedTotal, 4);
  });

  t.test(`${name}: a build that throws appends nothing and consumes no seq`, async (t) => {
    const backlog = factory(t).open();
    t.teardown(() => backlog.close());
    backlog.append(report('a'));
    t.throws(() => backlog.append(() => { throw new Error('telemetry unreadable'); }), /telemetry unreadable/);
    t.equal(backlog.cursor(), 'after-a');
    t.equal(backlog.append(report('b')).seq, 2);
  });

  t.test(`${name}: reports, seqs, drop counts and the cursor survive a reopen`, async (t) => {
    const store = factory(t, { maxRows: 2 });
    const first = store.open();
    for (const tag of ['a', 'b', 'c']) first.append(report(tag));
    first.remove(2);
    first.close();
    const second = store.open();
    t.teardown(() => second.close());
    t.same(second.peek(10).map((e) => e.seq), [3]);
    t.equal(second.cursor(), 'after-c');
    t.match(second.stats(), { nextSeq: 4, droppedTotal: 1 });
    t.equal(JSON.parse(second.append(report('d')).payload).dropped, 1, 'the drop that appending c caused is counted by the next report');
  });
}

backlogContract('SqliteTelemetryBacklog', (t, bounds) => {
  const file = path.join(tempDir(t), 'state', 'telemetry-backlog.db');
  return { open: () => new SqliteTelemetryBacklog(file, bounds) };
});

t.test('SqliteTelemetryBacklog: the file is in WAL mode and a bad bound is a config error', async (t) => {
  const file = path.join(tempDir(t), 'b.db');
  const backlog = new SqliteTelemetryBacklog(file);
  t.teardown(() => backlog.close());
  const probe = new (await import('better-sqlite3')).default(file, { readonly: true });
  t.teardown(() => probe.close());
  t.equal(probe.pragma('journal_mode', { simple: true }), 'wal');
  t.throws(() => new SqliteTelemetryBacklog(path.join(tempDir(t), 'c.db'), { maxRows: 0 }), { code: 'EDGERUN_ERR_CONFIG', message: /maxRows/ });
});
