/** `edgerun telemetry`: the text report and --json from a real database; bad flags are usage errors. */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { telemetryCommand } from '../../daemon/cli/telemetry.ts';
import { PowerSampler } from '../../daemon/telemetry/power/sampler.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb, telemetryDbPath } from '../../daemon/telemetry/schema.ts';
import type { TelemetrySummary } from '../../daemon/telemetry/summary-types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { exactQuantile, fillRealisticHour, tempDir } from './telemetry-plans.ts';

async function run(...args: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  stdout.on('data', (c) => { out += c; });
  const code = await telemetryCommand(args, { stdout, stderr });
  return { code, out };
}

const dir = tempDir(t);
const stateDir = path.join(dir, 'state');
const file = telemetryDbPath(stateDir);
{
  const db = openTelemetryDb(file);
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
  await fillRealisticHour(recorder, path.join(dir, 'sys'), Date.now());
  recorder.close();
  db.close();
}

t.test('--json prints the summary with exact counts and percentiles within the histogram bound', async (t) => {
  const { code, out } = await run('--db', file, '--since', '2h', '--json');
  t.equal(code, 0);
  const summary = JSON.parse(out) as TelemetrySummary;
  const db = openTelemetryDb(file, { readonly: true });
  t.teardown(() => db.close());
  for (const v of summary.versions) {
    const rows = db.prepare('SELECT total_ms, ok FROM requests WHERE model = ? AND version = ?').all(v.model, v.version) as { total_ms: number; ok: number }[];
    t.equal(v.requests, rows.length, `${v.model}@${v.version} requests`);
    t.equal(v.errors, rows.filter((r) => !r.ok).length, `${v.model}@${v.version} errors`);
    const p99 = exactQuantile(rows.map((r) => r.total_ms), 0.99);
    t.ok(Math.abs(v.latencyMs.p99! - p99) / p99 < 0.011, `${v.model}@${v.version} p99 ${v.latencyMs.p99} vs ${p99}`);
    const energy = db.prepare('SELECT sum(energy_j) AS j, sum(inferences) AS n FROM energy WHERE model = ? AND version = ?').get(v.model, v.version) as { j: number; n: number };
    t.ok(Math.abs(v.energy!.perInferenceJ! - energy.j / energy.n) < 1e-9, `${v.model}@${v.version} energy per inference`);
  }
});

t.test('the text report shows every version with percentiles, throughput, errors, energy, accuracy and power', async (t) => {
  const { code, out } = await run('--state-dir', stateDir, '--since', '2h');
  t.equal(code, 0);
  t.match(out, new RegExp(`telemetry ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  t.match(out, /model\s+version\s+engine\s+requests\s+req\/s\s+errors\s+p50 ms\s+p95 ms\s+p99 ms\s+J\/inference\s+gate\s+shadow/);
  t.match(out, /\nresnet\s+3\s+onnxruntime-cpu\s+\d+\s+[\d.]+\s+\d+ \([\d.]+%\)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+99\.6% \(500\)\s+[\d.]+% \(\d+ vs 2\)/);
  t.match(out, /\nresnet\s+2\s+.*99\.1% \(500\)\s+-\n/);
  t.match(out, /\nocr\s+1\s+webgpu/);
  t.match(out, /errors ocr@1: EDGERUN_ERR_TIMEOUT ×\d+/);
  t.match(out, /power:\n {2}rapl:package-0: mean [\d.]+ W, [\d.]+ J over \d+ readings/);
  t.match(out, /recent events:\n.* probation_passed resnet@3 \{"errorRate":0.004\}/);
});

t.test('--model keeps one model; a model with no data says so', async (t) => {
  const { out } = await run('--db', file, '--model', 'ocr');
  t.match(out, /\nocr\s+1\s/);
  t.notMatch(out, /\nresnet/);
  const none = await run('--db', file, '--model', 'bert');
  t.match(none.out, /no requests or accuracy records for model bert in this window/);
});

t.test('without power sensors the report says power is unavailable and why', async (t) => {
  const other = path.join(tempDir(t), 'telemetry.db');
  const db = openTelemetryDb(other);
  const recorder = new TelemetryRecorder(db);
  const sampler = new PowerSampler({ sources: [], sink: recorder, noSourceReason: 'no power sensor found (RAPL: no /sys/class/powercap/intel-rapl:N zones)' });
  await sampler.start();
  recorder.recordRequest({ at: Date.now() - 1000, model: 'm', version: '1', engine: 'onnxruntime-cpu', queueMs: 0, computeMs: 1, totalMs: 1, batchSize: 1, ok: true });
  recorder.close();
  db.close();
  const { out } = await run('--db', other);
  t.match(out, /power:\n {2}unavailable: none: no power sensor found \(RAPL: no \/sys\/class\/powercap\/intel-rapl:N zones\)/);
  t.match(out, /\nm\s+1\s+onnxruntime-cpu\s+1\s+.*\sunavailable\s+-\s+-\n/, 'energy per inference unavailable, not zero');
});

t.test('bad flags are EDGERUN_ERR_CLI_USAGE', async (t) => {
  await expectEdgerunError(t, run('--db', file, '--since', 'forever'), 'EDGERUN_ERR_CLI_USAGE', /--since: 'forever' is not a window/);
  await expectEdgerunError(t, run('--db', file, '--since', '0m'), 'EDGERUN_ERR_CLI_USAGE', /--since/);
  await expectEdgerunError(t, run('--db', file, '--model', 'a b'), 'EDGERUN_ERR_CLI_USAGE', /--model: 'a b' is not a model name/);
  await expectEdgerunError(t, run('--db', file, '--model', ''), 'EDGERUN_ERR_CLI_USAGE', /--model/);
  await expectEdgerunError(t, run('--db', file, '--state-dir', stateDir), 'EDGERUN_ERR_CLI_USAGE', /--db names the database/);
  await expectEdgerunError(t, run('--frobnicate'), 'EDGERUN_ERR_CLI_USAGE', /frobnicate/);
  await expectEdgerunError(t, run('--db', file, 'extra'), 'EDGERUN_ERR_CLI_USAGE', /unexpected argument 'extra'/);
});

t.test('a missing or damaged database is EDGERUN_ERR_TELEMETRY naming the file', async (t) => {
  const missing = path.join(dir, 'nope', 'telemetry.db');
  await expectEdgerunError(t, run('--db', missing), 'EDGERUN_ERR_TELEMETRY', /no telemetry database at .*nope\/telemetry\.db/);
  const garbage = path.join(dir, 'garbage.db');
  fs.writeFileSync(garbage, 'x'.repeat(5000));
  await expectEdgerunError(t, run('--db', garbage), 'EDGERUN_ERR_TELEMETRY', /garbage\.db/);
});

t.test('--help prints the usage', async (t) => {
  const { code, out } = await run('--help');
  t.equal(code, 0);
  t.match(out, /^usage: edgerun telemetry/);
});
