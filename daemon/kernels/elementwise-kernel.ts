/**
 * The one GPU kernel behind every elementwise node, fused chain and broadcast copy (Expand): each invocation
 * loads every input once (at its broadcast index), evaluates the program and stores the result.
 *
 * Shapes are coalesced first: size-1 output dims are dropped and neighbouring dims merged when every input
 * either spans both or broadcasts over both, so `[1,64,56,56] + [64,1,1]` indexes as `[64,3136] + [64,1]`
 * (one division instead of three). When the innermost coalesced dim is a multiple of 4, each invocation
 * handles 4 consecutive elements: inputs that span that dim are read as vec4, inputs broadcast over it are
 * read once, and the output is stored as one vec4.
 *
 * On CPU adapters each invocation handles several consecutive units (dividing once for their coordinates,
 * then advancing them), and the coalesced sizes come from a params buffer: every node running the same
 * program over the same broadcast pattern shares one pipeline, whatever its sizes (see ShapeValues).
 */
import { elementCount, type TensorType } from '../graph/ir.ts';
import { elementwiseHelpers, elementwiseProgramKey, renderElementwiseProgram, wgslType } from './elementwise-expr.ts';
import { linearDispatch, ShapeValues, walkCoordinates } from './shader-util.ts';
import type { DeviceCaps, ElementwiseProgram, KernelProgram } from './types.ts';

export interface CoalescedBroadcast {
  /** The output's coalesced dims (empty for a single element). */
  outShape: number[];
  /** Per input: its coalesced shape, same rank as outShape, 1 where it broadcasts. */
  inputShapes: number[][];
}

/** Drops size-1 output dims and merges neighbouring dims with the same broadcast pattern in every input. */
export function coalesceBroadcast(inputShapes: readonly (readonly number[])[], outShape: readonly number[]): CoalescedBroadcast {
  const rank = outShape.length;
  const aligned = inputShapes.map((shape) => [...new Array<number>(rank - shape.length).fill(1), ...shape]);
  const dims: number[] = [];
  const patterns: boolean[][] = [];
  for (let d = 0; d < rank; d++) {
    if (outShape[d] === 1) continue;
    const spans = aligned.map((shape) => shape[d] !== 1);
    const last = patterns[patterns.length - 1];
    if (last && last.every((value, i) => value === spans[i])) {
      dims[dims.length - 1] *= outShape[d];
    } else {
      dims.push(outShape[d]);
      patterns.push(spans);
    }
  }
  return {
    outShape: dims,
    inputShapes: inputShapes.map((_, i) => dims.map((size, d) => (patterns[d][i] ? size : 1))),
  };
}

export interface ElementwiseKernelSpec {
  /** Readable label for errors and dumps (not part of the code or key). */
  label: string;
  program: ElementwiseProgram;
  /** The program's inputs, bound in this order as bindings 0..n-1 (node inputs `inputIndices[i]`). */
  inputs: TensorType[];
  inputIndices: number[];
  output: TensorType;
  device: DeviceCaps;
}

const WORKGROUP_SIZE = 64;
/**
 * Units per invocation on CPU adapters, where a loop amortises each invocation's fixed cost. Measured on
 * lavapipe (best of 4 × 9 runs, 2 busy cores): a flat Add of 802,815 floats 6.8 ms with 1 element per
 * invocation, 2.2 ms with 8; a per-channel bias Add on [1,64,111,111] 8.4 → 2.1 ms; a vec4 Mul by a
 * per-channel scale on [1,64,112,112] 1.6 ms with 1 vec4, 1.0 ms with 4. GPUs keep one unit per invocation.
 */
const CPU_SCALARS_PER_INVOCATION = 8;
const CPU_VEC4S_PER_INVOCATION = 4;

/** The flat index into an input spanning `spanned` dims of the unit shape, from the coordinates c<d>. */
function inputIndex(spanned: number[], dim: (d: number) => string): string {
  let index = '';
  for (const d of spanned) index = index ? `(${index}) * ${dim(d)} + c${d}` : `c${d}`;
  return index || '0u';
}

/**
 * Builds the kernel; returns null when the output is empty (nothing to dispatch). On CPU adapters the
 * shapes are read from a params buffer (see ShapeValues) whenever the adapter has a storage-buffer slot
 * left for it, so every node running the same program over the same broadcast pattern shares a pipeline.
 */
