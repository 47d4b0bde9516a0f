import type { Test } from 'tap';
import { isEdgerunError, type ErrorCode } from '../../daemon/errors.ts';

/** Asserts that `action` rejects with an EdgerunError of `code` whose message matches every pattern. */
export async function expectEdgerunError(t: Test, action: Promise<unknown> | (() => unknown), code: ErrorCode, ...patterns: RegExp[]): Promise<void> {
  try {
    await (typeof action === 'function' ? action() : action);
  } catch (error) {
    t.ok(isEdgerunError(error, code), `${code}: got ${(error as { code?: string }).code ?? (error as Error).name}: ${(error as Error).message}`);
    for (const pattern of patterns) t.match((error as Error).message, pattern);
    return;
  }
  t.fail(`expected ${code}, but nothing was thrown`);
}
