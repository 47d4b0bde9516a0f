/** A real serving app over real onnxruntime sessions, for inject() tests; torn down with the test. */
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { Test } from 'tap';
import { OrtCpuEngine } from '../../../daemon/engine/ort-cpu-engine.ts';
import type { Engine } from '../../../daemon/engine/types.ts';
import { build, type ServeLimits } from '../../../daemon/serve/app.ts';
import type { AccuracyRecord, LifecycleEvent, RequestRecord, TelemetrySink } from '../../../daemon/telemetry/sink.ts';
import { MemoryModelRegistry } from './memory-registry.ts';
import { writeModels, type ModelFiles } from './models.ts';

/** Keeps what it is given: the test reads it back (the SQLite recorder is tested in test/telemetry/). */
export class CollectingTelemetry implements TelemetrySink {
  readonly requests: RequestRecord[] = [];
  readonly events: LifecycleEvent[] = [];
  readonly accuracy: AccuracyRecord[] = [];
  recordRequest(record: RequestRecord): void { this.requests.push(record); }
  recordEvent(event: LifecycleEvent): void { this.events.push(event); }
  recordAccuracy(record: AccuracyRecord): void { this.accuracy.push(record); }
}

export interface Serving {
  app: FastifyInstance;
  registry: MemoryModelRegistry;
  engine: Engine;
  models: ModelFiles;
  telemetry: CollectingTelemetry;
  metricsRegistry: Registry;
  draining: { value: boolean };
}

export interface ServingOptions {
  /** Model names (example, mymodel, typed, slow) to load before the test; default all but slow. */
  load?: string[];
  limits?: Partial<ServeLimits>;
  engine?: Engine;
}

export async function startServing(t: Test, options: ServingOptions = {}): Promise<Serving> {
  const models = writeModels();
  const engine = options.engine ?? await OrtCpuEngine.create({ intraOpNumThreads: 1 });
  const registry = new MemoryModelRegistry(engine, { example: models.example, mymodel: models.protocol, typed: models.typed, slow: models.slow });
  await Promise.all((options.load ?? ['example', 'mymodel', 'typed']).map((name) => registry.load(name)));
  const telemetry = new CollectingTelemetry();
  const metricsRegistry = new Registry();
  const draining = { value: false };
  const app = await build({ registry, telemetry, metricsRegistry, limits: options.limits, isDraining: () => draining.value });
  t.teardown(async () => {
    await app.close();
    await registry.close();
    if (!options.engine) await engine.close();
    models.remove();
  });
  return { app, registry, engine, models, telemetry, metricsRegistry, draining };
}

/** A POST with a JSON body, as clients send it. */
export function postJson(app: FastifyInstance, url: string, body: unknown) {
  return app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
}
