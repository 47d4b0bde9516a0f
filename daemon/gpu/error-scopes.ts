/**
 * WebGPU reports most errors asynchronously through error scopes. Every create call on the GPU thread goes
 * through captureErrors(), which pushes validation + out-of-memory scopes, runs the call synchronously (so
 * concurrent async work cannot interleave its own errors into the scopes), pops both and turns a captured
 * error into an EdgerunError naming what was being created.
 */
import { EdgerunError } from '../errors.ts';
import { dawnPromise } from './dawn-promises.ts';

export interface ErrorSubject {
  /** What was being created or run, e.g. `shader module`, `pipeline`, `buffer`, `dispatch`. */
  what: string;
  /** The program label / buffer name the error message names. */
  label: string;
  context?: Record<string, unknown>;
}

export async function captureErrors<T>(device: GPUDevice, subject: ErrorSubject, create: () => T): Promise<T> {
  const { value, error } = await captureErrorsUnthrown(device, subject, create);
  if (error) throw error;
  return value as T;
}

/** As captureErrors, but hands back the error so the caller can first look for a better one (WGSL line info). */
export async function captureErrorsUnthrown<T>(device: GPUDevice, subject: ErrorSubject, create: () => T):
  Promise<{ value: T | undefined; error: EdgerunError | null }> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  let value: T | undefined;
  let thrown: unknown = null;
  try {
    value = create();
  } catch (error) {
    thrown = error;
  }
  const validation = dawnPromise(device.popErrorScope());
  const outOfMemory = dawnPromise(device.popErrorScope());
  const [validationError, oomError] = await Promise.all([validation, outOfMemory]);
  const context = { label: subject.label, ...subject.context };
  if (oomError) {
    return { value, error: new EdgerunError('EDGERUN_ERR_GPU_OOM', `out of GPU memory creating ${subject.what} "${subject.label}": ${oomError.message}`, context) };
  }
  if (validationError) {
    return { value, error: new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `WebGPU rejected ${subject.what} "${subject.label}": ${validationError.message}`, context) };
  }
  if (thrown instanceof EdgerunError) return { value, error: thrown };
  if (thrown !== null) {
    return { value, error: new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `WebGPU rejected ${subject.what} "${subject.label}": ${(thrown as Error).message}`, context, { cause: thrown }) };
  }
  return { value, error: null };
}

export interface WgslDiagnostic {
  type: GPUCompilationMessageType;
  line: number;
  column: number;
  message: string;
}

/**
 * Reads the compiler's messages for a module and throws EDGERUN_ERR_GPU_VALIDATION naming the program,
 * its key and the first error's WGSL line (with the source line quoted), or returns the warnings.
 */
export async function checkCompilation(module: GPUShaderModule, code: string, label: string, key: string): Promise<WgslDiagnostic[]> {
  const info = await dawnPromise(module.getCompilationInfo());
  const diagnostics: WgslDiagnostic[] = info.messages.map((m) => ({ type: m.type, line: m.lineNum, column: m.linePos, message: m.message }));
  const firstError = diagnostics.find((d) => d.type === 'error');
  if (firstError) throw wgslError(firstError, diagnostics, code, label, key);
  return diagnostics;
}

function wgslError(first: WgslDiagnostic, all: WgslDiagnostic[], code: string, label: string, key: string): EdgerunError {
  const sourceLine = first.line > 0 ? code.split('\n')[first.line - 1] ?? '' : '';
  const quoted = sourceLine ? `\n  ${first.line} | ${sourceLine.trim()}` : '';
  return new EdgerunError('EDGERUN_ERR_GPU_VALIDATION',
    `WGSL error in program "${label}" at line ${first.line}:${first.column}: ${first.message}${quoted}`,
    { program: label, key, line: first.line, column: first.column, diagnostics: all.filter((d) => d.type === 'error') });
}
