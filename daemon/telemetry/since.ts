/** Parses the start of a telemetry window: a duration back from now (`90s`, `15m`, `1h`, `7d`, `2w`) or an ISO 8601 time. */
import { EdgerunError, type ErrorCode } from '../errors.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Ten years: anything longer is a typo, not a window. */
const MAX_WINDOW_MS = 10 * 365 * 86_400_000;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Returns epoch milliseconds; throws `code` (CLI usage or request error) naming `what` and the value. */
export function parseSince(text: string, now: number, code: ErrorCode, what: string): number {
  const duration = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (duration) {
    const ms = Number(duration[1]) * UNIT_MS[duration[2]];
    if (ms > 0 && ms <= MAX_WINDOW_MS) return now - ms;
  } else if (ISO_TIME.test(text.trim())) {
    const at = Date.parse(text.trim());
    if (Number.isFinite(at) && at <= now && now - at <= MAX_WINDOW_MS) return at;
  }
  throw new EdgerunError(code, `${what}: '${text}' is not a window like 15m, 1h, 7d or a past ISO time like 2025-01-31T12:00Z (at most 10 years)`, { value: text });
}

/**
 * A model name a filter may name: the package format's names ([A-Za-z0-9][A-Za-z0-9._-]*) and the file names of bare
 * NAME.onnx models, which may carry capitals.
 */
export const MODEL_NAME_FILTER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
