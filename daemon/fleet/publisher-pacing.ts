/**
 * Paces one chunk stream on the devices it serves (docs/PROTOCOL.md, "Pacing"): the sender may run at most
 * senderLeadChunks(manifest) ahead of the lowest contiguous progress its still-downloading devices acknowledged
 * (TransferAck). A broker that dies without saving then loses at most that lead, instead of everything it had
 * accepted but not yet delivered.
 *
 * A device leaves the pacing set when it finishes (any state after `downloading`), when its will says it went
 * offline, or when its progress has not moved for `stallMs` while the sender waits on it; it comes back with an
 * acknowledgement that shows progress (an offline device: any acknowledgement, it sends one when it reconnects).
 * Devices that never acknowledge (older agents) are not paced on. With nobody to pace on there is no limit.
 */
import type { DeploymentManifest } from './protocol.ts';
import { senderLeadChunks } from './protocol.ts';

/** How long the sender waits on a device whose progress does not move before it stops pacing on it. */
export const DEFAULT_PACING_STALL_MS = 15_000;

interface PacedDevice {
  contiguous: number;
  /** Date.now() when `contiguous` last rose (or the device joined). */
  movedAt: number;
}

export type PacingDropReason = 'offline' | 'stalled' | 'finished';

export class TransferPacer {
  readonly leadChunks: number;
  private readonly paced = new Map<string, PacedDevice>();
  /** Devices left out, with the contiguous progress they had then (-1: any acknowledgement brings them back). */
  private readonly left = new Map<string, number>();
  private readonly finished = new Set<string>();

  constructor(
    manifest: Pick<DeploymentManifest, 'chunkCount' | 'chunkBytes' | 'totalBytes'>,
    private readonly onLimitChange: (limit: number) => void,
    private readonly stallMs = DEFAULT_PACING_STALL_MS,
  ) {
    this.leadChunks = senderLeadChunks(manifest);
  }

  /** Exclusive bound on the chunk indices the sender may publish now. */
  limit(): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const device of this.paced.values()) lowest = Math.min(lowest, device.contiguous);
    return lowest + this.leadChunks;
  }

  get pacedDevices(): number {
    return this.paced.size;
  }

  acknowledged(deviceId: string, contiguous: number, now = Date.now()): void {
    if (this.finished.has(deviceId)) return;
    const device = this.paced.get(deviceId);
    if (device) {
      // Acknowledgements come in on two connections (publisher.ts), so an older one may follow a newer one.
      if (contiguous <= device.contiguous) return;
      device.movedAt = now;
      device.contiguous = contiguous;
    } else {
      const leftAt = this.left.get(deviceId);
      if (leftAt !== undefined && contiguous <= leftAt) return;
      this.left.delete(deviceId);
      this.paced.set(deviceId, { contiguous, movedAt: now });
    }
    this.changed();
  }

  drop(deviceId: string, reason: PacingDropReason): boolean {
    const device = this.paced.get(deviceId);
    if (reason === 'finished') {
      this.finished.add(deviceId);
      this.left.delete(deviceId);
    } else if (device) {
      this.left.set(deviceId, reason === 'offline' ? -1 : device.contiguous);
    } else if (reason === 'offline' && this.left.has(deviceId)) {
      this.left.set(deviceId, -1);
    }
    if (!device) return false;
    this.paced.delete(deviceId);
    this.changed();
    return true;
  }

  /** Drops the devices holding the sender back whose progress has not moved for stallMs; returns their ids. */
  dropStalled(now = Date.now()): string[] {
    const limit = this.limit();
    const stalled = [...this.paced.entries()]
      .filter(([, device]) => device.contiguous + this.leadChunks <= limit && now - device.movedAt >= this.stallMs)
      .map(([deviceId]) => deviceId);
    for (const deviceId of stalled) this.drop(deviceId, 'stalled');
    return stalled;
  }

  private changed(): void {
    this.onLimitChange(this.limit());
  }
}
