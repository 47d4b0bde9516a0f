/**
 * ElementwiseProgram as data: its text form (carried by edgerun.FusedElementwise nodes), validation, and
 * CPU evaluation over broadcast inputs (constant folding of single elementwise nodes and fused chains).
 */
import { EdgerunError } from '../errors.ts';
import { elementCount, isFloatDType, type DType, type Tensor } from '../graph/ir.ts';
import { ELEMENTWISE_OPS, wgslType, type WgslScalar } from './elementwise-expr.ts';
import { scalarFunction, scalarLiteral, type ScalarFunction } from './elementwise-scalar.ts';
import { broadcastShapes, stridesOf } from './shader-util.ts';
import type { ElementwiseArg, ElementwiseProgram } from './types.ts';

const NON_FINITE: Record<string, number> = { Infinity, '-Infinity': -Infinity, NaN };

/**
 * JSON text of a program. JSON has no Infinity or NaN (masks use -Infinity literals), so non-finite numbers
 * are written as the strings "Infinity", "-Infinity" and "NaN" and restored by `parseElementwiseProgram`.
 */
export function serializeElementwiseProgram(program: ElementwiseProgram): string {
  return JSON.stringify(program, (_key, value: unknown) =>
    (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value));
}

/** Program steps whose opType has no elementwise implementation beyond the ONNX ones. */
const EXTRA_STEP_OPS: ReadonlySet<string> = new Set(['Swish', 'SiLU']);

const VALID_DTYPES: ReadonlySet<string> = new Set([
  'float32', 'float16', 'float64', 'bfloat16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool',
]);

/** Parses and validates a program's text form; `where` names the node for errors. */
export function parseElementwiseProgram(text: string, inputCount: number, where: string): ElementwiseProgram {
  let program: ElementwiseProgram;
  try {
    program = JSON.parse(text, (_key, value: unknown) => (typeof value === 'string' && value in NON_FINITE ? NON_FINITE[value] : value)) as ElementwiseProgram;
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${where}: attribute 'program' is not valid JSON`, { node: where }, { cause: error });
  }
  validateElementwiseProgram(program, inputCount, where);
  return program;
}

export function validateElementwiseProgram(program: ElementwiseProgram, inputCount: number, where: string): void {
  const fail = (message: string): never => {
    throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${where}: elementwise program ${message}`, { node: where });
  };
  if (!program || !Array.isArray(program.steps) || program.steps.length === 0) fail('has no steps');
  program.steps.forEach((step, index) => {
    if (!step || typeof step.opType !== 'string') fail(`step ${index} has no opType`);
    if (!ELEMENTWISE_OPS.has(step.opType) && !EXTRA_STEP_OPS.has(step.opType)) fail(`step ${index} uses unknown op '${step.opType}'`);
    if (!VALID_DTYPES.has(step.dtype)) fail(`step ${index} has unknown dtype '${String(step.dtype)}'`);
    if (!Array.isArray(step.args) || step.args.length === 0 || step.args.length > 3) fail(`step ${index} has ${step.args?.length ?? 0} arguments`);
    for (const arg of step.args) {
      const ok = ('input' in arg && Number.isInteger(arg.input) && arg.input >= 0 && arg.input < inputCount)
        || ('step' in arg && Number.isInteger(arg.step) && arg.step >= 0 && arg.step < index)
        || ('literal' in arg && typeof arg.literal === 'number');
      if (!ok) fail(`step ${index} has an invalid argument ${JSON.stringify(arg)}`);
    }
    if (typeof step.attributes !== 'object' || step.attributes === null) fail(`step ${index} has no attributes object`);
    for (const [name, value] of Object.entries(step.attributes)) {
      if (typeof value !== 'number') fail(`step ${index} attribute '${name}' is not a number`);
    }
  });
  if (!Number.isInteger(program.result) || program.result < 0 || program.result >= program.steps.length) fail(`result ${program.result} is not a step`);
}

/**
 * The storage type of each step's result and of its (non-condition) arguments, resolved as the WGSL
 * renderer does: literals take the type of the first non-literal argument.
 */
