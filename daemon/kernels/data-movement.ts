/**
 * Data-movement ops: each family lives in its own data-movement-*.ts file. Transpose, Slice and Expand
 * are affine views sharing one gather kernel (data-movement-affine.ts); every op folds on the CPU.
 */
import { concatOps } from './data-movement-concat.ts';
import { gatherOps } from './data-movement-gather.ts';
import { padOps } from './data-movement-pad.ts';
import { sliceOps } from './data-movement-slice.ts';
import { transposeOps } from './data-movement-transpose.ts';
import { triluCumSumOps } from './data-movement-trilu-cumsum.ts';
import type { OpDefinition } from './types.ts';

export const ops: OpDefinition[] = [...transposeOps, ...sliceOps, ...concatOps, ...gatherOps, ...padOps, ...triluCumSumOps];
