/** sd_notify against a real unix datagram socket standing in for systemd; the watchdog's timing and health rule. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { SdNotify } from '../../daemon/lifecycle/sd-notify.ts';
import { Watchdog, watchdogIntervalMs } from '../../daemon/lifecycle/watchdog.ts';
import { FakeSystemd } from '../helpers/fake-systemd.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-sdnotify-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  return { log, lines };
}

let socketCount = 0;
async function withSystemd(t: Test, abstract = false) {
  const name = abstract ? `@edgerun-test-${process.pid}-${socketCount++}` : path.join(dir, `notify-${socketCount++}.sock`);
  const systemd = await FakeSystemd.start(name);
  t.teardown(() => systemd.close());
  return { systemd, env: { NOTIFY_SOCKET: name } };
}

t.test('without NOTIFY_SOCKET every notification is a no-op', async (t) => {
  const notify = new SdNotify({}, { log: captureLog().log });
  t.equal(notify.enabled, false);
  t.equal(await notify.ready('up'), false);
  t.equal(notify.method, undefined, 'no sender was started');
});

t.test('the python3 sender delivers READY and STATUS as one datagram, in call order', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const notify = new SdNotify(env, { log: captureLog().log });
  t.teardown(() => notify.close());
  const results = await Promise.all([notify.status('loading models'), notify.ready('serving 2 models'), notify.notify({ STATUS: 'line\nbreak' })]);
  t.same(results, [true, true, true]);
  t.equal(notify.method, 'python3');
  await systemd.waitFor('READY');
  while (systemd.messages.length < 3) await new Promise((r) => setTimeout(r, 10));
  t.same(systemd.messages.map((m) => m.message), ['STATUS=loading models', 'READY=1\nSTATUS=serving 2 models', 'STATUS=line break']);
  t.not(systemd.messages[0].pid, process.pid, 'the datagram comes from the sender child: the unit needs NotifyAccess=all');
  t.equal(notify.sent, 3);
});

t.test('abstract socket names (@name) work', async (t) => {
  const { systemd, env } = await withSystemd(t, true);
  const notify = new SdNotify(env, { log: captureLog().log });
  t.teardown(() => notify.close());
  t.equal(await notify.stopping('bye'), true);
  t.same((await systemd.waitFor('STOPPING')).fields, { STOPPING: '1', STATUS: 'bye' });
});

t.test('systemd-notify is the fallback sender and delivers too', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const notify = new SdNotify(env, { log: captureLog().log, methods: ['systemd-notify'] });
  t.equal(await notify.ready('via systemd-notify'), true);
  t.equal(notify.method, 'systemd-notify');
  t.same((await systemd.waitFor('READY')).fields, { READY: '1', STATUS: 'via systemd-notify' });
});

t.test('a socket nobody listens on makes notify resolve false and log once, never throw', async (t) => {
  const { log, lines } = captureLog();
  const notify = new SdNotify({ NOTIFY_SOCKET: path.join(dir, 'nobody.sock') }, { log });
  t.teardown(() => notify.close());
  t.equal(await notify.ready(), false);
  t.equal(await notify.watchdog(), false);
  t.equal(notify.failed, 2);
  const errors = lines.filter((l) => l.level === 50);
  t.equal(errors.length, 1, 'logged once');
  t.match(String(errors[0].msg), /sd_notify through python3 failed: .*No such file/);
});

t.test('when python3 cannot be started, systemd-notify takes over without a failure', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const { log, lines } = captureLog();
  const notify = new SdNotify(env, { log, python: path.join(dir, 'no-such-python3') });
  t.teardown(() => notify.close());
  t.equal(await notify.ready('fallback'), true);
  t.equal(notify.method, 'systemd-notify');
  t.same((await systemd.waitFor('READY')).fields, { READY: '1', STATUS: 'fallback' });
  t.equal(notify.failed, 0);
  t.equal(lines.filter((l) => Number(l.level) >= 50).length, 0, 'nothing logged as an error');
});

t.test('watchdogIntervalMs reads WATCHDOG_USEC and honours WATCHDOG_PID', async (t) => {
  t.equal(watchdogIntervalMs({}), null);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000' }), 20_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: String(process.pid) }), 20_000);
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '1' }), null, 'meant for another process');
  t.equal(watchdogIntervalMs({ WATCHDOG_USEC: 'soon' }), null);
});

t.test('the watchdog pings at half the interval while the event loop is healthy', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const { log } = captureLog();
  const notify = new SdNotify(env, { log });
  t.teardown(() => notify.close());
  await notify.status('warming the sender');
  const watchdog = new Watchdog({ notify, intervalMs: 400, log });
  watchdog.start();
  await new Promise((r) => setTimeout(r, 1100));
  watchdog.stop();
  t.ok(watchdog.pings >= 4 && watchdog.pings <= 6, `about 5 pings in 1.1 s at 200 ms (${watchdog.pings})`);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(systemd.count('WATCHDOG'), watchdog.pings, 'each ping arrived');
  const times = systemd.messages.filter((m) => 'WATCHDOG' in m.fields).map((m) => m.at);
  for (let i = 1; i < times.length; i++) t.ok(times[i] - times[i - 1] < 300, `gap ${(times[i] - times[i - 1]).toFixed(0)} ms under the 400 ms deadline`);
});

t.test('a blocked event loop skips the ping, and pings resume once it is healthy again', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const { log, lines } = captureLog();
  const notify = new SdNotify(env, { log });
  t.teardown(() => notify.close());
  await notify.status('warming the sender');
  const watchdog = new Watchdog({ notify, intervalMs: 400, log });
  watchdog.start();
  const spinUntil = performance.now() + 350;
  while (performance.now() < spinUntil) { /* a blocked event loop */ }
  await new Promise((r) => setTimeout(r, 5));
  t.equal(watchdog.skipped, 1, 'the late tick did not ping');
  t.equal(watchdog.pings, 0);
  await new Promise((r) => setTimeout(r, 60));
  watchdog.stop();
  t.equal(watchdog.pings, 1, 'the quick re-check pinged once the loop was free');
  t.ok(lines.some((l) => /watchdog ping skipped: the event loop was blocked/.test(String(l.msg))));
  t.ok(lines.some((l) => /watchdog pings resumed/.test(String(l.msg))));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(systemd.count('WATCHDOG'), 1);
});

t.test('a failing health check stops the pings, so systemd would restart the daemon', async (t) => {
  const { systemd, env } = await withSystemd(t);
  const { log } = captureLog();
  const notify = new SdNotify(env, { log });
  t.teardown(() => notify.close());
  let healthy = true;
  const watchdog = new Watchdog({ notify, intervalMs: 200, log, healthy: () => healthy });
  watchdog.start();
  await new Promise((r) => setTimeout(r, 250));
  const before = watchdog.pings;
  t.ok(before >= 1);
  healthy = false;
  await new Promise((r) => setTimeout(r, 400));
  t.equal(watchdog.pings, before, 'no ping while unhealthy');
  t.ok(watchdog.skipped >= 3, `re-checked often (${watchdog.skipped})`);
  watchdog.stop();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(systemd.count('WATCHDOG'), before);
});
