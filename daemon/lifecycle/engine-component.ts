/**
 * Engine selection as a daemon component: picks WebGPU or onnxruntime-cpu per engine.kind once at start (so a
 * broken engine fails the start, naming it, before any model loads) and hands the model manager an engine whose
 * close() runs once, since both the manager (which owns the sessions) and this component close it.
 */
import type { ResolvedConfig } from '../config/types.ts';
import { selectEngine, type EnginePreference } from '../engine/select-engine.ts';
import type { Engine } from '../engine/types.ts';
import type { Logger } from '../log.ts';
import type { Component } from './lifecycle.ts';

const PREFERENCE: Record<ResolvedConfig['engine']['kind'], EnginePreference> = { auto: 'auto', webgpu: 'webgpu', 'onnxruntime-cpu': 'cpu' };

export class EngineComponent implements Component {
  readonly name = 'engine';
  #engine: Engine | undefined;
  #closing: Promise<void> | undefined;

  constructor(private readonly config: ResolvedConfig, private readonly log: Logger) {}

  /** The selected engine (close-once); only valid after start. */
  get engine(): Engine {
    const engine = this.#engine;
    if (!engine) throw new Error('engine: used before start');
    return {
      name: engine.name,
      load: (modelPath, options) => engine.load(modelPath, options),
      close: () => this.#close(),
    };
  }

  async start(): Promise<void> {
    const { kind, adapterIndex, cpuThreads } = this.config.engine;
    this.#engine = await selectEngine(PREFERENCE[kind], {
      ...(cpuThreads !== null ? { cpu: { intraOpNumThreads: cpuThreads } } : {}),
      ...(adapterIndex !== null ? { webgpu: { adapterIndex } } : {}),
    });
    this.log.info({ engine: this.#engine.name, configured: kind }, `engine: ${this.#engine.name}`);
  }

  stop(): Promise<void> {
    return this.#close();
  }

  #close(): Promise<void> {
    this.#closing ??= this.#engine?.close() ?? Promise.resolve();
    return this.#closing;
  }
}
