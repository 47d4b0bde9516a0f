/** SIGTERM/SIGINT: STOPPING=1, reverse-order stop, exit 0 within the grace; forced exit 1 on a second signal or an expired grace. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { Lifecycle, type Component } from '../../daemon/lifecycle/lifecycle.ts';
import { SdNotify } from '../../daemon/lifecycle/sd-notify.ts';
import { handleShutdownSignals } from '../../daemon/lifecycle/shutdown.ts';
import { FakeSystemd } from '../helpers/fake-systemd.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-shutdown-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  return { log, lines };
}

function component(name: string, journal: string[], stopMs = 0, fails = false): Component {
  return {
    name,
    start: async () => { journal.push(`start ${name}`); },
    stop: async () => {
      journal.push(`stop ${name}`);
      if (stopMs) await new Promise((r) => setTimeout(r, stopMs));
      if (fails) throw new Error(`${name} failed to flush`);
      journal.push(`stopped ${name}`);
    },
  };
}

function exitRecorder() {
  const codes: number[] = [];
  let resolve: (code: number) => void = () => undefined;
  const first = new Promise<number>((r) => { resolve = r; });
  return { codes, first, exit: (code: number) => { codes.push(code); resolve(code); } };
}

t.test('SIGTERM sends STOPPING=1, stops components in reverse order and exits 0', async (t) => {
  const systemd = await FakeSystemd.start(path.join(dir, 'a.sock'));
  t.teardown(() => systemd.close());
  const { log } = captureLog();
  const notify = new SdNotify({ NOTIFY_SOCKET: path.join(dir, 'a.sock') }, { log });
  t.teardown(() => notify.close());
  const journal: string[] = [];
  const lifecycle = new Lifecycle([component('telemetry', journal), component('http', journal, 50)], { stopTimeoutMs: 1000, log });
  await lifecycle.start();
  const exit = exitRecorder();
  const controller = handleShutdownSignals({ lifecycle, graceMs: 2000, log, notify, exit: exit.exit });
  t.teardown(() => controller.dispose());
  process.kill(process.pid, 'SIGTERM');
  t.equal(await exit.first, 0);
  t.same(journal, ['start telemetry', 'start http', 'stop http', 'stopped http', 'stop telemetry', 'stopped telemetry']);
  t.same((await systemd.waitFor('STOPPING')).fields, { STOPPING: '1', STATUS: 'stopping (SIGTERM)' });
  t.equal(controller.shutdown('again'), controller.shutdown('and again'), 'later calls return the same outcome');
  t.equal((await controller.shutdown('again')).kind, 'stopped');
  t.same(exit.codes, [0], 'exit is called once');
});

t.test('a second signal while draining forces exit 1 and logs what was still running', async (t) => {
  const { log, lines } = captureLog();
  const journal: string[] = [];
  const lifecycle = new Lifecycle([component('telemetry', journal), component('http', journal, 5000)], { stopTimeoutMs: 10_000, log });
  await lifecycle.start();
  const exit = exitRecorder();
  const controller = handleShutdownSignals({ lifecycle, graceMs: 10_000, log, exit: exit.exit, describeRunning: () => ({ inFlightRequests: 3 }) });
  t.teardown(() => controller.dispose());
  process.kill(process.pid, 'SIGINT');
  await new Promise((r) => setTimeout(r, 50));
  t.same(exit.codes, [], 'still draining');
  process.kill(process.pid, 'SIGINT');
  t.equal(await exit.first, 1);
  const forced = lines.find((l) => /shutdown forced \(second signal SIGINT\)/.test(String(l.msg)));
  t.ok(forced);
  t.same(forced?.pending, [{ name: 'http', phase: 'stopping' }]);
  t.same(forced?.running, ['telemetry', 'http']);
  t.equal(forced?.inFlightRequests, 3);
  t.same(journal, ['start telemetry', 'start http', 'stop http'], 'telemetry was never reached');
});

t.test('the grace expiring forces exit 1', async (t) => {
  const { log, lines } = captureLog();
  const journal: string[] = [];
  const lifecycle = new Lifecycle([component('engine', journal, 5000)], { stopTimeoutMs: 10_000, log });
  await lifecycle.start();
  const exit = exitRecorder();
  const controller = handleShutdownSignals({ lifecycle, graceMs: 150, log, exit: exit.exit });
  t.teardown(() => controller.dispose());
  const began = performance.now();
  const outcome = await controller.shutdown('test');
  const ms = performance.now() - began;
  t.same(outcome, { code: 1, kind: 'forced' });
  t.ok(ms >= 140 && ms < 1000, `at the grace (${ms.toFixed(0)} ms)`);
  t.ok(lines.some((l) => /the 150 ms grace expired/.test(String(l.msg))));
  t.same(exit.codes, [1]);
});

t.test('a component whose stop fails still lets the others stop, and the exit code is 1', async (t) => {
  const { log } = captureLog();
  const journal: string[] = [];
  const lifecycle = new Lifecycle([component('telemetry', journal), component('models', journal, 0, true)], { stopTimeoutMs: 1000, log });
  await lifecycle.start();
  const exit = exitRecorder();
  const controller = handleShutdownSignals({ lifecycle, graceMs: 1000, log, exit: exit.exit, signals: [] });
  const outcome = await controller.shutdown('test');
  t.equal(outcome.code, 1);
  t.equal(outcome.kind, 'incomplete');
  t.same(journal, ['start telemetry', 'start models', 'stop models', 'stop telemetry', 'stopped telemetry']);
});
