/** Telemetry as a daemon component: open with sampling and retention, record, close (flushes), reopen. */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { Telemetry } from '../../daemon/telemetry/telemetry.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { request, tempDir } from './telemetry-plans.ts';

t.test('sampling runs on its timer, close flushes everything and the data is there on reopen', async (t) => {
  const dir = tempDir(t);
  const sysfsRoot = path.join(dir, 'sys');
  const rail = path.join(sysfsRoot, 'class/hwmon/hwmon0');
  fs.mkdirSync(rail, { recursive: true });
  fs.writeFileSync(path.join(rail, 'name'), 'acpi_power');
  fs.writeFileSync(path.join(rail, 'power1_input'), '9500000');
  const file = path.join(dir, 'state', 'telemetry.db');
  const telemetry = await Telemetry.open({ file, power: { sysfsRoot, nvidiaSmi: null, intervalMs: 20 }, retention: false, recorder: { flushIntervalMs: 60_000 } });
  t.same(telemetry.power?.sources.map((s) => s.id), ['hwmon:acpi_power/power1']);
  for (let i = 0; i < 5; i++) {
    telemetry.recorder.recordRequest(request(Date.now(), 4));
    await sleep(30);
  }
  telemetry.recorder.recordEvent({ at: Date.now(), kind: 'stop' });
  await telemetry.close();
  await telemetry.close();

  const again = await Telemetry.open({ file, power: false, retention: false });
  t.teardown(() => again.close());
  const s = again.store.summary({ since: Date.now() - 60_000 });
  t.equal(s.versions[0].requests, 5);
  t.equal(s.power.sources[0].source, 'hwmon:acpi_power/power1');
  t.equal(s.power.sources[0].latestWatts, 9.5);
  t.ok(s.power.sources[0].samples >= 3, `${s.power.sources[0].samples} samples at 20 ms`);
  t.ok(s.versions[0].energy && s.versions[0].energy.inferences > 0, 'energy attributed to the version');
  t.same(s.events.map((e) => e.kind), ['stop']);
});

t.test('with no sensors, the component records power as unavailable with the reason', async (t) => {
  const dir = tempDir(t);
  const telemetry = await Telemetry.open({ file: path.join(dir, 'telemetry.db'), power: { sysfsRoot: path.join(dir, 'empty'), nvidiaSmi: null }, retention: false });
  t.same(telemetry.power?.sources, []);
  await telemetry.close();
  const again = await Telemetry.open({ file: path.join(dir, 'telemetry.db'), power: false, retention: false });
  t.teardown(() => again.close());
  const s = again.store.summary({ since: Date.now() - 60_000 });
  t.equal(s.power.available, false);
  t.match(s.power.reason, /^none: no power sensor found \(RAPL: .*hwmon: .*NVIDIA: disabled.*INA3221: .*battery: .*\)$/);
});

t.test('retention runs at start and on demand; a damaged database is refused or quarantined as asked', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'telemetry.db');
  const telemetry = await Telemetry.open({ file, power: false, retention: { rawMaxAgeMs: 1000 } });
  telemetry.recorder.recordRequest(request(Date.now() - 10_000, 4));
  const report = await telemetry.runRetention();
  t.equal(report?.deletedRequests, 1);
  t.equal(telemetry.store.summary({ since: Date.now() - 60_000 }).versions[0].requests, 1, 'still counted in the rollups');
  await telemetry.close();

  fs.writeFileSync(file, 'not a database'.repeat(500));
  for (const suffix of ['-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  await expectEdgerunError(t, Telemetry.open({ file, power: false, retention: false }), 'EDGERUN_ERR_TELEMETRY', /telemetry\.db/);
  const fresh = await Telemetry.open({ file, power: false, retention: false, onCorrupt: 'quarantine' });
  t.teardown(() => fresh.close());
  t.ok(fs.readdirSync(dir).some((n) => /^telemetry\.db\.corrupt-\d+$/.test(n)), 'the damaged file was moved aside');
});
