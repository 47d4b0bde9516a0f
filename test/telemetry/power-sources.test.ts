/** Power sources against a fake sysfs tree and a fake nvidia-smi; and the truth about this machine's /sys. */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { detectPowerSources, noSourceReason } from '../../daemon/telemetry/power/detect.ts';
import type { PowerReading, PowerSource } from '../../daemon/telemetry/power/types.ts';
import { tempDir } from './telemetry-plans.ts';

function writeTree(root: string, files: Record<string, string | number>): void {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, `${content}\n`);
  }
}

function byId(sources: PowerSource[], id: string): PowerSource {
  const source = sources.find((s) => s.id === id);
  if (!source) throw new Error(`no source ${id} among ${sources.map((s) => s.id).join(', ')}`);
  return source;
}

function watts(reading: PowerReading): number | null {
  return reading.watts;
}

t.test('this machine: detection reports exactly the sensors its /sys has (none on these VMs), never a made-up one', async (t) => {
  const result = await detectPowerSources({ nvidiaSmi: null });
  const hasRapl = fs.existsSync('/sys/class/powercap') && fs.readdirSync('/sys/class/powercap').some((n) => /^intel-rapl:\d+$/.test(n));
  t.equal(result.sources.some((s) => s.kind === 'rapl'), hasRapl, `RAPL found iff /sys/class/powercap has zones (${hasRapl})`);
  if (!fs.existsSync('/sys/class/hwmon')) {
    t.notOk(result.sources.some((s) => s.kind === 'hwmon' || s.kind === 'ina3221'), 'no hwmon sources without /sys/class/hwmon');
    t.match(result.missing.join('\n'), /hwmon: no \/sys\/class\/hwmon\/hwmonN devices/);
  }
  if (result.sources.length === 0) {
    t.match(noSourceReason(result), /^no power sensor found \(RAPL: .*NVIDIA: disabled.*\)$/);
  }
});

t.test('an empty tree has no sources, and says what it looked for', async (t) => {
  const root = tempDir(t);
  const result = await detectPowerSources({ sysfsRoot: root, nvidiaSmi: path.join(root, 'no-such-nvidia-smi') });
  t.same(result.sources, []);
  t.equal(result.missing.length, 5);
  t.match(result.missing.join('\n'), /RAPL: no .*powercap\/intel-rapl:N zones/);
  t.match(result.missing.join('\n'), /NVIDIA: .*no-such-nvidia-smi not found/);
  t.match(result.missing.join('\n'), /INA3221: no .*ina3221x/);
  t.match(result.missing.join('\n'), /battery: no .*power_supply/);
});

t.test('RAPL: top-level zones only, power from the energy counter, wraparound at max_energy_range_uj', async (t) => {
  const root = tempDir(t);
  const zone = 'class/powercap/intel-rapl:0';
  writeTree(root, {
    [`${zone}/name`]: 'package-0', [`${zone}/energy_uj`]: 262_143_000_000, [`${zone}/max_energy_range_uj`]: 262_143_328_850,
    'class/powercap/intel-rapl:0:0/name': 'core', 'class/powercap/intel-rapl:0:0/energy_uj': 5,
    'class/powercap/intel-rapl:1/name': 'package-1', 'class/powercap/intel-rapl:1/energy_uj': 1_000_000,
  });
  const { sources } = await detectPowerSources({ sysfsRoot: root, kinds: ['rapl'] });
  t.same(sources.map((s) => s.id), ['rapl:package-0', 'rapl:package-1']);
  const pkg = byId(sources, 'rapl:package-0');
  t.match(await pkg.read(0), { watts: null, reason: /energy counter primed/ });
  // 0.5 s later the counter wrapped: 328_850 µJ to the top, then 4_671_150 µJ more = 5 J in 0.5 s = 10 W.
  writeTree(root, { [`${zone}/energy_uj`]: 4_671_150 });
  t.same(await pkg.read(500), { watts: 10, energyJ: 5 });
  writeTree(root, { [`${zone}/energy_uj`]: 9_671_150 });
  t.same(await pkg.read(1500), { watts: 5, energyJ: 5 });
  fs.rmSync(path.join(root, zone, 'energy_uj'));
  t.match(await pkg.read(2500), { watts: null, reason: /energy_uj does not exist/ });
});

