/**
 * Per-dispatch GPU timing with timestamp queries: the session encodes one compute pass per step when
 * profiling, each pass writing a begin and an end timestamp. Query sets hold at most 4096 queries, so long
 * plans use several; all resolve into one buffer that is copied behind the outputs in the staging buffer.
 */
import { BufferUsage, type BufferPool, type PooledBuffer } from './buffer-pool.ts';
import { captureErrors } from './error-scopes.ts';

const QUERIES_PER_SET = 4096;

export class TimestampProfiler {
  private constructor(
    private readonly querySets: GPUQuerySet[],
    private readonly resolveBuffer: PooledBuffer,
    private readonly pool: BufferPool,
    private readonly nodes: string[],
  ) {}

  static async create(device: GPUDevice, pool: BufferPool, nodes: string[], label: string): Promise<TimestampProfiler> {
    const queries = nodes.length * 2;
    const sets = await captureErrors(device, { what: 'timestamp query sets', label }, () => {
      const created: GPUQuerySet[] = [];
      for (let first = 0; first < queries; first += QUERIES_PER_SET) {
        created.push(device.createQuerySet({ label: `${label} timestamps`, type: 'timestamp', count: Math.min(QUERIES_PER_SET, queries - first) }));
      }
      return created;
    });
    const resolveBuffer = await pool.acquire(queries * 8, BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC, `${label} timestamp resolve`);
    return new TimestampProfiler(sets, resolveBuffer, pool, nodes);
  }

  /** Bytes the timestamps take in the staging buffer. */
  get bytes(): number {
    return this.nodes.length * 16;
  }

  passWrites(step: number): GPUComputePassTimestampWrites {
    const query = step * 2;
    return {
      querySet: this.querySets[Math.floor(query / QUERIES_PER_SET)],
      beginningOfPassWriteIndex: query % QUERIES_PER_SET,
      endOfPassWriteIndex: (query % QUERIES_PER_SET) + 1,
    };
  }

  resolveInto(encoder: GPUCommandEncoder, staging: GPUBuffer, stagingOffset: number): void {
    this.querySets.forEach((set, i) => {
      // A resolve destination offset must be a multiple of 256: QUERIES_PER_SET * 8 is.
      encoder.resolveQuerySet(set, 0, set.count, this.resolveBuffer.buffer, i * QUERIES_PER_SET * 8);
    });
    encoder.copyBufferToBuffer(this.resolveBuffer.buffer, 0, staging, stagingOffset, this.bytes);
  }

  /** Reads the timestamps out of the mapped staging range; null when the adapter wrote none usable. */
  read(range: ArrayBuffer, offset: number): { gpuMs: number; perNodeMs: Map<string, number> } | null {
    const stamps = new BigUint64Array(range.slice(offset, offset + this.bytes));
    let first: bigint | null = null;
    let last: bigint | null = null;
    const perNodeMs = new Map<string, number>();
    for (let i = 0; i < this.nodes.length; i++) {
      const begin = stamps[2 * i];
      const end = stamps[2 * i + 1];
      if (end < begin) return null;
      if (first === null || begin < first) first = begin;
      if (last === null || end > last) last = end;
      const node = this.nodes[i];
      perNodeMs.set(node, (perNodeMs.get(node) ?? 0) + Number(end - begin) / 1e6);
    }
    if (first === null || last === null || last === 0n) return null;
    return { gpuMs: Number(last - first) / 1e6, perNodeMs };
  }

  /** Only once no submitted work uses the query sets (the session's release path guarantees it). */
  destroy(): void {
    for (const set of this.querySets) set.destroy();
    this.pool.release(this.resolveBuffer);
  }
}
