/** Shared pieces of the hot-swap tests: a telemetry sink that keeps what it is told, small models, a manager on the CPU engine. */
import fs from 'node:fs/promises';
import path from 'node:path';
import { OrtCpuEngine } from '../../../daemon/engine/ort-cpu-engine.ts';
import type { Tensor } from '../../../daemon/graph/ir.ts';
import { ModelManager, type ModelManagerOptions } from '../../../daemon/swap/model-manager.ts';
import type { Lease } from '../../../daemon/swap/registry.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../../../daemon/telemetry/sink.ts';
import { ModelBuilder } from '../../helpers/onnx-builder.ts';
import { writePackage, type PackageSpec } from '../../helpers/package-builder.ts';

/** Keeps lifecycle events and accuracy records for assertions (request records are the serving layer's). */
export class RecordingSink implements TelemetrySink {
  readonly events: LifecycleEvent[] = [];
  readonly accuracy: AccuracyRecord[] = [];
  recordRequest(_record: RequestRecord): void {}
  recordEvent(event: LifecycleEvent): void { this.events.push(event); }
  recordAccuracy(record: AccuracyRecord): void { this.accuracy.push(record); }
  /** `kind:version` of every event about `model`, in order. */
  kinds(model: string): string[] { return this.events.filter((e) => e.model === model).map((e) => `${e.kind}:${e.version ?? ''}`); }
}

/** y = x · k for x float32 [batch, 4]; with `fixedBatch` a Reshape to [1, 4] first, so batches of 2 fail at run time. */
export function scaleModel(k: number, options: { fixedBatch?: boolean; op?: string } = {}): Uint8Array {
  const builder = new ModelBuilder({ opset: 17 }).input('x', 'float32', ['batch', 4]).initializer('k', 'float32', [], [k]);
  if (options.fixedBatch) {
    builder.initializer('shape', 'int64', [2], [1, 4]).node('Reshape', ['x', 'shape'], ['r']).node('Mul', ['r', 'k'], ['y']);
  } else {
    builder.node(options.op ?? 'Mul', ['x', 'k'], ['y']);
  }
  return builder.output('y', 'float32', ['batch', 4]).toBytes();
}

export function input(batch: number, seed = 1): Tensor {
  return { dtype: 'float32', dims: [batch, 4], data: Float32Array.from({ length: batch * 4 }, (_, i) => ((i * 7 + seed) % 11) - 5) };
}

/** What scaleModel(k) returns for input(batch). */
export function expected(k: number, batch = 1): number[] {
  return Array.from(input(batch).data, (v) => Math.fround(v * k));
}

export const evalInputs = [{ x: input(1, 3) }, { x: input(3, 5) }];

export class SwapFixture {
  private counter = 0;

  constructor(readonly root: string) {}

  /** A package folder under root/sources (eval set: evalInputs unless `spec` says otherwise). */
  async packageDir(name: string, version: string, model: Uint8Array, spec: Partial<PackageSpec> = {}): Promise<string> {
    const dir = path.join(this.root, 'sources', `${name}-${version}-${this.counter++}`);
    await writePackage(dir, { name, version, model, evalInputs, ...spec });
    return dir;
  }

  freshDir(prefix: string): string {
    return path.join(this.root, `${prefix}-${this.counter++}`);
  }

  /** A manager on the CPU engine over a fresh models folder; probation off and one warm-up run unless overridden. */
  async manager(options: Partial<ModelManagerOptions> = {}): Promise<{ manager: ModelManager; sink: RecordingSink; modelsDir: string }> {
    const sink = new RecordingSink();
    const modelsDir = options.modelsDir ?? this.freshDir('models');
    await fs.mkdir(modelsDir, { recursive: true });
    const manager = new ModelManager({
      engine: () => OrtCpuEngine.create({ intraOpNumThreads: 1 }),
      telemetry: sink,
      modelsDir,
      warmupRuns: 1,
      probation: { windowMs: 0 },
      drainTimeoutMs: 10_000,
      ...options,
    });
    return { manager, sink, modelsDir };
  }
}

export async function runOn(lease: Lease, batch = 1): Promise<number[]> {
  const { outputs } = await lease.session.run(new Map([['x', input(batch)]]));
  return Array.from(outputs.get('y')!.data);
}

/** Acquires, runs, releases with the outcome; returns the version that served and its output. */
export async function infer(manager: ModelManager, name: string, batch = 1, version?: string): Promise<{ version: string; y: number[] }> {
  const lease = manager.acquire(name, version);
  const started = performance.now();
  try {
    const y = await runOn(lease, batch);
    lease.release({ ok: true, latencyMs: performance.now() - started });
    return { version: lease.version, y };
  } catch (error) {
    lease.release({ ok: false, latencyMs: performance.now() - started });
    throw error;
  }
}

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