t.test('RAPL: a psys (platform) zone is used alone, since it contains the packages', async (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'class/powercap/intel-rapl:0/name': 'package-0', 'class/powercap/intel-rapl:0/energy_uj': 1,
    'class/powercap/intel-rapl:1/name': 'psys', 'class/powercap/intel-rapl:1/energy_uj': 1,
  });
  const { sources } = await detectPowerSources({ sysfsRoot: root, kinds: ['rapl'] });
  t.same(sources.map((s) => s.id), ['rapl:psys']);
});

t.test('hwmon: power inputs in µW, energy counters in µJ, labels, attributes under device/, ina3221 left out', async (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'class/hwmon/hwmon0/name': 'amdgpu', 'class/hwmon/hwmon0/power1_average': 35_500_000,
    'class/hwmon/hwmon1/name': 'acpi_power', 'class/hwmon/hwmon1/power1_input': 12_250_000, 'class/hwmon/hwmon1/power1_label': 'system',
    'class/hwmon/hwmon2/device/name': 'amd_energy', 'class/hwmon/hwmon2/device/energy1_input': 1_000_000, 'class/hwmon/hwmon2/device/energy1_label': 'Esocket0',
    'class/hwmon/hwmon3/name': 'coretemp', 'class/hwmon/hwmon3/temp1_input': 45000,
    'class/hwmon/hwmon4/name': 'ina3221', 'class/hwmon/hwmon4/in1_input': 5000, 'class/hwmon/hwmon4/curr1_input': 1000,
  });
  const { sources } = await detectPowerSources({ sysfsRoot: root, kinds: ['hwmon'] });
  t.same(sources.map((s) => s.id), ['hwmon:amdgpu/power1', 'hwmon:acpi_power/system', 'hwmon:amd_energy/Esocket0']);
  t.same(await byId(sources, 'hwmon:amdgpu/power1').read(0), { watts: 35.5 });
  t.same(await byId(sources, 'hwmon:acpi_power/system').read(0), { watts: 12.25 });
  const energy = byId(sources, 'hwmon:amd_energy/Esocket0');
  t.equal(watts(await energy.read(0)), null, 'counter primed');
  writeTree(root, { 'class/hwmon/hwmon2/device/energy1_input': 31_000_000 });
  t.same(await energy.read(2000), { watts: 15, energyJ: 30 });
  writeTree(root, { 'class/hwmon/hwmon2/device/energy1_input': 10 });
  t.match(await energy.read(3000), { watts: null, reason: /went backwards \(counter reset\)/ });
  writeTree(root, { 'class/hwmon/hwmon1/power1_input': 'garbage' });
  t.match(await byId(sources, 'hwmon:acpi_power/system').read(0), { watts: null, reason: /holds 'garbage', not a number/ });
});

