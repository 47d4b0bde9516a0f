/** Quantized matmul kernels (filled in by the owner of this file). */
import type { OpDefinition } from './types.ts';

export const ops: OpDefinition[] = [];
