import type { ExternalDataReader } from './external-data.ts';
import type { OnnxLimits } from './limits.ts';

/** State shared by one decodeModel call: caps, running totals, and where errors point. */
export interface DecodeContext {
  readonly limits: OnnxLimits;
  /** The file (or caller-given label) named in every error. */
  readonly source: string;
  readonly externalData: ExternalDataReader;
  totalTensorBytes: number;
  nodeCount: number;
}
