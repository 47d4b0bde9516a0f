/** Validation of inference inputs against a model's declared inputs, and conversion to the GPU layout. */
import { EdgerunError } from '../errors.ts';
import { elementCount, type Tensor } from '../graph/ir.ts';
import type { TensorInfo } from './types.ts';

/** Checks names, dtypes, ranks and fixed dims; returns the concrete shape of every input. */
export function validateFeeds(declared: TensorInfo[], feeds: Map<string, Tensor>): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const name of feeds.keys()) {
    if (!declared.some((input) => input.name === name)) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `unknown input '${name}' (the model's inputs: ${declared.map((i) => i.name).join(', ')})`, { input: name });
    }
  }
  for (const input of declared) {
    const feed = feeds.get(input.name);
    if (!feed) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `missing input '${input.name}' (${input.dtype} [${(input.dims ?? []).join(', ')}])`, { input: input.name });
    }
    if (feed.dtype !== input.dtype) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${input.name}' must be ${input.dtype}, got ${feed.dtype}`, { input: input.name, expected: input.dtype, got: feed.dtype });
    }
    if (feed.data.length !== elementCount(feed.dims)) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${input.name}' has ${feed.data.length} elements but shape [${feed.dims.join(', ')}]`, { input: input.name });
    }
    if (input.dims) {
      const dims = input.dims;
      const mismatch = dims.length !== feed.dims.length
        || dims.some((dim, i) => typeof dim === 'number' && dim > 0 && dim !== feed.dims[i]);
      if (mismatch) {
        throw new EdgerunError('EDGERUN_ERR_INPUT', `input '${input.name}' must have shape [${dims.map((d) => d ?? '?').join(', ')}], got [${feed.dims.join(', ')}]`, { input: input.name, expected: dims, got: feed.dims });
      }
    }
    shapes.set(input.name, feed.dims);
  }
  return shapes;
}

/** The input's bytes in the GPU layout (4 bytes per element), as a transferable copy. */
export function toGpuLayout(tensor: Tensor): ArrayBuffer {
  const { data } = tensor;
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

export function shapeSignature(shapes: Map<string, number[]>): string {
  return [...shapes].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, dims]) => `${name}:${dims.join('x')}`).join(';');
}

/** Shapes of every input when all declared dims are concrete, else null. */
export function staticShapes(declared: TensorInfo[]): Map<string, number[]> | null {
  const shapes = new Map<string, number[]>();
  for (const input of declared) {
    if (!input.dims || input.dims.some((d) => typeof d !== 'number' || d < 0)) return null;
    shapes.set(input.name, input.dims as number[]);
  }
  return shapes;
}