export function buildElementwiseKernel(spec: ElementwiseKernelSpec): KernelProgram | null {
  const total = elementCount(spec.output.shape);
  if (total === 0) return null;
  const coalesced = coalesceBroadcast(spec.inputs.map((t) => t.shape), spec.output.shape);
  const rank = coalesced.outShape.length;
  const inner = rank ? coalesced.outShape[rank - 1] : 1;
  const width = inner % 4 === 0 ? 4 : 1;
  const unitShape = rank ? [...coalesced.outShape.slice(0, -1), inner / width] : [];
  const units = total / width;
  const { device } = spec;
  const values = new ShapeValues(device.isCpu && spec.inputs.length + 2 <= device.limits.maxStorageBuffersPerShaderStage);
  const dim = (d: number) => values.value(unitShape[d], `dim${d}`);

  const inputTypes = spec.inputs.map((t) => wgslType(t.dtype));
  const outType = wgslType(spec.output.dtype);
  // a vector input spans the innermost dim; every other input is read once per invocation
  const vector = coalesced.inputShapes.map((shape) => width === 4 && shape[rank - 1] !== 1);
  const declarations: string[] = [];
  const loads: string[] = [];
  const invariantLoads: string[] = [];
  const spansAll = (shape: number[]) => shape.every((d, k) => d === coalesced.outShape[k]);
  const isScalar = (shape: number[]) => elementCount(shape) === 1;
  // only inputs that broadcast over some dims (but not all) need the output coordinates
  const needsCoordinates = coalesced.inputShapes.some((shape) => !isScalar(shape) && !spansAll(shape));
  spec.inputs.forEach((_, i) => {
    const type = vector[i] ? `vec4<${inputTypes[i]}>` : inputTypes[i];
    declarations.push(`@group(0) @binding(${i}) var<storage, read> input${i}: array<${type}>;`);
    const shape = coalesced.inputShapes[i];
    if (isScalar(shape)) {
      invariantLoads.push(`let v${i} = input${i}[0];`);
      return;
    }
    const spanned = shape.flatMap((size, d) => (size !== 1 ? [d] : []));
    loads.push(`let v${i} = input${i}[${spansAll(shape) ? 'unit' : inputIndex(spanned, dim)}];`);
  });
  const outputVector = width === 4 ? `vec4<${outType}>` : outType;
  declarations.push(`@group(0) @binding(${spec.inputs.length}) var<storage, read_write> output: array<${outputVector}>;`);

  const lanes = width === 4 ? ['x', 'y', 'z', 'w'] : [''];
  const laneResults: string[] = [];
  const laneStatements: string[] = [];
  lanes.forEach((lane, k) => {
    const rendered = renderElementwiseProgram(
      spec.program,
      inputTypes.map((type, i) => ({ expr: vector[i] ? `v${i}.${lane}` : `v${i}`, type })),
      `l${k}`,
    );
    laneStatements.push(rendered.statements);
    laneResults.push(rendered.result);
  });
  const store = width === 4 ? `output[unit] = vec4<${outType}>(${laneResults.join(', ')});` : `output[unit] = ${laneResults[0]};`;
  const perInvocation = device.isCpu ? (width === 4 ? CPU_VEC4S_PER_INVOCATION : CPU_SCALARS_PER_INVOCATION) : 1;
  const dispatch = linearDispatch(Math.ceil(units / perInvocation), WORKGROUP_SIZE, device.limits.maxComputeWorkgroupsPerDimension);
  const unitsValue = values.value(units, 'units');
  const invocation = dispatch.workgroups[1] > 1 ? `gid.x + gid.y * ${values.value(dispatch.workgroups[0] * WORKGROUP_SIZE, 'row_stride')}` : 'gid.x';
  const walk = walkCoordinates(needsCoordinates ? rank : 0, perInvocation === 1 ? 'unit' : 'first', dim);
  const unitBody = [...loads, ...laneStatements, store].flatMap((block) => block.split('\n')).map((line) => line.trim()).filter((line) => line !== '');
  const main = perInvocation === 1
    ? [`let unit = ${invocation};`, `if (unit >= ${unitsValue}) { return; }`, ...invariantLoads, ...(needsCoordinates ? walk.init : []), ...unitBody]
    : [
      // one division per dim for the first unit, a carry chain for the next; a lane-dependent trip count
      // keeps the loop a loop (lavapipe fully unrolls constant-count loops: each copy of a load or store
      // then costs ~10-50 ms of first-dispatch compile time)
      `let first = (${invocation}) * ${perInvocation}u;`,
      `if (first >= ${unitsValue}) { return; }`,
      `let end = min(first + ${perInvocation}u, ${unitsValue});`,
      ...invariantLoads,
      ...(needsCoordinates ? walk.init : []),
      'for (var unit = first; unit < end; unit++) {',
      ...[...unitBody, ...(needsCoordinates ? walk.advance : [])].map((line) => `  ${line}`),
      '}',
    ];
  const paramsDeclaration = values.declaration(spec.inputs.length + 1);
  const code = [
    ...declarations,
    ...(paramsDeclaration ? [paramsDeclaration] : []),
    elementwiseHelpers([spec.program]),
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>) {',
    ...[...values.loads(), ...main].map((line) => `  ${line}`),
    '}',
    '',
  ].filter((line) => line !== '').join('\n');
  const shapes = values.fromParams
    ? `in:${coalesced.inputShapes.map((shape, i) => `${inputTypes[i]}[${shape.map((size) => (size === 1 ? 1 : 'n'))}]${vector[i] ? 'v' : ''}`).join(';')}|out:${outType}w${width}`
    : `in:${coalesced.inputShapes.map((shape, i) => `${inputTypes[i]}[${shape}]${vector[i] ? 'v' : ''}`).join(';')}|out:${outType}[${coalesced.outShape}]w${width}|wg${dispatch.workgroups.join('x')}`;
  const paramsBinding = values.binding();
  return {
    label: spec.label,
    key: ['elementwise', `wg${WORKGROUP_SIZE}u${perInvocation}`, elementwiseProgramKey(spec.program), shapes, values.key()].join('|'),
    code,
    workgroups: dispatch.workgroups,
    bindings: [
      ...spec.inputIndices.map((index) => ({ kind: 'input' as const, index })),
      { kind: 'output', index: 0 },
      ...(paramsBinding ? [paramsBinding] : []),
    ],
  };
}
