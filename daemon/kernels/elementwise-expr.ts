/**
 * WGSL expressions for elementwise ONNX ops, and the renderer of ElementwiseProgram (fused chains and
 * producer epilogues). Every value is held as f32 (float dtypes), i32 (integer dtypes) or u32 0/1 (bool).
 */
import { shaderFragments } from './shader-library.ts';
import { EdgerunError } from '../errors.ts';
import { isFloatDType, type DType } from '../graph/ir.ts';
import type { ElementwiseArg, ElementwiseProgram } from './types.ts';

export type WgslScalar = 'f32' | 'i32' | 'u32';

export function wgslType(dtype: DType): WgslScalar {
  if (isFloatDType(dtype)) return 'f32';
  if (dtype === 'bool') return 'u32';
  return 'i32';
}

/**
 * A WGSL literal of the given scalar type. WGSL rejects NaN and infinities in constant expressions, so
 * non-finite floats are spelled as a call of the helper `er_f32_bits` (a user function call is evaluated at
 * run time): a module using them must include `elementwiseHelpers` of a program containing them, or
 * `F32_BITS_HELPER`.
 */
export function wgslLiteral(value: number, type: WgslScalar): string {
  if (type === 'u32') return `${value !== 0 ? 1 : 0}u`;
  if (type === 'i32') {
    const v = Math.max(-2147483648, Math.min(2147483647, Math.trunc(value)));
    return v === -2147483648 ? 'i32(-2147483647 - 1)' : `i32(${v})`;
  }
  if (Number.isNaN(value)) return 'er_f32_bits(0x7fc00000u)';
  if (value === Infinity) return 'er_f32_bits(0x7f800000u)';
  if (value === -Infinity) return 'er_f32_bits(0xff800000u)';
  if (Math.abs(value) > 3.4028234663852886e38) return value > 0 ? 'bitcast<f32>(0x7f7fffffu)' : 'bitcast<f32>(0xff7fffffu)';
  const text = Object.is(value, -0) ? '-0.0' : String(value);
  return `f32(${text.includes('.') || text.includes('e') ? text : `${text}.0`})`;
}

/** Reinterprets bits as f32 at run time (see wgslLiteral). */
export const F32_BITS_HELPER = 'fn er_f32_bits(bits: u32) -> f32 { return bitcast<f32>(bits); }';

/**
 * NaN test on the bits: lavapipe's LLVM (and other drivers' fast-math) may fold `x != x` to false.
 * Exported for kernels that must propagate NaN.
 */
export function isNanExpression(x: string): string {
  return `((bitcast<u32>(${x}) & 0x7fffffffu) > 0x7f800000u)`;
}

/** WGSL helper functions an expression may call (shaders/math/*.wgsl); emitted once per module by `elementwiseHelpers`. */
const HELPERS: Record<string, string> = { ...shaderFragments('math'), bits: F32_BITS_HELPER };

/** The helper functions a program needs, as WGSL source (emit once per module, outside any function). */
export function elementwiseHelpers(programs: (ElementwiseProgram | undefined)[]): string {
  const needed = new Set<string>();
  for (const program of programs) {
    if (!program) continue;
    for (const step of program.steps) {
      for (const helper of helpersFor(step.opType, step.attributes)) needed.add(helper);
      const numbers = [...Object.values(step.attributes), ...step.args.flatMap((arg) => ('literal' in arg ? [arg.literal] : []))];
      if (numbers.some((value) => !Number.isFinite(value))) needed.add('bits');
    }
  }
  return [...needed].sort().map((name) => HELPERS[name]).join('\n');
}

function helpersFor(opType: string, attributes: Record<string, number>): string[] {
  switch (opType) {
    case 'Erf': case 'Gelu': return ['erf', 'tanh'];
    case 'Tanh': return ['tanh'];
    case 'Mish': return ['tanh', 'softplus'];
    case 'Softplus': return ['softplus'];
    case 'Atan': return ['atan'];
    case 'Asin': case 'Acos': return ['asin', 'bits'];
    case 'Sigmoid': case 'Swish': case 'SiLU': return ['sigmoid'];
    case 'Pow': return ['pow', 'bits'];
    case 'Round': return ['round'];
    case 'Mod': return attributes.fmod ? ['fmod'] : ['imod', 'fmodpy'];
    default: return [];
  }
}

