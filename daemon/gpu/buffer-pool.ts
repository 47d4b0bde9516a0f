/**
 * The one buffer pool of the GPU thread. Buffers are created in size classes so a freed buffer can serve
 * a later request of a similar size (a hot swap to the next model version, staging buffers of every run).
 * Callers return buffers only when no submitted work uses them any more (see lifetimes.ts); the pool keeps
 * up to `maxIdleBytes` of them and destroys the oldest beyond that.
 */
import { captureErrors } from './error-scopes.ts';

/** GPUBufferUsage / GPUMapMode values (the globals exist only once dawn.node's globals are installed). */
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;
export const MAP_MODE_READ = 0x0001;

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

/**
 * Up to 64 KiB: the next power of two (at least 256 B). Above: rounded up to an eighth of the leading power
 * of two, so at most 12.5 % is wasted on large weight buffers.
 */
export function sizeClass(bytes: number, maxBufferSize: number): number {
  const wanted = Math.max(256, Math.ceil(bytes / 4) * 4);
  let size: number;
  if (wanted <= 65536) {
    size = 2 ** Math.ceil(Math.log2(wanted));
  } else {
    const step = 2 ** (Math.floor(Math.log2(wanted)) - 3);
    size = Math.ceil(wanted / step) * step;
  }
  return size <= maxBufferSize ? size : Math.max(bytes, Math.min(wanted, maxBufferSize));
}

export interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
  usage: number;
  /** True when the buffer held data of an earlier user (fresh buffers are zero-filled). */
  reused: boolean;
}

export interface BufferPoolStats {
  pooledBuffers: number;
  pooledBytes: number;
  liveBufferBytes: number;
  buffersCreated: number;
  buffersReused: number;
}

export class BufferPool {
  /** Idle buffers by `usage:size`, each list oldest first. */
  private idle = new Map<string, PooledBuffer[]>();
  /** Insertion-ordered, for evicting the oldest idle buffer first. */
  private idleOrder = new Set<PooledBuffer>();
  private idleBytes = 0;
  private liveBytes = 0;
  private created = 0;
  private reusedCount = 0;

  constructor(private readonly device: GPUDevice, private readonly maxIdleBytes: number) {}

  async acquire(bytes: number, usage: number, label: string): Promise<PooledBuffer> {
    const size = sizeClass(bytes, this.device.limits.maxBufferSize);
    const list = this.idle.get(`${usage}:${size}`);
    const pooled = list?.shift();
    if (pooled) {
      this.idleOrder.delete(pooled);
      this.idleBytes -= pooled.size;
      this.liveBytes += pooled.size;
      this.reusedCount++;
      pooled.buffer.label = label;
      return { ...pooled, reused: true };
    }
    const buffer = await captureErrors(this.device, { what: 'buffer', label, context: { bytes: size } },
      () => this.device.createBuffer({ label, size, usage }));
    this.created++;
    this.liveBytes += size;
    return { buffer, size, usage, reused: false };
  }

  /** The caller guarantees no pending GPU work uses the buffer and that it is unmapped. */
  release(pooled: PooledBuffer): void {
    this.liveBytes -= pooled.size;
    if (pooled.size > this.maxIdleBytes) {
      pooled.buffer.destroy();
      return;
    }
    while (this.idleBytes + pooled.size > this.maxIdleBytes) this.evictOldest();
    const entry: PooledBuffer = { ...pooled, reused: true };
    const key = `${pooled.usage}:${pooled.size}`;
    const list = this.idle.get(key);
    if (list) list.push(entry);
    else this.idle.set(key, [entry]);
    this.idleOrder.add(entry);
    this.idleBytes += entry.size;
  }

  /** Destroys every idle buffer (live ones belong to their sessions). */
  clear(): void {
    while (this.idleOrder.size > 0) this.evictOldest();
  }

  stats(): BufferPoolStats {
    return {
      pooledBuffers: this.idleOrder.size,
      pooledBytes: this.idleBytes,
      liveBufferBytes: this.liveBytes,
      buffersCreated: this.created,
      buffersReused: this.reusedCount,
    };
  }

  private evictOldest(): void {
    const oldest = this.idleOrder.values().next().value as PooledBuffer | undefined;
    if (!oldest) return;
    this.idleOrder.delete(oldest);
    const key = `${oldest.usage}:${oldest.size}`;
    const list = this.idle.get(key)!;
    list.splice(list.indexOf(oldest), 1);
    if (list.length === 0) this.idle.delete(key);
    this.idleBytes -= oldest.size;
    oldest.buffer.destroy();
  }
}