t.test('Jetson INA3221: the legacy IIO driver (mW) and the hwmon driver (P = V·I)', async (t) => {
  const root = tempDir(t);
  const iio = 'bus/i2c/drivers/ina3221x/1-0040/iio:device0';
  writeTree(root, {
    [`${iio}/rail_name_0`]: 'VDD_IN', [`${iio}/in_power0_input`]: 4512,
    [`${iio}/rail_name_1`]: 'VDD_SYS_GPU', [`${iio}/in_power1_input`]: 1203,
    'class/hwmon/hwmon1/name': 'ina3221',
    'class/hwmon/hwmon1/in1_label': 'VDD_CPU_GPU_CV', 'class/hwmon/hwmon1/in1_input': 5072, 'class/hwmon/hwmon1/curr1_input': 1480,
    'class/hwmon/hwmon1/in2_label': 'VDD_SOC', 'class/hwmon/hwmon1/in2_input': 5080, 'class/hwmon/hwmon1/curr2_input': 960,
    'class/hwmon/hwmon1/in3_input': 0, 'class/hwmon/hwmon1/curr3_input': 0, 'class/hwmon/hwmon1/in3_enable': 0,
  });
  const { sources } = await detectPowerSources({ sysfsRoot: root, kinds: ['ina3221'] });
  t.same(sources.map((s) => s.id), ['ina3221:VDD_IN', 'ina3221:VDD_SYS_GPU', 'ina3221:VDD_CPU_GPU_CV', 'ina3221:VDD_SOC'], 'disabled channel 3 left out');
  t.same(await byId(sources, 'ina3221:VDD_IN').read(0), { watts: 4.512 });
  t.ok(Math.abs(watts(await byId(sources, 'ina3221:VDD_CPU_GPU_CV').read(0))! - 5.072 * 1.48) < 1e-9, '5.072 V × 1.48 A');
  fs.rmSync(path.join(root, 'class/hwmon/hwmon1/curr2_input'));
  t.match(await byId(sources, 'ina3221:VDD_SOC').read(0), { watts: null, reason: /curr2_input does not exist/ });
});

t.test('batteries: power_now or voltage·current while discharging; unavailable with the status otherwise', async (t) => {
  const root = tempDir(t);
  writeTree(root, {
    'class/power_supply/BAT0/type': 'Battery', 'class/power_supply/BAT0/status': 'Discharging', 'class/power_supply/BAT0/power_now': 8_400_000,
    'class/power_supply/BAT1/type': 'Battery', 'class/power_supply/BAT1/status': 'Discharging',
    'class/power_supply/BAT1/voltage_now': 12_000_000, 'class/power_supply/BAT1/current_now': -1_500_000,
    'class/power_supply/AC/type': 'Mains', 'class/power_supply/AC/online': 1,
  });
  const { sources } = await detectPowerSources({ sysfsRoot: root, kinds: ['battery'] });
  t.same(sources.map((s) => s.id), ['battery:BAT0', 'battery:BAT1']);
  t.same(await byId(sources, 'battery:BAT0').read(0), { watts: 8.4 });
  t.same(await byId(sources, 'battery:BAT1').read(0), { watts: 18 }, '12 V × |−1.5 A|');
  writeTree(root, { 'class/power_supply/BAT0/status': 'Charging' });
  t.match(await byId(sources, 'battery:BAT0').read(0), { watts: null, reason: /BAT0 is Charging: it measures charging/ });
});

t.test('NVIDIA: one source per GPU from one nvidia-smi run; [N/A] and failures become reasons', async (t) => {
  const root = tempDir(t);
  const smi = path.join(root, 'nvidia-smi');
  const log = path.join(root, 'calls');
  const script = (body: string) => fs.writeFileSync(smi, `#!/bin/sh\necho "$@" >> ${log}\n${body}\n`, { mode: 0o755 });
  script('printf "71.35\\n[N/A]\\n"');
  const { sources, missing } = await detectPowerSources({ sysfsRoot: root, kinds: ['nvidia'], nvidiaSmi: smi });
  t.same(missing, []);
  t.same(sources.map((s) => s.id), ['nvidia:gpu0', 'nvidia:gpu1']);
  fs.rmSync(log);
  const [gpu0, gpu1] = await Promise.all([sources[0].read(100), sources[1].read(100)]);
  t.same(gpu0, { watts: 71.35 });
  t.match(gpu1, { watts: null, reason: /reports '\[N\/A\]' for GPU 1/ });
  t.same(fs.readFileSync(log, 'utf8').trim().split('\n'), ['--query-gpu=power.draw --format=csv,noheader,nounits'], 'one run for both GPUs in a tick');
  script(`echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver." >&2; exit 9`);
  t.match(await sources[0].read(200), { watts: null, reason: /failed: NVIDIA-SMI has failed/ });
  const broken = await detectPowerSources({ sysfsRoot: root, kinds: ['nvidia'], nvidiaSmi: smi });
  t.same(broken.sources, []);
  t.match(broken.missing[0], /^NVIDIA: .*failed: NVIDIA-SMI has failed/);
});