export const ELEMENTWISE_OPS: ReadonlySet<string> = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mod', 'PRelu',
  'Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Clip', 'Tanh', 'Erf', 'Gelu', 'Exp', 'Log',
  'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'Sign', 'Softplus', 'Elu',
  'Selu', 'Celu', 'Mish', 'Not', 'And', 'Or', 'Xor', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual',
  'Where', 'Cast', 'Identity', 'IsNaN', 'IsInf', 'ThresholdedRelu', 'Softsign',
  'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'Shrink',
  'BitwiseAnd', 'BitwiseOr', 'BitwiseXor', 'BitwiseNot',
]);

/**
 * The WGSL expression for one elementwise op applied to argument expressions of the given scalar types.
 * `outType` is the scalar type of the result.
 */
export function elementwiseExpression(
  opType: string,
  args: string[],
  argTypes: WgslScalar[],
  attributes: Record<string, number>,
  outType: WgslScalar,
): string {
  const [a, b, c] = args;
  const t = argTypes[0];
  const lit = (v: number) => wgslLiteral(v, t);
  switch (opType) {
    case 'Add': return `(${a} + ${b})`;
    case 'Sub': return `(${a} - ${b})`;
    case 'Mul': return `(${a} * ${b})`;
    case 'Div': return t === 'i32' ? `select(0, ${a} / ${b}, ${b} != 0)` : `(${a} / ${b})`;
    // integer Pow goes through the f32 helper so that negative bases with integral exponents stay defined
    case 'Pow': return t === 'f32' ? `er_pow(${a}, f32(${b}))` : `i32(round(er_pow(f32(${a}), f32(${b}))))`;
    case 'Max': return `max(${a}, ${b})`;
    case 'Min': return `min(${a}, ${b})`;
    case 'Mod':
      if (t === 'f32') return attributes.fmod ? `er_fmod(${a}, ${b})` : `er_fmodpy(${a}, ${b})`;
      return attributes.fmod ? `select(0, ${a} % ${b}, ${b} != 0)` : `select(0, er_imod(${a}, ${b}), ${b} != 0)`;
    case 'PRelu': return `select(${a} * ${b}, ${a}, ${a} >= ${lit(0)})`;
    case 'Relu': return `max(${a}, ${lit(0)})`;
    case 'LeakyRelu': return `select(${a} * ${lit(attributes.alpha ?? 0.01)}, ${a}, ${a} >= 0.0)`;
    case 'ThresholdedRelu': return `select(0.0, ${a}, ${a} > ${lit(attributes.alpha ?? 1)})`;
    case 'Sigmoid': return `er_sigmoid(${a})`;
    case 'Swish': case 'SiLU': return `(${a} * er_sigmoid(${a}))`;
    case 'HardSigmoid': return `clamp(${lit(attributes.alpha ?? 0.2)} * ${a} + ${lit(attributes.beta ?? 0.5)}, 0.0, 1.0)`;
    case 'HardSwish': return `(${a} * clamp(${a} * ${lit(1 / 6)} + 0.5, 0.0, 1.0))`;
    case 'Clip': {
      const lo = attributes.min ?? -Infinity;
      const hi = attributes.max ?? Infinity;
      let e = a;
      if (lo !== -Infinity) e = `max(${e}, ${lit(lo)})`;
      if (hi !== Infinity) e = `min(${e}, ${lit(hi)})`;
      // Clip propagates NaN like max/min do not guarantee: keep NaN explicitly for floats
      return t === 'f32' ? `select(${e}, ${a}, ${isNanExpression(a)})` : e;
    }
    case 'Tanh': return `er_tanh(${a})`;
    case 'Erf': return `er_erf(${a})`;
    case 'Gelu':
      return attributes.approximate
        ? `(0.5 * ${a} * (1.0 + er_tanh(0.7978845608028654 * (${a} + 0.044715 * ${a} * ${a} * ${a}))))`
        : `(0.5 * ${a} * (1.0 + er_erf(${a} * 0.7071067811865476)))`;
    case 'Exp': return `exp(${a})`;
    case 'Log': return `log(${a})`;
    case 'Sqrt': return `sqrt(${a})`;
    case 'Reciprocal': return `(1.0 / ${a})`;
    case 'Neg': return `(-${a})`;
    case 'Abs': return `abs(${a})`;
    case 'Floor': return `floor(${a})`;
    case 'Ceil': return `ceil(${a})`;
    case 'Round': return `er_round(${a})`;
    case 'Sin': return `sin(${a})`;
    case 'Cos': return `cos(${a})`;
    case 'Asin': case 'Acos': case 'Atan': return `er_${opType.toLowerCase()}(${a})`;
    case 'Tan': case 'Sinh': case 'Cosh': case 'Asinh': case 'Acosh': case 'Atanh': return `${opType.toLowerCase()}(${a})`;
    case 'Shrink': {
      const lambd = lit(attributes.lambd ?? 0.5);
      const bias = lit(attributes.bias ?? 0);
      return `select(select(${lit(0)}, ${a} - ${bias}, ${a} > ${lambd}), ${a} + ${bias}, ${a} < -${lambd})`;
    }
    case 'BitwiseAnd': return `(${a} & ${b})`;
    case 'BitwiseOr': return `(${a} | ${b})`;
    case 'BitwiseXor': return `(${a} ^ ${b})`;
    case 'BitwiseNot': return `(~${a})`;
    case 'Sign': return `sign(${a})`;
    case 'Softplus': return `er_softplus(${a})`;
    case 'Softsign': return `(${a} / (1.0 + abs(${a})))`;
    case 'Elu': return `select(${lit(attributes.alpha ?? 1)} * (exp(${a}) - 1.0), ${a}, ${a} >= 0.0)`;
    case 'Celu': {
      const alpha = lit(attributes.alpha ?? 1);
      return `(max(0.0, ${a}) + min(0.0, ${alpha} * (exp(${a} / ${alpha}) - 1.0)))`;
    }
    case 'Selu': {
      const alpha = lit(attributes.alpha ?? 1.67326319217681884765625);
      const gamma = lit(attributes.gamma ?? 1.05070102214813232421875);
      return `(${gamma} * select(${alpha} * (exp(${a}) - 1.0), ${a}, ${a} > 0.0))`;
    }
    case 'Mish': return `(${a} * er_tanh(er_softplus(${a})))`;
    case 'Not': return `(1u - ${a})`;
    case 'And': return `(${a} & ${b})`;
    case 'Or': return `(${a} | ${b})`;
    case 'Xor': return `(${a} ^ ${b})`;
    case 'Equal': return `u32(${a} == ${b})`;
    case 'Less': return `u32(${a} < ${b})`;
    case 'Greater': return `u32(${a} > ${b})`;
    case 'LessOrEqual': return `u32(${a} <= ${b})`;
    case 'GreaterOrEqual': return `u32(${a} >= ${b})`;
    case 'Where': return `select(${c}, ${b}, ${a} != 0u)`;
    case 'IsNaN': return `u32${isNanExpression(a)}`;
    case 'IsInf': {
      const pos = attributes.detect_positive ?? 1;
      const neg = attributes.detect_negative ?? 1;
      const parts: string[] = [];
      if (pos) parts.push(`bitcast<u32>(${a}) == 0x7f800000u`);
      if (neg) parts.push(`bitcast<u32>(${a}) == 0xff800000u`);
      return parts.length ? `u32(${parts.join(' || ')})` : '0u';
    }
    case 'Identity': return a;
    case 'Cast': return narrowInteger(castExpression(a, t, outType), attributes.to);
    default:
      throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `no WGSL expression for elementwise op '${opType}'`, { opType });
  }
}

