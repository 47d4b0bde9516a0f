/** Deterministic random inputs for `--random`, shaped from the model's declared inputs and `--shape` overrides. */
import { EdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, type Tensor } from '../graph/ir.ts';
import type { TensorInfo } from '../engine/types.ts';

export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function resolveShape(input: TensorInfo, override: number[] | undefined): number[] {
  if (override) return override;
  if (!input.dims || input.dims.some((d) => typeof d !== 'number' || d <= 0)) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE',
      `input '${input.name}' has dynamic dims [${(input.dims ?? ['?']).map((d) => d ?? '?').join(', ')}]: give --shape ${input.name}=…`,
      { input: input.name });
  }
  return input.dims as number[];
}

export function randomTensor(input: TensorInfo, shape: number[], random: () => number): Tensor {
  const count = elementCount(shape);
  if (isFloatDType(input.dtype)) {
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = random() * 2 - 1;
    return { dtype: input.dtype, dims: shape, data };
  }
  const data = new Int32Array(count);
  const range = input.dtype === 'bool' ? 2 : 10;
  for (let i = 0; i < count; i++) data[i] = Math.floor(random() * range);
  return { dtype: input.dtype, dims: shape, data };
}
