/**
 * The one pipeline cache of the GPU thread, keyed by the plan's specialisation key and shared by all
 * sessions. Entries are reference counted; an entry no session uses stays in an LRU of idle pipelines
 * (a hot swap to a new model version usually shares most keys) until `maxIdle` is exceeded. A key that is
 * being compiled is awaited, not compiled twice.
 */
import { EdgerunError } from '../errors.ts';
import { dawnPromise } from './dawn-promises.ts';
import { captureErrorsUnthrown, checkCompilation } from './error-scopes.ts';
import type { PlannedPipeline } from './plan.ts';

interface CacheEntry {
  key: string;
  code: string;
  label: string;
  ready: Promise<GPUComputePipeline>;
  refs: number;
}

export interface AcquiredPipeline {
  pipeline: GPUComputePipeline;
  /** True when this acquire compiled it (false: cache hit, or shared an in-flight compile). */
  compiled: boolean;
}

export class PipelineCache {
  private entries = new Map<string, CacheEntry>();
  /** Keys with refs === 0, least recently released first. */
  private idle = new Set<string>();
  private compiledCount = 0;
  private hitCount = 0;

  constructor(private readonly device: GPUDevice, private readonly maxIdle: number) {}

  async acquire(planned: PlannedPipeline): Promise<AcquiredPipeline> {
    const existing = this.entries.get(planned.key);
    if (existing) {
      if (existing.code !== planned.code) {
        throw new EdgerunError('EDGERUN_ERR_GPU_VALIDATION',
          `specialisation key collision: programs "${existing.label}" and "${planned.label}" share key ${planned.key} but their WGSL differs`,
          { key: planned.key, program: planned.label });
      }
      existing.refs++;
      this.idle.delete(planned.key);
      this.hitCount++;
      try {
        return { pipeline: await existing.ready, compiled: false };
      } catch (error) {
        existing.refs--;
        throw error;
      }
    }
    const entry: CacheEntry = { key: planned.key, code: planned.code, label: planned.label, refs: 1, ready: this.compile(planned) };
    this.entries.set(planned.key, entry);
    this.compiledCount++;
    try {
      return { pipeline: await entry.ready, compiled: true };
    } catch (error) {
      // A failed compile is not cached: the next load retries (it may come with fixed WGSL under a new key anyway).
      if (this.entries.get(planned.key) === entry) this.entries.delete(planned.key);
      throw error;
    }
  }

  /** Called once per successful acquire, after the last submission using the pipeline completed. */
  release(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.refs--;
    if (entry.refs > 0) return;
    this.idle.add(key);
    while (this.idle.size > this.maxIdle) {
      const oldest = this.idle.values().next().value as string;
      this.idle.delete(oldest);
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
    this.idle.clear();
  }

  stats(): { cachedPipelines: number; idlePipelines: number; pipelinesCompiled: number; pipelineCacheHits: number } {
    return { cachedPipelines: this.entries.size, idlePipelines: this.idle.size, pipelinesCompiled: this.compiledCount, pipelineCacheHits: this.hitCount };
  }

  private async compile(planned: PlannedPipeline): Promise<GPUComputePipeline> {
    const { key, label, code } = planned;
    const { value: module, error } = await captureErrorsUnthrown(this.device, { what: 'shader module', label, context: { key } },
      () => this.device.createShaderModule({ label, code }));
    // The compiler's messages carry the WGSL line; prefer them over the scope's error.
    if (module) await checkCompilation(module, code, label, key);
    if (error || !module) throw error;
    try {
      return await dawnPromise(this.device.createComputePipelineAsync({ label, layout: 'auto', compute: { module, entryPoint: 'main' } }));
    } catch (error) {
      throw new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `WebGPU rejected pipeline "${label}": ${(error as Error).message}`,
        { program: label, key }, { cause: error });
    }
  }
}