export function castExpression(value: string, from: WgslScalar, to: WgslScalar): string {
  if (from === to) return value;
  if (to === 'u32') return `u32(${value} != ${from === 'f32' ? '0.0' : from === 'i32' ? '0' : '0u'})`;
  if (to === 'i32' && from === 'f32') {
    // WGSL's i32(f32) is implementation-defined out of range: clamp first; NaN becomes 0
    return `select(i32(clamp(${value}, -2147483648.0, 2147483520.0)), 0, ${isNanExpression(value)})`;
  }
  return `${to}(${value})`;
}

/**
 * ONNX TensorProto.DataType numbers of the integer types narrower than their i32 storage: a Cast to them
 * wraps like C's static_cast (e.g. 300 → uint8 44), so the stored i32 must be wrapped too.
 */
const NARROW_INTEGER_BITS: Record<number, { bits: number; signed: boolean }> = {
  2: { bits: 8, signed: false }, 3: { bits: 8, signed: true }, 4: { bits: 16, signed: false }, 5: { bits: 16, signed: true },
};

function narrowInteger(value: string, to: number | undefined): string {
  const narrow = to === undefined ? undefined : NARROW_INTEGER_BITS[to];
  if (!narrow) return value;
  if (!narrow.signed) return `(${value} & ${(1 << narrow.bits) - 1})`;
  const shift = 32 - narrow.bits;
  return `((${value} << ${shift}u) >> ${shift}u)`;
}

