/**
 * Counts the Dawn promises the GPU thread is waiting on. dawn.node aborts the whole process
 * ("Promise not resolved or rejected") when a thread ends while one of its promises is still pending, so
 * the thread only ever exits once this count is back to zero (after the device is destroyed, Dawn settles
 * them all quickly).
 */
let pending = 0;

export function dawnPromise<T>(promise: Promise<T>): Promise<T> {
  pending++;
  return promise.finally(() => { pending--; });
}

/** Resolves once no Dawn promise is pending, or after `timeoutMs` (returns whether it drained). */
export async function drainDawnPromises(timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pending > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  return pending === 0;
}
