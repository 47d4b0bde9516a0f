/**
 * Window geometry shared by Conv, ConvTranspose and the pooling ops: reading kernel_shape / strides /
 * dilations / pads / auto_pad and computing output extents, following onnxruntime where the ONNX spec
 * leaves room (it is the oracle the tests compare against).
 */
import { EdgerunError } from '../errors.ts';
import { Attributes } from '../graph/attributes.ts';
import type { Node } from '../graph/ir.ts';

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/** Per spatial axis (outermost first): everything a sliding window needs. */
export interface WindowGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  padBegin: number[];
  padEnd: number[];
  /** Input and output spatial extents. */
  input: number[];
  output: number[];
}

export function shapeError(node: Node, message: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_SHAPE', `node '${node.name}' (${node.opType}): ${message}`,
    { node: node.name, opType: node.opType, ...context });
}

export function unsupportedError(node: Node, message: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `node '${node.name}' (${node.opType}): ${message}`,
    { node: node.name, opType: node.opType, ...context });
}

export function invalidError(node: Node, message: string, context: Record<string, unknown> = {}): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `node '${node.name}' (${node.opType}): ${message}`,
    { node: node.name, opType: node.opType, ...context });
}

export function readAutoPad(node: Node): AutoPad {
  const value = new Attributes(node).string('auto_pad', 'NOTSET');
  if (value === 'NOTSET' || value === 'SAME_UPPER' || value === 'SAME_LOWER' || value === 'VALID') return value;
  throw invalidError(node, `auto_pad '${value}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID`, { attribute: 'auto_pad' });
}

/** An ints attribute of exactly `length` positive (or, with allowZero, non-negative) entries, or the fallback. */
export function readAxisInts(node: Node, name: string, length: number, fallback: number, allowZero = false): number[] {
  const attributes = new Attributes(node);
  if (!attributes.has(name)) return new Array<number>(length).fill(fallback);
  const values = attributes.ints(name);
  if (values.length !== length) {
    throw invalidError(node, `attribute '${name}' has ${values.length} entries, expected ${length}`, { attribute: name });
  }
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0 || (!allowZero && v === 0)) {
      throw invalidError(node, `attribute '${name}' holds ${v}, expected a ${allowZero ? 'non-negative' : 'positive'} integer`, { attribute: name });
    }
  }
  return values;
}

/** The explicit `pads` attribute as begin/end lists (all begins, then all ends, as ONNX stores them). */
export function readPads(node: Node, spatial: number): { begin: number[]; end: number[] } {
  const pads = readAxisInts(node, 'pads', 2 * spatial, 0, true);
  return { begin: pads.slice(0, spatial), end: pads.slice(spatial) };
}

export interface WindowOptions {
  /** Pooling's ceil_mode: round the output extent up (windows starting inside the end padding are dropped). */
  ceilMode?: boolean;
}

/**
 * Output extents and effective pads of a forward sliding window (Conv, MaxPool, AveragePool).
 * SAME_* ignores `pads` and pads so that output = ceil(input / stride); the odd pixel goes to the end
 * (SAME_UPPER) or the beginning (SAME_LOWER).
 */
export function forwardWindow(node: Node, input: number[], kernel: number[], options: WindowOptions = {}): WindowGeometry {
  const spatial = input.length;
  const autoPad = readAutoPad(node);
  const strides = readAxisInts(node, 'strides', spatial, 1);
  const dilations = readAxisInts(node, 'dilations', spatial, 1);
  const explicit = readPads(node, spatial);
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  const output: number[] = [];
  for (let a = 0; a < spatial; a++) {
    const span = (kernel[a] - 1) * dilations[a] + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const out = Math.ceil(input[a] / strides[a]);
      const total = Math.max(0, (out - 1) * strides[a] + span - input[a]);
      const small = Math.floor(total / 2);
      padBegin.push(autoPad === 'SAME_UPPER' ? small : total - small);
      padEnd.push(autoPad === 'SAME_UPPER' ? total - small : small);
      output.push(out);
      continue;
    }
    const begin = autoPad === 'VALID' ? 0 : explicit.begin[a];
    const end = autoPad === 'VALID' ? 0 : explicit.end[a];
    const room = input[a] + begin + end - span;
    let out: number;
    if (options.ceilMode) {
      out = Math.ceil(room / strides[a]) + 1;
      // a window must start inside the input or the begin padding
      if ((out - 1) * strides[a] >= input[a] + begin) out -= 1;
    } else {
      out = Math.floor(room / strides[a]) + 1;
    }
    padBegin.push(begin);
    padEnd.push(end);
    output.push(out);
  }
  for (let a = 0; a < spatial; a++) {
    if (output[a] < 1) {
      throw shapeError(node, `window of extent ${(kernel[a] - 1) * dilations[a] + 1} does not fit spatial axis ${a} of size ${input[a]} (pads ${padBegin[a]}+${padEnd[a]})`,
        { input, kernel });
    }
  }
  return { kernel, strides, dilations, padBegin, padEnd, input, output };
}
