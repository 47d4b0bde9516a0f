/** The power sampler: samples recorded per source, energy attributed to model versions, outages never filled in. */
import fs from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { detectPowerSources, noSourceReason } from '../../daemon/telemetry/power/detect.ts';
import { PowerSampler } from '../../daemon/telemetry/power/sampler.ts';
import { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import { openTelemetryDb } from '../../daemon/telemetry/schema.ts';
import { TelemetryStore } from '../../daemon/telemetry/store.ts';
import { request, tempDir } from './telemetry-plans.ts';

function fixture(t: Test) {
  const dir = tempDir(t);
  const root = path.join(dir, 'sys');
  const energyFile = path.join(root, 'class/powercap/intel-rapl:0/energy_uj');
  const railFile = path.join(root, 'bus/i2c/drivers/ina3221x/1-0040/iio:device0/in_power0_input');
  fs.mkdirSync(path.dirname(energyFile), { recursive: true });
  fs.mkdirSync(path.dirname(railFile), { recursive: true });
  fs.writeFileSync(path.join(path.dirname(energyFile), 'name'), 'package-0');
  fs.writeFileSync(path.join(path.dirname(energyFile), 'max_energy_range_uj'), '262143328850');
  fs.writeFileSync(path.join(path.dirname(railFile), 'rail_name_0'), 'VDD_IN');
  const db = openTelemetryDb(path.join(dir, 'telemetry.db'));
  const recorder = new TelemetryRecorder(db, { flushIntervalMs: 60_000 });
  t.teardown(() => { recorder.close(); db.close(); });
  const clock = { wall: Date.UTC(2025, 5, 1, 8, 0, 0), mono: 1000 };
  const setEnergy = (uj: number) => fs.writeFileSync(energyFile, String(uj));
  const setRail = (mw: number) => fs.writeFileSync(railFile, String(mw));
  return { root, db, recorder, clock, setEnergy, setRail, energyFile };
}

t.test('energy over an interval is shared among versions by compute time and divided by their inferences', async (t) => {
  const f = fixture(t);
  f.setEnergy(1_000_000);
  f.setRail(5000);
  const { sources } = await detectPowerSources({ sysfsRoot: f.root, kinds: ['rapl', 'ina3221'] });
  const sampler = new PowerSampler({
    sources, sink: f.recorder, attributeSources: ['rapl:package-0'], now: () => f.clock.wall, monotonicNow: () => f.clock.mono,
  });
  await sampler.prime();
  // One second: version 2 ran 3 requests (60 ms of compute), version 3 one request of batch 2 (20 ms).
  for (let i = 0; i < 3; i++) f.recorder.recordRequest(request(f.clock.wall + 100 * i, 25, { computeMs: 20 }));
  f.recorder.recordRequest(request(f.clock.wall + 500, 25, { version: '3', computeMs: 20, batchSize: 2 }));
  f.clock.wall += 1000;
  f.clock.mono += 1000;
  f.setEnergy(9_000_000); // 8 J in 1 s on the package
  f.setRail(7000);
  await sampler.sampleOnce();
  f.recorder.flush();

  const power = f.db.prepare('SELECT source, watts, energy_j, interval_ms FROM power_samples ORDER BY source').all();
  t.same(power, [
    { source: 'ina3221:VDD_IN', watts: 7, energy_j: 6, interval_ms: 1000 },
    { source: 'rapl:package-0', watts: 8, energy_j: 8, interval_ms: 1000 },
  ], 'the rail is integrated as a trapezoid ((5 W + 7 W) / 2 × 1 s), the package from its counter');
  const energy = f.db.prepare('SELECT version, inferences, energy_j FROM energy ORDER BY version').all();
  t.same(energy, [
    { version: '2', inferences: 3, energy_j: 6 },
    { version: '3', inferences: 2, energy_j: 2 },
  ], 'only the attributed source (8 J) is shared, 60:20 by compute time');
  const summary = new TelemetryStore(f.db).summary({ since: f.clock.wall - 3_600_000, until: f.clock.wall });
  const v2 = summary.versions.find((v) => v.version === '2')!;
  const v3 = summary.versions.find((v) => v.version === '3')!;
  t.same(v2.energy, { joules: 6, inferences: 3, perInferenceJ: 2 });
  t.same(v3.energy, { joules: 2, inferences: 2, perInferenceJ: 1 });
  t.equal(summary.power.available, true);
  t.same(summary.power.sources.map((s) => [s.source, s.meanWatts]), [['ina3221:VDD_IN', 6], ['rapl:package-0', 8]]);
});

t.test('an interval where an attributed source had no reading attributes nothing, and the outage is recorded once', async (t) => {
  const f = fixture(t);
  f.setEnergy(0);
  const { sources } = await detectPowerSources({ sysfsRoot: f.root, kinds: ['rapl'] });
  const sampler = new PowerSampler({ sources, sink: f.recorder, now: () => f.clock.wall, monotonicNow: () => f.clock.mono });
  await sampler.prime();
  fs.rmSync(f.energyFile);
  for (let tick = 0; tick < 3; tick++) {
    f.recorder.recordRequest(request(f.clock.wall, 10));
    f.clock.wall += 1000;
    f.clock.mono += 1000;
    await sampler.sampleOnce();
  }
  f.recorder.flush();
  t.same(f.db.prepare('SELECT watts, reason FROM power_samples').all(), [{ watts: null, reason: `${f.energyFile} does not exist` }]);
  t.equal((f.db.prepare('SELECT count(*) AS n FROM energy').get() as { n: number }).n, 0, 'no energy invented for the outage');
  const summary = new TelemetryStore(f.db).summary({ since: f.clock.wall - 60_000, until: f.clock.wall });
  t.equal(summary.power.available, false);
  t.match(summary.power.reason, /rapl:package-0: .*energy_uj does not exist/);
  t.equal(summary.versions[0].energy, null);
});

t.test('idle intervals attribute nothing; a baseline is subtracted before sharing', async (t) => {
  const f = fixture(t);
  f.setEnergy(0);
  const { sources } = await detectPowerSources({ sysfsRoot: f.root, kinds: ['rapl'] });
  const sampler = new PowerSampler({ sources, sink: f.recorder, baselineWatts: 3, now: () => f.clock.wall, monotonicNow: () => f.clock.mono });
  await sampler.prime();
  f.clock.mono += 1000;
  f.setEnergy(4_000_000);
  await sampler.sampleOnce();
  f.recorder.recordRequest(request(f.clock.wall, 10, { batchSize: 2 }));
  f.clock.mono += 2000;
  f.setEnergy(14_000_000);
  await sampler.sampleOnce();
  f.recorder.flush();
  t.same(f.db.prepare('SELECT inferences, energy_j, interval_ms FROM energy').all(), [{ inferences: 2, energy_j: 4, interval_ms: 2000 }], '10 J − 3 W × 2 s, idle second left out');
});

t.test('with no sensor, one unavailable sample says why, and the summary shows it', async (t) => {
  const f = fixture(t);
  const detected = await detectPowerSources({ sysfsRoot: path.join(f.root, 'empty'), nvidiaSmi: null });
  t.same(detected.sources, []);
  const sampler = new PowerSampler({ sources: [], sink: f.recorder, noSourceReason: noSourceReason(detected), now: () => f.clock.wall });
  await sampler.start();
  await sampler.stop();
  f.recorder.flush();
  const rows = f.db.prepare('SELECT source, watts, reason FROM power_samples').all() as { source: string; watts: null; reason: string }[];
  t.equal(rows.length, 1);
  t.equal(rows[0].source, 'none');
  t.match(rows[0].reason, /^no power sensor found \(RAPL: no .*\)$/);
  const later = new TelemetryStore(f.db).summary({ since: f.clock.wall + 3_600_000, until: f.clock.wall + 7_200_000 });
  t.equal(later.power.available, false);
  t.match(later.power.reason, /^none: no power sensor found/, 'an hour later the reason still explains the silence');
});

t.test('attributeSources must name detected sources', async (t) => {
  t.throws(() => new PowerSampler({ sources: [], sink: { recordPower() {}, recordEnergy() {}, takeActivity: () => [] }, attributeSources: ['rapl:psys'] }), /'rapl:psys', which is not a detected power source/);
});
