/**
 * The one owner of GPU object lifetimes. Every submit goes through submit(), which numbers it; a resource
 * that a submission may use is handed back (to the buffer pool, the pipeline cache, or destroyed) only
 * through afterSerial(n, release), which runs `release` once submission n and all before it have
 * completed on the GPU. Queue work completes in order, so one counter suffices.
 */
import { dawnPromise } from './dawn-promises.ts';

export class SubmissionTracker {
  private submitted = 0;
  private completed = 0;
  private waiting: { serial: number; release: () => void }[] = [];
  private abandoned = false;

  constructor(private readonly queue: GPUQueue, private readonly onReleaseError: (error: unknown) => void) {}

  get submittedSerial(): number {
    return this.submitted;
  }

  get completedSerial(): number {
    return this.completed;
  }

  /** Submits and returns the submission's serial. */
  submit(commandBuffers: GPUCommandBuffer[]): number {
    this.queue.submit(commandBuffers);
    const serial = ++this.submitted;
    dawnPromise(this.queue.onSubmittedWorkDone()).then(() => this.markCompleted(serial), () => this.markCompleted(serial));
    return serial;
  }

  /** Records that work up to `serial` is known complete (a mapAsync on its output resolved). */
  markCompleted(serial: number): void {
    if (serial <= this.completed) return;
    this.completed = serial;
    const due = this.waiting.filter((w) => w.serial <= serial);
    if (due.length === 0) return;
    this.waiting = this.waiting.filter((w) => w.serial > serial);
    for (const w of due) this.runRelease(w.release);
  }

  afterSerial(serial: number, release: () => void): void {
    if (serial <= this.completed || this.abandoned) this.runRelease(release);
    else this.waiting.push({ serial, release });
  }

  /** Resolves once everything submitted so far has completed. */
  idle(): Promise<void> {
    return new Promise((resolve) => this.afterSerial(this.submitted, resolve));
  }

  /** The device is gone: nothing will complete, so release everything now (destroying is then a no-op). */
  abandon(): void {
    this.abandoned = true;
    const due = this.waiting;
    this.waiting = [];
    for (const w of due) this.runRelease(w.release);
  }

  private runRelease(release: () => void): void {
    try {
      release();
    } catch (error) {
      this.onReleaseError(error);
    }
  }
}
