/** systemd/edgerun.service and edgerun.tmpfiles: the directives the daemon relies on, systemd-analyze verify/security, tmpfiles. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../daemon/config/files.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const unitText = fs.readFileSync(path.join(root, 'systemd', 'edgerun.service'), 'utf8');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-systemd-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Directive → values, per section (a directive may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) { current = new Map(); sections.set(header[1], current); continue; }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

const seconds = (value: string): number => {
  const m = /^(\d+)(s|min)?$/.exec(value);
  if (!m) throw new Error(`unparsed time ${value}`);
  return Number(m[1]) * (m[2] === 'min' ? 60 : 1);
};

const hasExecutable = (name: string): boolean => spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

t.test('the unit is Type=notify with watchdog, restart and the sandbox the daemon is built for', async (t) => {
  const service = parseUnit(unitText).get('Service')!;
  const one = (key: string): string | undefined => service.get(key)?.at(-1);
  t.equal(one('Type'), 'notify');
  t.equal(one('NotifyAccess'), 'all', 'the python3 sender child sends the notifications');
  t.ok(seconds(one('WatchdogSec')!) >= 10);
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('KillMode'), 'mixed', 'SIGTERM reaches the main process only; the sender lives to send STOPPING=1');
  for (const [key, value] of [['DynamicUser', 'yes'], ['StateDirectory', 'edgerun'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'],
    ['PrivateTmp', 'yes'], ['NoNewPrivileges', 'yes'], ['MemoryDenyWriteExecute', 'no'], ['DevicePolicy', 'closed']]) {
    t.equal(one(key), value, `${key}=${value}`);
  }
  t.same(one('SupplementaryGroups')?.split(/\s+/).sort(), ['render', 'video']);
  const devices = service.get('DeviceAllow')!.map((v) => v.split(/\s+/)[0]);
  for (const device of ['char-drm', '/dev/nvidiactl', '/dev/nvidia-uvm', 'char-nvidia-frontend']) t.ok(devices.includes(device), `DeviceAllow ${device}`);
  t.notOk(service.has('PrivateDevices'), 'PrivateDevices would hide /dev/dri');
  t.match(one('RestrictAddressFamilies'), /AF_UNIX/, 'the sd_notify sender needs AF_UNIX');
  const graceS = defaultConfig().lifecycle.shutdownGraceMs / 1000;
  t.ok(seconds(one('TimeoutStopSec')!) > graceS, 'systemd waits longer than the daemon\'s own shutdown grace');
  t.match(one('ExecStart'), /^\/usr\/bin\/edgerun daemon --config \/etc\/edgerun\/config\.yaml$/);
});

t.test('systemd-analyze verify accepts the unit', { skip: hasExecutable('systemd-analyze') ? false : 'systemd-analyze is not installed' }, async (t) => {
  // verify checks that ExecStart's program exists; point it at one that does on this machine.
  const unit = path.join(tmp, 'edgerun.service');
  fs.writeFileSync(unit, unitText.replace('ExecStart=/usr/bin/edgerun', `ExecStart=${process.execPath} ${path.join(root, 'bin', 'edgerun.js')}`));
  const result = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(result.status, 0, result.stderr);
  t.equal(result.stderr.split('\n').filter((l) => l.includes('edgerun.service')).join('\n'), '', 'no warning about the unit');
  const broken = path.join(tmp, 'broken.service');
  fs.writeFileSync(broken, `${unitText.replace('ExecStart=/usr/bin/edgerun', `ExecStart=${process.execPath}`)}\nProtectSystem=sometimes\n`);
  const rejected = spawnSync('systemd-analyze', ['verify', broken], { encoding: 'utf8' });
  t.match(rejected.stderr, /ProtectSystem/, 'verify does catch a bad directive (the check can fail)');
});

t.test('systemd-analyze security rates the unit OK (exposure ≤ 2.5)', { skip: hasExecutable('systemd-analyze') ? false : 'systemd-analyze is not installed' }, async (t) => {
  const unit = path.join(tmp, 'edgerun.service');
  fs.writeFileSync(unit, unitText.replace('ExecStart=/usr/bin/edgerun', `ExecStart=${process.execPath}`));
  const result = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
  if (result.status !== 0 && /offline/.test(result.stderr)) { t.pass('this systemd-analyze has no --offline: not rated'); return; }
  const m = /Overall exposure level for edgerun\.service: ([\d.]+)/.exec(result.stdout);
  t.ok(m, 'the report states an overall exposure level');
  const exposure = Number(m![1]);
  t.ok(exposure <= 2.5, `exposure ${exposure}`);
  const doc = fs.readFileSync(path.join(root, 'docs', 'OPERATIONS.md'), 'utf8');
  t.match(doc, `exposure level ${exposure.toFixed(1)}`, 'docs/OPERATIONS.md states the current exposure');
});

t.test('the tmpfiles rule creates an empty config (all defaults) when missing and never overwrites one', { skip: hasExecutable('systemd-tmpfiles') ? false : 'systemd-tmpfiles is not installed' }, async (t) => {
  const rootDir = path.join(tmp, 'root');
  fs.mkdirSync(rootDir);
  const rules = path.join(root, 'systemd', 'edgerun.tmpfiles');
  execFileSync('systemd-tmpfiles', ['--create', `--root=${rootDir}`, rules]);
  const config = path.join(rootDir, 'etc', 'edgerun', 'config.yaml');
  t.match(fs.readFileSync(config, 'utf8'), /^# edgerun configuration/);
  fs.writeFileSync(config, 'server:\n  port: 9000\n');
  execFileSync('systemd-tmpfiles', ['--create', `--root=${rootDir}`, rules]);
  t.equal(fs.readFileSync(config, 'utf8'), 'server:\n  port: 9000\n');
});