/**
 * Render a program as WGSL statements. `inputs[i]` is the expression (and type) of program input i.
 * Returns statements defining `${prefix}_s<j>` for every step and the name of the result variable.
 */
export function renderElementwiseProgram(
  program: ElementwiseProgram,
  inputs: { expr: string; type: WgslScalar }[],
  prefix: string,
): { statements: string; result: string; type: WgslScalar } {
  const lines: string[] = [];
  const stepTypes: WgslScalar[] = [];
  const resolve = (arg: ElementwiseArg, expected: WgslScalar): { expr: string; type: WgslScalar } => {
    if ('input' in arg) {
      const input = inputs[arg.input];
      if (!input) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `elementwise program refers to missing input ${arg.input}`);
      return input;
    }
    if ('step' in arg) return { expr: `${prefix}_s${arg.step}`, type: stepTypes[arg.step] };
    return { expr: wgslLiteral(arg.literal, expected), type: expected };
  };
  program.steps.forEach((step, index) => {
    const outType = wgslType(step.dtype);
    // literals take the type of the first non-literal argument (or the output type)
    const firstTyped = step.args.find((arg) => !('literal' in arg));
    const argType = firstTyped ? resolve(firstTyped, outType).type : outType;
    const resolved = step.args.map((arg, position) => {
      const expected = step.opType === 'Where' && position === 0 ? 'u32' : argType;
      return resolve(arg, step.opType === 'Where' && position > 0 && 'literal' in arg ? outType : expected);
    });
    const expr = elementwiseExpression(step.opType, resolved.map((r) => r.expr), resolved.map((r) => step.opType === 'Where' ? r.type : r.type), step.attributes, outType);
    stepTypes.push(outType);
    lines.push(`let ${prefix}_s${index}: ${outType} = ${expr};`);
  });
  return { statements: lines.join('\n'), result: `${prefix}_s${program.result}`, type: stepTypes[program.result] };
}

/** Apply an optional epilogue to a producer's f32 value. */
export function renderEpilogue(
  epilogue: ElementwiseProgram | undefined,
  value: string,
  prefix = 'ep',
): { statements: string; result: string } {
  if (!epilogue) return { statements: '', result: value };
  const rendered = renderElementwiseProgram(epilogue, [{ expr: value, type: 'f32' }], prefix);
  return { statements: rendered.statements, result: rendered.result };
}

/** A stable text form of a program, for specialisation keys. */
export function elementwiseProgramKey(program: ElementwiseProgram | undefined): string {
  if (!program) return '';
  return program.steps.map((s) => `${s.opType}(${s.args.map((a) => ('input' in a ? `i${a.input}` : 'step' in a ? `s${a.step}` : `${a.literal}`)).join(',')};${Object.entries(s.attributes).sort().map(([k, v]) => `${k}=${v}`).join(',')})->${s.dtype}`).join('|') + `=>${program.result}`;
}