export function programTypes(program: ElementwiseProgram, inputTypes: WgslScalar[]): { out: WgslScalar; arg: WgslScalar }[] {
  const types: { out: WgslScalar; arg: WgslScalar }[] = [];
  const typeOf = (arg: ElementwiseArg): WgslScalar | undefined =>
    ('input' in arg ? inputTypes[arg.input] : 'step' in arg ? types[arg.step].out : undefined);
  for (const step of program.steps) {
    const out = wgslType(step.dtype);
    // Where's condition is bool: its value arguments decide the type
    const valueArgs = step.opType === 'Where' ? step.args.slice(1) : step.args;
    const first = valueArgs.map(typeOf).find((t) => t !== undefined);
    types.push({ out, arg: first ?? out });
  }
  return types;
}

/** For each output element, the flat index into an input broadcast to `outShape` (null when it is the identity). */
function broadcastOffsets(inShape: readonly number[], outShape: readonly number[]): Int32Array | null {
  const total = elementCount(outShape);
  if (elementCount(inShape) === total) return null;
  const offsets = new Int32Array(total);
  if (elementCount(inShape) === 1) return offsets;
  const rank = outShape.length;
  const inStrides = stridesOf(inShape);
  const strides = outShape.map((_, d) => {
    const inDim = d - (rank - inShape.length);
    return inDim >= 0 && inShape[inDim] !== 1 ? inStrides[inDim] : 0;
  });
  const coord = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let i = 0; i < total; i++) {
    offsets[i] = offset;
    for (let d = rank - 1; d >= 0; d--) {
      coord[d]++;
      offset += strides[d];
      if (coord[d] < outShape[d]) break;
      offset -= strides[d] * coord[d];
      coord[d] = 0;
    }
  }
  return offsets;
}

export function allocateHost(dtype: DType, count: number): Float32Array | Int32Array {
  return isFloatDType(dtype) ? new Float32Array(count) : new Int32Array(count);
}

/**
 * Evaluates a program on the CPU. Inputs broadcast (NumPy rules) to their common shape; `where` names the node.
 */
export function evaluateElementwiseProgram(program: ElementwiseProgram, inputs: Tensor[], where: string): Tensor {
  const outShape = broadcastShapes(...inputs.map((t) => t.dims));
  if (!outShape) {
    throw new EdgerunError('EDGERUN_ERR_SHAPE', `${where}: input shapes ${inputs.map((t) => `[${t.dims}]`).join(', ')} do not broadcast`, { node: where });
  }
  const types = programTypes(program, inputs.map((t) => wgslType(t.dtype)));
  type Operand = { kind: 'input'; data: ArrayLike<number>; offsets: Int32Array | null } | { kind: 'step'; index: number } | { kind: 'literal'; value: number };
  const compiled = program.steps.map((step, index) => {
    const fn: ScalarFunction = scalarFunction(step.opType, step.attributes, types[index].arg, types[index].out);
    const operands: Operand[] = step.args.map((arg, position) => {
      if ('input' in arg) return { kind: 'input', data: inputs[arg.input].data, offsets: broadcastOffsets(inputs[arg.input].dims, outShape) };
      if ('step' in arg) return { kind: 'step', index: arg.step };
      const literalType = step.opType === 'Where' && position === 0 ? 'u32' : types[index].arg;
      return { kind: 'literal', value: scalarLiteral(arg.literal, literalType) };
    });
    return { fn, operands };
  });
  const resultDtype = program.steps[program.result].dtype;
  const total = elementCount(outShape);
  const out = allocateHost(resultDtype, total);
  const values = new Float64Array(program.steps.length);
  const read = (operand: Operand, i: number): number => {
    if (operand.kind === 'input') return operand.data[operand.offsets ? operand.offsets[i] : i];
    if (operand.kind === 'step') return values[operand.index];
    return operand.value;
  };
  for (let i = 0; i < total; i++) {
    for (let s = 0; s < compiled.length; s++) {
      const { fn, operands } = compiled[s];
      values[s] = fn(read(operands[0], i), operands.length > 1 ? read(operands[1], i) : 0, operands.length > 2 ? read(operands[2], i) : 0);
    }
    out[i] = values[program.result];
  }
  return { dtype: resultDtype, dims: outShape, data: out };
}
