/**
 * Starts a worker thread from a module next to the caller, both when edgerun runs compiled (dist/…/x.js)
 * and when it runs from TypeScript source under tsx (tests, benchmarks): Node 20 does not apply `--import tsx`
 * to a worker's entry module, so a .ts entry is loaded through tsx's register API from an eval'd bootstrap.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

export function startModuleWorker(callerUrl: string, stem: string, options: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const entry = new URL(`./${stem}.${fromSource ? 'ts' : 'js'}`, callerUrl);
  if (!fromSource) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry.href)});`;
  return new Worker(bootstrap, { ...options, eval: true });
}
