import type { OpDefinition } from './types.ts';

export const ops: OpDefinition[] = [];
