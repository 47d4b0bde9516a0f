/**
 * Pad in the modes constant, reflect, edge and wrap. Pads come from the `paddings` (opset 1) or `pads`
 * (opset 2–10) attribute or from a compile-time input (11+, with optional `axes` from 18); negative pads crop.
 * The constant value is baked into the kernel when known at compile time, else read from its input.
 */
import { Attributes } from '../graph/attributes.ts';
import { elementCount, isFloatDType, type Tensor, type TensorType } from '../graph/ir.ts';
import { constantInput, elementKernel, normalizeAxes, readBinding, requiredInput, writeBinding } from './data-movement-common.ts';
import { nodeError } from './elementwise-dtypes.ts';
import { allocateHost } from './elementwise-program.ts';
import { stridesOf, unravelIndex } from './shader-util.ts';
import type { Binding, OpContext, OpDefinition } from './types.ts';

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

interface PadLayout {
  mode: PadMode;
  input: number[];
  begin: number[];
  type: TensorType;
  /** The constant value when known at compile time (constant mode), else null (read from input 2). */
  value: number | null;
}

function padLayout(ctx: OpContext): PadLayout {
  const input = requiredInput(ctx, 0);
  const rank = input.shape.length;
  const a = new Attributes(ctx.node);
  const mode = a.string('mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge' && !(mode === 'wrap' && ctx.opset >= 19)) {
    throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node, `mode '${mode}' is not supported`);
  }
  let pads: number[];
  let value: number | null = 0;
  let axes = Array.from({ length: rank }, (_, i) => i);
  if (ctx.opset < 11) {
    pads = a.ints(ctx.opset < 2 ? 'paddings' : 'pads');
    value = a.float('value', 0);
  } else {
    pads = Array.from(constantInput(ctx, 1, 'pads').data);
    if (ctx.inputs[2]) value = ctx.constants[2] ? ctx.constants[2].data[0] : null;
    if (ctx.opset >= 18 && ctx.inputs[3]) axes = normalizeAxes(ctx.node, Array.from(constantInput(ctx, 3, 'axes').data), rank);
  }
  if (pads.length !== 2 * axes.length) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `pads [${pads}] must hold ${2 * axes.length} values for ${axes.length} axes`);
  }
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  axes.forEach((axis, i) => {
    begin[axis] = pads[i];
    end[axis] = pads[i + axes.length];
  });
  const shape = input.shape.map((d, i) => d + begin[i] + end[i]);
  if (shape.some((d) => d < 0)) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `pads [${pads}] crop [${input.shape}] below zero`);
  if (mode !== 'constant' && input.shape.some((d, i) => d === 0 && shape[i] > 0)) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `mode '${mode}' cannot pad an empty axis of [${input.shape}]`);
  }
  return { mode, input: input.shape, begin, type: { dtype: input.dtype, shape }, value };
}

/** Source coordinate of output coordinate `c` on an axis of size `size`, or -1 outside (constant mode). */
function sourceCoordinate(mode: PadMode, c: number, begin: number, size: number): number {
  const s = c - begin;
  if (s >= 0 && s < size) return s;
  switch (mode) {
    case 'constant': return -1;
    case 'edge': return s < 0 ? 0 : size - 1;
    case 'wrap': return ((s % size) + size) % size;
    case 'reflect': {
      const period = 2 * (size - 1);
      if (period === 0) return 0;
      const m = ((s % period) + period) % period;
      return m >= size ? period - m : m;
    }
  }
}

function wgslSourceCoordinate(mode: PadMode, c: string, begin: number, size: number): string {
  const s = `(i32(${c}) - ${begin})`;
  switch (mode) {
    case 'constant': return s;
    case 'edge': return `clamp(${s}, 0, ${size - 1})`;
    case 'wrap': return `(((${s} % ${size}) + ${size}) % ${size})`;
    case 'reflect': {
      const period = 2 * (size - 1);
      if (period === 0) return '0';
      return `er_reflect(${s}, ${size}, ${period})`;
    }
  }
}

const REFLECT_HELPER = `fn er_reflect(s: i32, size: i32, period: i32) -> i32 {
  let m = ((s % period) + period) % period;
  return select(m, period - m, m >= size);
}`;

/** The bit pattern of the pad value in the tensor's GPU storage type. */
function valueBits(value: number, dtype: TensorType['dtype']): number {
  if (isFloatDType(dtype)) return new Uint32Array(Float32Array.of(value).buffer)[0];
  if (dtype === 'bool') return value !== 0 ? 1 : 0;
  return Math.trunc(value) >>> 0;
}

const pad: OpDefinition = {
  opType: 'Pad',
  infer: (ctx) => [padLayout(ctx).type],
  fold: (ctx, inputs) => {
    const { mode, input, begin, type, value } = padLayout(ctx);
    const source: Tensor = inputs[0]!;
    const fill = value ?? inputs[2]!.data[0];
    const total = elementCount(type.shape);
    const out = allocateHost(type.dtype, total);
    const inStrides = stridesOf(input);
    const outStrides = stridesOf(type.shape);
    for (let i = 0; i < total; i++) {
      let offset = 0;
      let inside = true;
      for (let d = 0; d < input.length; d++) {
        const s = sourceCoordinate(mode, Math.floor(i / outStrides[d]) % type.shape[d], begin[d], input[d]);
        if (s < 0) { inside = false; break; }
        offset += s * inStrides[d];
      }
      out[i] = inside ? source.data[offset] : fill;
    }
    return [{ dtype: type.dtype, dims: type.shape, data: out }];
  },
  build: (ctx) => {
    const { mode, input, begin, type, value } = padLayout(ctx);
    const inStrides = stridesOf(input);
    const body: string[] = [unravelIndex(type.shape)];
    const terms: string[] = [];
    const checks: string[] = [];
    input.forEach((size, d) => {
      body.push(`let s${d} = ${wgslSourceCoordinate(mode, `c${d}`, begin[d], size)};`);
      if (mode === 'constant' && (begin[d] > 0 || type.shape[d] - begin[d] > size)) checks.push(`s${d} >= 0 && s${d} < ${size}`);
      terms.push(`s${d} * ${inStrides[d]}`);
    });
    const read = `source[${terms.length ? terms.join(' + ') : '0'}]`;
    const bindings: Binding[] = [{ kind: 'input', index: 0 }];
    const declarations = [readBinding(0, 'source')];
    let fill = value === null ? '' : `${valueBits(value, type.dtype)}u`;
    if (value === null) {
      declarations.push(readBinding(1, 'pad_value'));
      bindings.push({ kind: 'input', index: 2 });
      fill = 'pad_value[0]';
    }
    declarations.push(writeBinding(bindings.length, 'destination'));
    bindings.push({ kind: 'output', index: 0 });
    if (mode === 'reflect') declarations.push(REFLECT_HELPER);
    body.push(checks.length ? `if (${checks.join(' && ')}) { destination[idx] = ${read}; } else { destination[idx] = ${fill}; }` : `destination[idx] = ${read};`);
    const program = elementKernel({
      label: `Pad (${ctx.node.name})`,
      keyParts: ['pad', mode, `in[${input}]`, `out[${type.shape}]`, `begin[${begin}]`, `fill=${fill}`],
      total: elementCount(type.shape),
      declarations,
      body,
      bindings,
      device: ctx.device,
    });
    return program ? [program] : [];
  },
};

export const padOps: OpDefinition[] = [pad];
