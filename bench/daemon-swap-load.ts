/**
 * Load over loopback against a real `edgerun daemon` (child process, onnxruntime-cpu engine) while a model is
 * hot-swapped 20 times: are any requests failed or connections dropped, and what is the latency during swaps?
 *   node --import tsx bench/daemon-swap-load.ts [--clients 4] [--seconds 20] [--swaps 20] [--probation-ms 60000] [--json]
 *
 * Each swap writes a new package version of model `scale` (y = x·k, with an eval set so the accuracy gate runs)
 * into the models folder and calls the repository load API (POST /v2/repository/models/scale/load): the daemon
 * installs it into its store, loads, warms and gates it, and switches; the previous version drains. Clients are
 * `--clients` loops of sequential JSON infer requests on keep-alive connections, for `--seconds` (and on until the
 * last swap is done: swaps run one after another, each at most `--seconds`/`--swaps` apart). Every answer is
 * checked against the factor of the version that answered. Reported: requests, failed requests (non-200 or wrong
 * values), dropped connections (network errors), p50/p99 latency overall and for requests overlapping a swap,
 * and the daemon's event-loop delay p99 over the run (its /metrics, prom-client's monitorEventLoopDelay).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DaemonProcess } from '../test/helpers/daemon-process.ts';
import { inferBody, scaleModel } from '../test/helpers/daemon-models.ts';
import { writePackage } from '../test/helpers/package-builder.ts';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '20' },
    swaps: { type: 'string', default: '20' },
    'probation-ms': { type: 'string', default: '60000' },
    json: { type: 'boolean', default: false },
  },
});
const clients = Number(values.clients);
const seconds = Number(values.seconds);
const swaps = Number(values.swaps);

/** Version v of the model multiplies by factorOf(v). */
const factorOf = (version: number): number => 1 + version;
const x = { x: { dtype: 'float32' as const, dims: [1, 4], data: Float32Array.from([1, 2, 3, 4]) } };

