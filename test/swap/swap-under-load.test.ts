/**
 * Zero-downtime swaps: hundreds of concurrent acquire → run → release loops while a model is swapped ten
 * times (store-backed, with probation windows that sometimes pass and are sometimes superseded). Not one
 * request may fail, and every result must be the one the version that served it computes.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { ModelStore } from '../../daemon/store/model-store.ts';
import { ModelManager } from '../../daemon/swap/model-manager.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../../daemon/telemetry/sink.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';

const LOOPS = 300;
const SWAPS = 10;

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-load-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

class RecordingSink implements TelemetrySink {
  readonly events: LifecycleEvent[] = [];
  recordRequest(_record: RequestRecord): void {}
  recordEvent(event: LifecycleEvent): void { this.events.push(event); }
  recordAccuracy(_record: AccuracyRecord): void {}
}

/** Version v computes y = x · v + v, so any result names the version that produced it. */
function model(version: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 8])
    .initializer('k', 'float32', [], [version])
    .node('Mul', ['x', 'k'], ['m'])
    .node('Add', ['m', 'k'], ['y'])
    .output('y', 'float32', ['batch', 8])
    .toBytes();
}

function input(batch: number, seed: number): Tensor {
  return { dtype: 'float32', dims: [batch, 8], data: Float32Array.from({ length: batch * 8 }, (_, i) => ((i * 13 + seed) % 17) - 8) };
}

t.test(`${LOOPS} concurrent request loops during ${SWAPS} swaps: no failure, every result from the version that served it`, async (t) => {
  const store = await ModelStore.open(path.join(root, 'state'));
  const sink = new RecordingSink();
  const manager = new ModelManager({
    engine: () => OrtCpuEngine.create({ intraOpNumThreads: 1 }),
    telemetry: sink,
    store,
    warmupRuns: 1,
    probation: { windowMs: 400, minRequests: 20, maxErrorRate: 0, maxLatencyRatio: 1e6 },
  });
  t.teardown(() => manager.close());
  const sourceDir = (version: number): string => path.join(root, 'sources', String(version));
  for (let version = 1; version <= SWAPS + 1; version++) {
    await writePackage(sourceDir(version), { name: 'counter', version: String(version), model: model(version), evalInputs: [{ x: input(2, version) }] });
  }
  await store.install(sourceDir(1));
  await manager.start();

  const served = new Map<string, number>();
  const failures: string[] = [];
  let stop = false;
  let requests = 0;
  const loop = async (id: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const batch = 1 + ((id + n) % 3);
      const x = input(batch, id * 31 + n);
      let lease;
      try {
        lease = manager.acquire('counter');
      } catch (error) {
        failures.push(`acquire: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      const started = performance.now();
      try {
        const { outputs } = await lease.session.run(new Map([['x', x]]));
        const k = Number(lease.version);
        const y = outputs.get('y')!.data;
        const wrong = Array.from(x.data).findIndex((v, i) => y[i] !== Math.fround(Math.fround(v * k) + k));
        if (wrong >= 0) failures.push(`version ${lease.version} returned ${y[wrong]} for ${x.data[wrong]}`);
        lease.release({ ok: wrong < 0, latencyMs: performance.now() - started });
        served.set(lease.version, (served.get(lease.version) ?? 0) + 1);
      } catch (error) {
        lease.release({ ok: false, latencyMs: performance.now() - started });
        failures.push(`run on ${lease.version}: ${(error as Error).message}`);
      }
      requests++;
      // Clients think between requests; without it 300 loops saturate the event loop the swap itself runs on.
      await new Promise((resolve) => setTimeout(resolve, 20 + ((id * 7 + n) % 60)));
    }
  };
  const loops = Array.from({ length: LOOPS }, (_, id) => loop(id));

  for (let version = 2; version <= SWAPS + 1; version++) {
    const t0 = performance.now();
    await store.install(sourceDir(version));
    const t1 = performance.now();
    const before = requests;
    const info = await manager.deployVersion('counter', String(version));
    t.comment(`install ${(t1 - t0).toFixed(0)} ms, deploy ${(performance.now() - t1).toFixed(0)} ms, ${requests - before} requests meanwhile`);
    t.equal(info.activeVersion, String(version), `swap ${version - 1}: version ${version} serves`);
    // Let traffic reach the new version; every other swap waits out the probation window so it passes.
    const pause = version % 2 === 0 ? 500 : 50;
    const until = Date.now() + pause;
    while (Date.now() < until || requests - before < LOOPS) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  stop = true;
  await Promise.all(loops);

  t.same(failures.slice(0, 5), [], `no failed request (${failures.length} failures in ${requests} requests)`);
  t.ok(requests > LOOPS * SWAPS, `${requests} requests were served`);
  for (let version = 1; version <= SWAPS + 1; version++) t.ok((served.get(String(version)) ?? 0) > 0, `version ${version} served ${served.get(String(version))} requests`);
  const swaps = sink.events.filter((e) => e.kind === 'swap').map((e) => e.version);
  t.same(swaps, Array.from({ length: SWAPS + 1 }, (_, i) => String(i + 1)), 'one swap event per version');
  t.notOk(sink.events.some((e) => e.kind === 'rollback' || e.kind === 'error' || e.kind.endsWith('_failed')), 'no rollback, failure or drain timeout');
  t.ok(sink.events.some((e) => e.kind === 'probation_passed'), 'some probation windows passed');
  const info = manager.get('counter')!;
  t.equal(info.activeVersion, String(SWAPS + 1));
  t.ok(info.versions.filter((v) => v.state === 'READY').length <= 2, 'at most the active version and its probation predecessor stay loaded');
});
