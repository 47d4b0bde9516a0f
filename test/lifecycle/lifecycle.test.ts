/** Lifecycle: ordered start, reverse stop, isolation of failures, idempotent stop, stop timeouts, stop during start. */
import { pino } from 'pino';
import t from 'tap';
import { isEdgerunError } from '../../daemon/errors.ts';
import { Lifecycle, type Component } from '../../daemon/lifecycle/lifecycle.ts';

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  return { log, lines };
}

interface Behaviour { startFails?: boolean; stopFails?: boolean; stopHangs?: boolean; startDelayMs?: number; optional?: boolean }

function component(name: string, journal: string[], behaviour: Behaviour = {}): Component & { stops: number } {
  return {
    name,
    optional: behaviour.optional,
    stops: 0,
    async start() {
      journal.push(`start ${name}`);
      if (behaviour.startDelayMs) await new Promise((r) => setTimeout(r, behaviour.startDelayMs));
      if (behaviour.startFails) throw new Error(`${name} cannot start`);
      journal.push(`started ${name}`);
    },
    async stop() {
      this.stops++;
      journal.push(`stop ${name}`);
      if (behaviour.stopFails) throw new Error(`${name} cannot stop`);
      if (behaviour.stopHangs) await new Promise(() => undefined);
    },
  };
}

t.test('starts components in order and stops them in reverse order', async (t) => {
  const journal: string[] = [];
  const { log } = captureLog();
  const lifecycle = new Lifecycle(['telemetry', 'engine', 'http'].map((n) => component(n, journal)), { stopTimeoutMs: 1000, log });
  t.equal(await lifecycle.start(), true);
  t.equal(lifecycle.state, 'running');
  t.same(lifecycle.running(), ['telemetry', 'engine', 'http']);
  const reports = await lifecycle.stop();
  t.same(journal, ['start telemetry', 'started telemetry', 'start engine', 'started engine', 'start http', 'started http', 'stop http', 'stop engine', 'stop telemetry']);
  t.same(reports.map((r) => [r.name, r.outcome]), [['http', 'stopped'], ['engine', 'stopped'], ['telemetry', 'stopped']]);
  t.equal(lifecycle.state, 'stopped');
  t.same(lifecycle.running(), []);
});

t.test('a required component that fails to start stops those already started, in reverse, and the error names it', async (t) => {
  const journal: string[] = [];
  const { log, lines } = captureLog();
  const lifecycle = new Lifecycle([
    component('telemetry', journal), component('engine', journal), component('models', journal, { startFails: true }), component('http', journal),
  ], { stopTimeoutMs: 1000, log });
  const error = await lifecycle.start().catch((e: unknown) => e);
  t.ok(isEdgerunError(error, 'EDGERUN_ERR_STARTUP'));
  t.match((error as Error).message, /^models: start failed: models cannot start/);
  t.same(journal, ['start telemetry', 'started telemetry', 'start engine', 'started engine', 'start models', 'stop engine', 'stop telemetry'], 'http never starts; models is not stopped');
  t.ok(lines.some((l) => l.component === 'models' && l.level === 50));
});

t.test('an optional component that fails to start is logged and left out; the others run', async (t) => {
  const journal: string[] = [];
  const { log, lines } = captureLog();
  const lifecycle = new Lifecycle([component('power', journal, { startFails: true, optional: true }), component('http', journal)], { stopTimeoutMs: 1000, log });
  t.equal(await lifecycle.start(), true);
  t.same(lifecycle.running(), ['http']);
  await lifecycle.stop();
  t.same(journal, ['start power', 'start http', 'started http', 'stop http'], 'power is never stopped: it never started');
  t.ok(lines.some((l) => l.component === 'power' && /continuing without it/.test(String(l.msg))));
});

t.test('stop runs once however often it is called', async (t) => {
  const journal: string[] = [];
  const { log } = captureLog();
  const http = component('http', journal);
  const lifecycle = new Lifecycle([http], { stopTimeoutMs: 1000, log });
  await lifecycle.start();
  const first = lifecycle.stop();
  const second = lifecycle.stop();
  t.equal(first, second, 'the same promise');
  await first;
  await lifecycle.stop();
  t.equal(http.stops, 1);
});

t.test('a stop that fails or hangs does not keep the other components from stopping', async (t) => {
  const journal: string[] = [];
  const { log, lines } = captureLog();
  const lifecycle = new Lifecycle([
    component('telemetry', journal), component('engine', journal, { stopHangs: true }), component('models', journal, { stopFails: true }), component('http', journal),
  ], { stopTimeoutMs: 100, log });
  await lifecycle.start();
  const began = performance.now();
  const reports = await lifecycle.stop();
  const ms = performance.now() - began;
  t.same(reports.map((r) => [r.name, r.outcome]), [['http', 'stopped'], ['models', 'failed'], ['engine', 'timed-out'], ['telemetry', 'stopped']]);
  t.match(reports[1].error, /models cannot stop/);
  t.ok(ms >= 95 && ms < 1000, `bounded by the stop timeout (${ms.toFixed(0)} ms)`);
  t.same(lifecycle.pending(), [{ name: 'engine', phase: 'stopping' }], 'the hung stop is still pending, for the forced-exit log');
  t.ok(lines.some((l) => l.component === 'engine' && /did not finish within 100 ms/.test(String(l.msg))));
});

t.test('a stop during start lets the running start finish, starts nothing more, and stops what started', async (t) => {
  const journal: string[] = [];
  const { log } = captureLog();
  const lifecycle = new Lifecycle([component('telemetry', journal), component('models', journal, { startDelayMs: 100 }), component('http', journal)], { stopTimeoutMs: 1000, log });
  const starting = lifecycle.start();
  await new Promise((r) => setTimeout(r, 20));
  t.same(lifecycle.pending(), [{ name: 'models', phase: 'starting' }]);
  const reports = await lifecycle.stop();
  t.equal(await starting, false, 'start reports it was interrupted');
  t.same(journal, ['start telemetry', 'started telemetry', 'start models', 'started models', 'stop models', 'stop telemetry']);
  t.same(reports.map((r) => r.name), ['models', 'telemetry']);
});

t.test('component names must be unique and start runs once', async (t) => {
  const { log } = captureLog();
  t.throws(() => new Lifecycle([component('a', []), component('a', [])], { stopTimeoutMs: 10, log }), /two components are named 'a'/);
  const lifecycle = new Lifecycle([component('a', [])], { stopTimeoutMs: 10, log });
  await lifecycle.start();
  await t.rejects(lifecycle.start(), /start called while running/);
  await lifecycle.stop();
});
