/** The same hot-swap through edgerun's own WebGPU engine (lavapipe here): gate on real WGSL output, swaps under traffic. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { WebGpuEngine } from '../../daemon/engine/webgpu-engine.ts';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { ModelManager } from '../../daemon/swap/model-manager.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../../daemon/telemetry/sink.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { writePackage } from '../helpers/package-builder.ts';

process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-swap-webgpu-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

class RecordingSink implements TelemetrySink {
  readonly events: LifecycleEvent[] = [];
  readonly accuracy: AccuracyRecord[] = [];
  recordRequest(_record: RequestRecord): void {}
  recordEvent(event: LifecycleEvent): void { this.events.push(event); }
  recordAccuracy(record: AccuracyRecord): void { this.accuracy.push(record); }
}

/** Version v: y = relu(x · v) + v over [batch, 16]. */
function model(version: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 16])
    .initializer('k', 'float32', [], [version])
    .node('Mul', ['x', 'k'], ['m'])
    .node('Relu', ['m'], ['r'])
    .node('Add', ['r', 'k'], ['y'])
    .output('y', 'float32', ['batch', 16])
    .toBytes();
}

const input = (batch: number, seed: number): Tensor => ({
  dtype: 'float32', dims: [batch, 16], data: Float32Array.from({ length: batch * 16 }, (_, i) => ((i * 5 + seed) % 9) - 4),
});

t.test('swaps on the WebGPU engine keep every request correct for the version that served it', async (t) => {
  const modelsDir = path.join(root, 'models');
  const sink = new RecordingSink();
  const manager = new ModelManager({
    engine: () => WebGpuEngine.create(), telemetry: sink, modelsDir, warmupRuns: 1, probation: { windowMs: 0 },
  });
  t.teardown(() => manager.close());
  const write = (version: number) => writePackage(path.join(modelsDir, 'relu'), {
    name: 'relu', version: String(version), model: model(version), evalInputs: [{ x: input(2, version) }, { x: input(4, version) }],
  });
  await write(1);
  await manager.start();
  t.match(manager.get('relu')!.versions[0], { engine: 'webgpu', state: 'READY', gate: { status: 'passed', agreement: 1 } });

  const failures: string[] = [];
  const served = new Map<string, number>();
  let stop = false;
  const loop = async (id: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      const x = input(2 + 2 * (n % 2), id + n);
      const lease = manager.acquire('relu');
      try {
        const y = (await lease.session.run(new Map([['x', x]]))).outputs.get('y')!.data;
        const k = Number(lease.version);
        if (Array.from(x.data).some((v, i) => Math.abs(y[i] - (Math.max(v * k, 0) + k)) > 1e-5)) failures.push(`wrong result from version ${lease.version}`);
        served.set(lease.version, (served.get(lease.version) ?? 0) + 1);
        lease.release({ ok: true, latencyMs: 0 });
      } catch (error) {
        lease.release({ ok: false, latencyMs: 0 });
        failures.push((error as Error).message);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const loops = Array.from({ length: 16 }, (_, id) => loop(id));
  for (const version of [2, 3]) {
    await fs.rm(path.join(modelsDir, 'relu'), { recursive: true });
    await write(version);
    t.equal((await manager.load('relu')).activeVersion, String(version));
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  stop = true;
  await Promise.all(loops);
  t.same(failures, [], 'no failed or wrong request');
  t.same([...served.keys()].sort(), ['1', '2', '3'], 'every version served');
  t.same(sink.accuracy.map((a) => [a.version, a.agreement]), [['1', 1], ['2', 1], ['3', 1]], 'the gate compared WGSL outputs with onnxruntime references');
});
