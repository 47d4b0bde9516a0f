/** Small WGSL building blocks shared by the op files, so each op file writes only its body. */
import { EdgerunError } from '../errors.ts';
import type { WgslScalar } from './elementwise-expr.ts';
import type { Binding } from './types.ts';

export interface LinearDispatch {
  workgroups: [number, number, number];
  /** WGSL statements (inside main) that define `idx: u32` and return when it is past `total`. */
  prologue: string;
}

/**
 * Spread `total` invocations of `workgroupSize` over x and y so no dimension exceeds `maxPerDimension`.
 * main must declare `@builtin(global_invocation_id) gid: vec3<u32>`.
 */
export function linearDispatch(total: number, workgroupSize: number, maxPerDimension = 65535): LinearDispatch {
  const groups = Math.max(1, Math.ceil(total / workgroupSize));
  const x = Math.min(groups, maxPerDimension);
  const y = Math.ceil(groups / x);
  const rowStride = x * workgroupSize;
  const prologue = y > 1
    ? `let idx = gid.x + gid.y * ${rowStride}u;\n  if (idx >= ${total}u) { return; }`
    : `let idx = gid.x;\n  if (idx >= ${total}u) { return; }`;
  return { workgroups: [x, y, 1], prologue };
}

export type Access = 'read' | 'read_write';

export function storageBinding(binding: number, name: string, type: WgslScalar | 'vec4<f32>', access: Access): string {
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${type}>;`;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

/**
 * Coordinates of consecutive elements of a row-major shape of `rank` dims whose sizes are the u32
 * expressions `dim(d)`: `init` declares vars c0..c{rank-1} for the flat index `index` (one division per dim
 * but the outermost), `advance` moves them to the next element with a carry chain, no division. Kernels
 * that handle several consecutive elements per invocation divide once and then advance.
 */
export function walkCoordinates(rank: number, index: string, dim: (d: number) => string): { init: string[]; advance: string[] } {
  if (rank === 0) return { init: [], advance: [] };
  const init = rank > 1 ? [`var rest = ${index};`] : [];
  for (let d = rank - 1; d > 0; d--) init.push(`var c${d} = rest % ${dim(d)};`, `rest = rest / ${dim(d)};`);
  init.push(rank > 1 ? 'var c0 = rest;' : `var c0 = ${index};`);
  // wrapping dim d carries into d-1; built from the outside in, so the innermost test encloses the rest
  let chain = '';
  for (let d = 1; d < rank; d++) chain = `if (c${d} == ${dim(d)}) { c${d} = 0u; c${d - 1} = c${d - 1} + 1u;${chain ? ` ${chain}` : ''} }`;
  return { init, advance: [`c${rank - 1} = c${rank - 1} + 1u;`, ...(chain ? [chain] : [])] };
}

/**
 * WGSL statements that decompose the flat output index `idx` into per-dimension coordinates
 * `${prefix}0 … ${prefix}{rank-1}` (as u32) for a shape baked into the shader.
 */
export function unravelIndex(shape: readonly number[], index = 'idx', prefix = 'c'): string {
  const strides = stridesOf(shape);
  const lines: string[] = [];
  if (shape.length === 0) return '';
  lines.push(`var rem_${prefix} = ${index};`);
  for (let d = 0; d < shape.length; d++) {
    if (d === shape.length - 1) {
      lines.push(`let ${prefix}${d} = rem_${prefix};`);
    } else {
      lines.push(`let ${prefix}${d} = rem_${prefix} / ${strides[d]}u;`);
      lines.push(`rem_${prefix} = rem_${prefix} - ${prefix}${d} * ${strides[d]}u;`);
    }
  }
  return lines.join('\n  ');
}

/**
 * The WGSL expression of the flat index into an input of `inputShape` broadcast to `outputShape`, given
 * output coordinates `${prefix}<d>` (from unravelIndex). Broadcast dims (size 1) contribute nothing.
 */
export function broadcastIndex(inputShape: readonly number[], outputShape: readonly number[], prefix = 'c'): string {
  const offset = outputShape.length - inputShape.length;
  const strides = stridesOf(inputShape);
  const terms: string[] = [];
  for (let d = 0; d < inputShape.length; d++) {
    if (inputShape[d] === 1) continue;
    const coord = `${prefix}${d + offset}`;
    terms.push(strides[d] === 1 ? coord : `${coord} * ${strides[d]}u`);
  }
  return terms.length ? terms.join(' + ') : '0u';
}

/** NumPy-style broadcast of two or more shapes, or null when they are incompatible. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] | null {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const shape of shapes) {
    const offset = rank - shape.length;
    for (let d = 0; d < shape.length; d++) {
      const size = shape[d];
      const current = out[d + offset];
      if (size === current || size === 1) continue;
      if (current === 1) out[d + offset] = size;
      else return null;
    }
  }
  return out;
}

/**
 * The shape values (sizes, counts, strides) of a kernel, either baked into its WGSL as literals (constant
 * divisors and loop bounds for the driver to fold) or read from a params buffer bound as build-time data.
 * With params the code no longer depends on the shapes, so every node of the same structure shares one
 * pipeline: on lavapipe, which compiles each pipeline on its first dispatch (~50-100 ms even for a trivial
 * shader), that is what a model's first inference waits for. Generators write the same template either way:
 * `value(n, name)` is a literal or the name of a `let` loaded from the buffer at the top of main.
 */
export class ShapeValues {
  private readonly names: string[] = [];
  private readonly values: number[] = [];

  constructor(readonly fromParams: boolean) {}

  /** A u32 expression of `value`; `name` (a WGSL identifier) must be unique in the kernel. */
  value(value: number, name: string): string {
    const index = this.names.indexOf(name);
    if (index < 0) {
      this.names.push(name);
      this.values.push(value);
    } else if (this.values[index] !== value) {
      // one name, two values: the generated code would not match its key
      throw new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `shape value '${name}' given as ${this.values[index]} and as ${value}`, { name });
    }
    return this.fromParams ? name : `${value}u`;
  }

  /** An i32 expression of `value` (which may be negative), stored in the params buffer as its bits. */
  signed(value: number, name: string): string {
    const stored = this.value(value >>> 0, name);
    return this.fromParams ? `bitcast<i32>(${stored})` : `i32(${value})`;
  }

  /** The params buffer declaration for binding `binding` (empty when baked or when no value was used). */
  declaration(binding: number): string {
    return this.used ? `@group(0) @binding(${binding}) var<storage, read> params: array<u32>;` : '';
  }

  /** Statements loading every used value at the top of main. */
  loads(): string[] {
    return this.used ? this.names.map((name, i) => `let ${name} = params[${i}];`) : [];
  }

  /** The build-time data binding of the params buffer, or null. */
  binding(): Binding | null {
    return this.used ? { kind: 'constant', data: Uint32Array.from(this.values) } : null;
  }

  /** Part of the specialisation key: the values when baked, only their names when read from params. */
  key(): string {
    return this.fromParams ? `params(${this.names.join(',')})` : `baked(${this.names.map((name, i) => `${name}=${this.values[i]}`).join(',')})`;
  }

  get used(): boolean {
    return this.fromParams && this.names.length > 0;
  }
}
