/**
 * kill -9 of a process writing telemetry, at random moments mid-batch: the reopened database passes
 * PRAGMA integrity_check and every committed batch has its rollups (rows and rollups share one transaction).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { once } from 'node:events';
import t from 'tap';
import { openTelemetryDb } from '../../daemon/telemetry/schema.ts';
import { rng, tempDir } from './telemetry-plans.ts';

const recorderUrl = new URL('../../daemon/telemetry/recorder.ts', import.meta.url).href;
const schemaUrl = new URL('../../daemon/telemetry/schema.ts', import.meta.url).href;

// Writes batches of 500 requests plus events as fast as it can, forever; says 'ready' after its first commit of this run.
const writer = `
import { openTelemetryDb } from ${JSON.stringify(schemaUrl)};
import { TelemetryRecorder } from ${JSON.stringify(recorderUrl)};
const db = openTelemetryDb(process.argv[1]);
const recorder = new TelemetryRecorder(db, { batchSize: 500, flushIntervalMs: 5 });
let n = 0;
let announced = false;
const count = db.prepare('SELECT count(*) AS n FROM requests');
const before = count.get().n;
function burst() {
  for (let i = 0; i < 500; i++, n++) {
    recorder.recordRequest({ at: Date.now(), model: 'm' + (n % 3), version: String(n % 2 + 1), engine: 'cpu', queueMs: 0.1, computeMs: (n % 97) / 10, totalMs: (n % 97) / 10 + 0.2, batchSize: 1, ok: n % 50 !== 0, error: n % 50 === 0 ? 'EDGERUN_ERR_TIMEOUT' : undefined });
  }
  if (n % 2000 === 0) recorder.recordEvent({ at: Date.now(), kind: 'swap', model: 'm0', version: '2', details: { n } });
  recorder.recordPower({ at: Date.now(), source: 'rapl:package-0', watts: 12.5, energyJ: 0.0125, intervalMs: 1 });
  if (!announced && count.get().n > before) { announced = true; process.stdout.write('ready\\n'); }
  setImmediate(burst);
}
burst();
`;

t.test('a writer killed with SIGKILL mid-batch 12 times leaves a database that passes integrity_check', async (t) => {
  const file = path.join(tempDir(t), 'telemetry.db');
  const random = rng(42);
  let previousRows = 0;
  for (let kill = 0; kill < 12; kill++) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the writer did not start within 30 s')), 30_000);
      child.stdout!.on('data', (chunk) => {
        out += chunk;
        if (out.includes('ready')) { clearTimeout(timer); resolve(); }
      });
      child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the writer exited early (${code})`)); });
    });
    // Let it write for a while: the kill lands at a random point of some batch.
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(random() * 180)));
    child.kill('SIGKILL');
    const [code, signal] = await exited;
    t.equal(signal, 'SIGKILL', `run ${kill}: killed (code ${code})`);

    const db = openTelemetryDb(file, { check: 'quick' });
    try {
      t.same(db.pragma('integrity_check'), [{ integrity_check: 'ok' }], `run ${kill}: integrity_check ok`);
      const rows = (db.prepare('SELECT count(*) AS n FROM requests').get() as { n: number }).n;
      const rolled = (db.prepare(`SELECT sum(count) AS n FROM rollups WHERE resolution = 'minute'`).get() as { n: number }).n;
      t.equal(rolled, rows, `run ${kill}: rollups account for exactly the ${rows} committed rows`);
      t.ok(rows > previousRows, `run ${kill}: the database grew (${previousRows} → ${rows})`);
      previousRows = rows;
    } finally {
      db.close();
    }
  }
});