interface Sample { start: number; end: number; ok: boolean; dropped: boolean; version?: string; error?: string }

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Reads gauges from one scrape of /metrics (each scrape resets prom-client's event-loop histogram). */
async function metrics(url: string, names: string[]): Promise<number[]> {
  const lines = (await (await fetch(`${url}/metrics`)).text()).split('\n');
  return names.map((name) => {
    const line = lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line ? Number(line.split(' ').at(-1)) : NaN;
  });
}

async function main(): Promise<void> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-load-'));
  const models = path.join(dir, 'models');
  await writePackage(path.join(models, 'scale-1'), { name: 'scale', version: '1', model: scaleModel(factorOf(1)), evalInputs: [x] });
  const daemon = await DaemonProcess.start({
    dir,
    args: ['--port', '0', '--state-dir', path.join(dir, 'state'), '--models', models],
    env: { EDGERUN_ENGINE_KIND: 'onnxruntime-cpu', EDGERUN_LOG_LEVEL: 'warn', EDGERUN_SWAP_PROBATION_WINDOW_MS: values['probation-ms'] },
  });
  try {
    await daemon.ready(60_000);
    await metrics(daemon.url, []); // resets the daemon's event-loop delay histogram

    const samples: Sample[] = [];
    const swapWindows: { start: number; end: number; version: number; ok: boolean }[] = [];
    const t0 = performance.now();
    // Clients run for --seconds, and on until the swaps are done plus a tenth of the run (swaps serialize).
    let swapsFinished = false;
    let swapsFinishedAt = 0;
    const keepGoing = (): boolean => {
      const now = performance.now();
      return now < t0 + seconds * 1000 || !swapsFinished || now < swapsFinishedAt + seconds * 100;
    };
    const body = inferBody('x', [1, 4], [1, 2, 3, 4]);

    const client = async (): Promise<void> => {
      while (keepGoing()) {
        const start = performance.now();
        try {
          const response = await fetch(`${daemon.url}/v2/models/scale/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const reply = await response.json() as { model_version?: string; outputs?: { data: number[] }[]; error?: string };
          const factor = factorOf(Number(reply.model_version));
          const right = response.status === 200 && reply.outputs?.[0].data.every((v, i) => v === (i + 1) * factor);
          samples.push({ start, end: performance.now(), ok: !!right, dropped: false, version: reply.model_version, ...(right ? {} : { error: `${response.status} ${reply.error ?? 'wrong values'}` }) });
        } catch (error) {
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          samples.push({ start, end: performance.now(), ok: false, dropped: true, error: cause?.code ?? cause?.message ?? (error as Error).message });
        }
      }
    };

    const swapper = async (): Promise<void> => {
      // Swaps spread over the run, leaving its first and last tenth swap-free.
      const every = (seconds * 1000 * 0.8) / swaps;
      for (let i = 0; i < swaps; i++) {
        const at = t0 + seconds * 100 + i * every;
        await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
        const version = i + 2;
        await writePackage(path.join(models, `scale-${version}`), { name: 'scale', version: String(version), model: scaleModel(factorOf(version)), evalInputs: [x] });
        const start = performance.now();
        const response = await fetch(`${daemon.url}/v2/repository/models/scale/load`, { method: 'POST' });
        await response.arrayBuffer();
        swapWindows.push({ start, end: performance.now(), version, ok: response.status === 200 });
      }
      swapsFinished = true;
      swapsFinishedAt = performance.now();
    };

    await Promise.all([...Array.from({ length: clients }, client), swapper()]);
    const [loopP99Ms, loopMaxMs] = (await metrics(daemon.url, ['nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds'])).map((s) => s * 1000);

    const during = (s: Sample): boolean => swapWindows.some((w) => s.start < w.end && s.end > w.start);
    const latencies = (list: Sample[]): number[] => list.filter((s) => s.ok).map((s) => s.end - s.start).sort((a, b) => a - b);
    const all = latencies(samples);
    const inSwaps = latencies(samples.filter(during));
    const versions = [...new Set(samples.map((s) => s.version).filter(Boolean))];
    const elapsedS = (Math.max(...samples.map((s) => s.end)) - t0) / 1000;
    const result = {
      clients, seconds: +elapsedS.toFixed(1), swapsRequested: swaps,
      swapsDone: swapWindows.filter((w) => w.ok).length,
      swapMs: { p50: swapWindows.length ? percentile(swapWindows.map((w) => w.end - w.start).sort((a, b) => a - b), 50) : 0 },
      requests: samples.length,
      failed: samples.filter((s) => !s.ok && !s.dropped).length,
      dropped: samples.filter((s) => s.dropped).length,
      errors: [...new Set(samples.filter((s) => !s.ok).map((s) => s.error))].slice(0, 5),
      throughputPerS: +(samples.length / elapsedS).toFixed(1),
      latencyMs: { p50: +percentile(all, 50).toFixed(2), p99: +percentile(all, 99).toFixed(2), max: +(all.at(-1) ?? NaN).toFixed(2) },
      duringSwapsMs: { requests: inSwaps.length, p50: +percentile(inSwaps, 50).toFixed(2), p99: +percentile(inSwaps, 99).toFixed(2), max: +(inSwaps.at(-1) ?? NaN).toFixed(2) },
      // monitorEventLoopDelay samples every 10 ms and reports the interval plus the delay: an idle loop reads ≈10 ms.
      eventLoopDelayMs: { p99: +loopP99Ms.toFixed(2), max: +loopMaxMs.toFixed(2), samplingIntervalMs: 10 },
      versionsServed: versions.length,
      lastVersion: versions.map(Number).sort((a, b) => a - b).at(-1),
      cpus: os.cpus().length,
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      process.stdout.write([
        `daemon swap load: ${clients} clients × ${result.seconds} s over loopback, ${result.swapsDone}/${swaps} hot-swaps (median swap ${result.swapMs.p50.toFixed(0)} ms), ${result.cpus} CPUs`,
        `  requests ${result.requests} (${result.throughputPerS}/s), failed ${result.failed}, dropped connections ${result.dropped}${result.errors.length ? ` — ${result.errors.join('; ')}` : ''}`,
        `  latency p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, max ${result.latencyMs.max} ms`,
        `  during swaps (${result.duringSwapsMs.requests} requests): p50 ${result.duringSwapsMs.p50} ms, p99 ${result.duringSwapsMs.p99} ms, max ${result.duringSwapsMs.max} ms`,
        `  daemon event-loop delay: p99 ${result.eventLoopDelayMs.p99} ms, max ${result.eventLoopDelayMs.max} ms (monitorEventLoopDelay, 10 ms sampling interval included)`,
        `  versions served: ${result.versionsServed} (last ${result.lastVersion})`,
        '',
      ].join('\n'));
    }
    if (process.env.SWAP_LOAD_DEBUG) {
      process.stderr.write(`${JSON.stringify(await (await fetch(`${daemon.url}/v2/repository/index`, { method: 'POST' })).json())}\n`);
      process.stderr.write(`${JSON.stringify(swapWindows.map((w) => [w.version, Math.round(w.start - t0), Math.round(w.end - t0), w.ok]))}\n`);
      process.stderr.write(`${daemon.log.filter((l) => l.includes('"level":40') || l.includes('"level":50')).slice(-10).join('\n')}\n`);
    }
    daemon.signal('SIGTERM');
    const exit = await daemon.exited;
    if (exit.code !== 0) process.stderr.write(`daemon exited ${exit.code ?? exit.signal}\n${daemon.log.slice(-10).join('\n')}\n`);
    process.exitCode = result.failed + result.dropped > 0 || exit.code !== 0 ? 1 : 0;
  } finally {
    if (daemon.child.exitCode === null && daemon.child.signalCode === null) daemon.signal('SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
