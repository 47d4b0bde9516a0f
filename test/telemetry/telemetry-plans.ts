/** Shared by the telemetry tests: temp dirs and realistic records. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { detectPowerSources } from '../../daemon/telemetry/power/detect.ts';
import { PowerSampler } from '../../daemon/telemetry/power/sampler.ts';
import type { TelemetryRecorder } from '../../daemon/telemetry/recorder.ts';
import type { RequestRecord } from '../../daemon/telemetry/sink.ts';

export function tempDir(t: Test, prefix = 'edgerun-telemetry-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function request(at: number, totalMs: number, overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    at, model: 'resnet', version: '2', engine: 'onnxruntime-cpu',
    queueMs: totalMs * 0.1, computeMs: totalMs * 0.8, totalMs, batchSize: 1, ok: true, ...overrides,
  };
}

/** The exact nearest-rank quantile of a list, as the histogram approximates it. */
export function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

/** A deterministic pseudo-random sequence (tests must be reproducible). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Nearly an hour of realistic traffic, from `now - 57 min` (so a one-hour window opened a little later still holds
 * all of it) to `now - 90 s`: model resnet version 2 swapped for version 3 at -25 min (gate,
 * swap, shadow comparisons), model ocr version 1 throughout with a burst of timeouts, and power from a fake RAPL
 * counter sampled every 10 s by the real sampler, drawing more when more requests run.
 */
export async function fillRealisticHour(recorder: TelemetryRecorder, sysfsRoot: string, now: number): Promise<void> {
  const zone = path.join(sysfsRoot, 'class/powercap/intel-rapl:0');
  fs.mkdirSync(zone, { recursive: true });
  fs.writeFileSync(path.join(zone, 'name'), 'package-0');
  fs.writeFileSync(path.join(zone, 'max_energy_range_uj'), '262143328850');
  let energyUj = 5_000_000_000;
  fs.writeFileSync(path.join(zone, 'energy_uj'), String(energyUj));
  const { sources } = await detectPowerSources({ sysfsRoot, kinds: ['rapl'] });
  const start = now - 57 * 60_000;
  const end = now - 90_000;
  const swapAt = now - 25 * 60_000;
  const clock = { wall: start, mono: 0 };
  const sampler = new PowerSampler({ sources, sink: recorder, now: () => clock.wall, monotonicNow: () => clock.mono });
  await sampler.prime();
  const random = rng(11);
  recorder.recordEvent({ at: start + 5_000, kind: 'start', details: { pid: 4242 } });
  recorder.recordEvent({ at: start + 6_000, kind: 'load', model: 'resnet', version: '2' });
  recorder.recordEvent({ at: start + 7_000, kind: 'load', model: 'ocr', version: '1' });
  recorder.recordAccuracy({ at: start - 86_400_000, model: 'resnet', version: '2', kind: 'gate', agreement: 0.991, samples: 500 });
  for (let tick = start; tick < end; tick += 10_000) {
    let busyMs = 0;
    for (let i = 0; i < 10; i++) {
      const at = tick + i * 1000 + Math.floor(random() * 1000);
      const resnetVersion = at < swapAt ? '2' : '3';
      const load = 1 + 0.5 * Math.sin((at - start) / 600_000);
      const resnetMs = (resnetVersion === '2' ? 9 : 6) * load * Math.exp(random() * random() * 1.6);
      recorder.recordRequest({ at, model: 'resnet', version: resnetVersion, engine: 'onnxruntime-cpu', queueMs: resnetMs * 0.1, computeMs: resnetMs * 0.85, totalMs: resnetMs, batchSize: 1, ok: random() > 0.004, error: 'EDGERUN_ERR_TIMEOUT' });
      const ocrMs = 15 * Math.exp(random() * random() * 2);
      const burst = at > now - 40 * 60_000 && at < now - 37 * 60_000;
      const ocrOk = !burst || random() > 0.3;
      recorder.recordRequest({ at, model: 'ocr', version: '1', engine: 'webgpu', queueMs: 1, computeMs: ocrMs - 1, totalMs: ocrOk ? ocrMs : 2000, batchSize: 2, ok: ocrOk, error: 'EDGERUN_ERR_TIMEOUT' });
      busyMs += resnetMs + ocrMs;
      if (resnetVersion === '3' && i % 3 === 0) {
        recorder.recordAccuracy({ at, model: 'resnet', version: '3', kind: 'shadow', agreement: random() > 0.04 ? 1 : 0, samples: 1, baselineVersion: '2' });
      }
    }
    if (tick <= swapAt && tick + 10_000 > swapAt) {
      recorder.recordAccuracy({ at: swapAt - 20_000, model: 'resnet', version: '3', kind: 'gate', agreement: 0.996, samples: 500 });
      recorder.recordEvent({ at: swapAt - 20_000, kind: 'gate_passed', model: 'resnet', version: '3', details: { agreement: 0.996, threshold: 0.99 } });
      recorder.recordEvent({ at: swapAt, kind: 'swap', model: 'resnet', version: '3', details: { from: '2' } });
    }
    // 6 W idle plus what the requests kept the CPU busy for.
    energyUj += Math.round((6 * 10 + 25 * (busyMs / 1000)) * 1e6);
    fs.writeFileSync(path.join(zone, 'energy_uj'), String(energyUj));
    clock.wall = tick + 10_000;
    clock.mono += 10_000;
    await sampler.sampleOnce();
    recorder.flush();
  }
  recorder.recordEvent({ at: now - 10 * 60_000, kind: 'probation_passed', model: 'resnet', version: '3', details: { errorRate: 0.004 } });
  recorder.flush();
}
