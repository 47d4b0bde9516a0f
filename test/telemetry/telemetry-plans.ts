/** Shared by the telemetry tests: temp dirs and realistic records. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
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
