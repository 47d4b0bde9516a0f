/**
 * CPU semantics of every elementwise op, one scalar at a time: the constant folder evaluates nodes and fused
 * programs with these, so they follow ONNX (and onnxruntime) exactly where the GPU expression in
 * elementwise-expr.ts is only required to be close. Values are JavaScript numbers holding an f32 (already
 * rounded), an i32, or a bool as 0/1, matching the GPU storage types.
 */
import { EdgerunError } from '../errors.ts';
import type { WgslScalar } from './elementwise-expr.ts';

export type ScalarFunction = (a: number, b: number, c: number) => number;

const f32 = Math.fround;
const INT32_MAX_AS_F32 = 2147483520;

/** C fmod: the remainder takes the dividend's sign (JavaScript's % on numbers is exactly that). */
function cFmod(a: number, b: number): number {
  return a % b;
}

/** Python/NumPy modulo: the remainder takes the divisor's sign (ONNX Mod with fmod=0). */
function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

/** Round half to even (ONNX Round). */
function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** erf to double precision: Taylor series near 0, continued fraction for erfc in the tails. */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  if (a < 2.5) {
    let term = a;
    let sum = a;
    const a2 = a * a;
    for (let n = 1; n < 80; n++) {
      term *= -a2 / n;
      const contribution = term / (2 * n + 1);
      sum += contribution;
      if (Math.abs(contribution) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * sum * 1.1283791670955126;
  }
  if (a > 6) return Math.sign(x);
  let fraction = a;
  for (let n = 60; n >= 1; n--) fraction = a + (n / 2) / fraction;
  const erfc = Math.exp(-a * a) / (1.7724538509055159 * fraction);
  return Math.sign(x) * (1 - erfc);
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

/** C pow: like Math.pow except that pow(1, y) and pow(x, 0) are 1 for every y / x, NaN included. */
function cPow(a: number, b: number): number {
  if (a === 1 || b === 0) return 1;
  return Math.pow(a, b);
}

/** Wraps an i32 to the ONNX integer type it is cast to (TensorProto numbers: 2 uint8, 3 int8, 4 uint16, 5 int16). */
function narrow(value: number, to: number | undefined): number {
  switch (to) {
    case 2: return value & 0xff;
    case 3: return (value << 24) >> 24;
    case 4: return value & 0xffff;
    case 5: return (value << 16) >> 16;
    default: return value;
  }
}

function castFunction(from: WgslScalar, to: WgslScalar, onnxTo: number | undefined): ScalarFunction {
  if (to === 'u32') return (a) => (a !== 0 ? 1 : 0);
  if (to === 'f32') return (a) => f32(a);
  if (from === 'f32') {
    return (a) => {
      if (Number.isNaN(a)) return 0;
      return narrow(Math.trunc(Math.max(-2147483648, Math.min(INT32_MAX_AS_F32, a))), onnxTo);
    };
  }
  return (a) => narrow(a | 0, onnxTo);
}

/**
 * The CPU function of one elementwise op. `argType` is the storage type of the (non-condition) arguments,
 * `outType` that of the result; the result is already rounded/wrapped to `outType`.
 */
export function scalarFunction(
  opType: string,
  attributes: Record<string, number>,
  argType: WgslScalar,
  outType: WgslScalar,
): ScalarFunction {
  const int = argType !== 'f32';
  // float attributes are f32 in ONNX (and f32 literals on the GPU): round them so products round once, as there
  const attr = (name: string, fallback: number) => f32(attributes[name] ?? fallback);
  switch (opType) {
    case 'Add': return int ? (a, b) => (a + b) | 0 : (a, b) => f32(a + b);
    case 'Sub': return int ? (a, b) => (a - b) | 0 : (a, b) => f32(a - b);
    case 'Mul': return int ? (a, b) => Math.imul(a, b) : (a, b) => f32(a * b);
    case 'Div': return int ? (a, b) => (b === 0 ? 0 : Math.trunc(a / b) | 0) : (a, b) => f32(a / b);
    case 'Pow': return int ? (a, b) => Math.round(cPow(a, b)) | 0 : (a, b) => f32(cPow(a, b));
    case 'Max': return (a, b) => Math.max(a, b);
    case 'Min': return (a, b) => Math.min(a, b);
    case 'Mod': {
      const fmod = (attributes.fmod ?? 0) !== 0;
      if (int) return fmod ? (a, b) => (b === 0 ? 0 : cFmod(a, b) | 0) : (a, b) => (b === 0 ? 0 : floorMod(a, b) | 0);
      return fmod ? (a, b) => f32(cFmod(a, b)) : (a, b) => f32(floorMod(a, b));
    }
    case 'PRelu': return int ? (a, b) => (a >= 0 ? a : Math.imul(a, b)) : (a, b) => (a >= 0 ? a : f32(a * b));
    case 'Relu': return (a) => (a > 0 ? a : Number.isNaN(a) ? a : 0);
    case 'LeakyRelu': { const alpha = attr('alpha', 0.01); return (a) => (a >= 0 ? a : f32(a * alpha)); }
    case 'ThresholdedRelu': { const alpha = attr('alpha', 1); return (a) => (a > alpha ? a : 0); }
    case 'Sigmoid': return (a) => f32(sigmoid(a));
    case 'Swish': case 'SiLU': return (a) => f32(a * sigmoid(a));
    case 'HardSigmoid': {
      const alpha = attr('alpha', 0.2);
      const beta = attr('beta', 0.5);
      return (a) => f32(Math.max(0, Math.min(1, alpha * a + beta)));
    }
    case 'HardSwish': return (a) => f32(a * Math.max(0, Math.min(1, a / 6 + 0.5)));
    case 'Clip': {
      const lo = attributes.min ?? -Infinity;
      const hi = attributes.max ?? Infinity;
      return (a) => (Number.isNaN(a) ? a : Math.min(Math.max(a, lo), hi));
    }
    case 'Tanh': return (a) => f32(Math.tanh(a));
    case 'Erf': return (a) => f32(erf(a));
    case 'Gelu':
      return attributes.approximate
        ? (a) => f32(0.5 * a * (1 + Math.tanh(0.7978845608028654 * (a + 0.044715 * a * a * a))))
        : (a) => f32(0.5 * a * (1 + erf(a * Math.SQRT1_2)));
    case 'Exp': return (a) => f32(Math.exp(a));
    case 'Log': return (a) => f32(Math.log(a));
    case 'Sqrt': return (a) => f32(Math.sqrt(a));
    case 'Reciprocal': return (a) => f32(1 / a);
    case 'Neg': return int ? (a) => (-a) | 0 : (a) => -a;
    case 'Abs': return int ? (a) => Math.abs(a) | 0 : (a) => Math.abs(a);
    case 'Floor': return (a) => Math.floor(a);
    case 'Ceil': return (a) => Math.ceil(a);
    case 'Round': return (a) => roundHalfEven(a);
    case 'Sin': return (a) => f32(Math.sin(a));
    case 'Cos': return (a) => f32(Math.cos(a));
    case 'Tan': return (a) => f32(Math.tan(a));
    case 'Asin': return (a) => f32(Math.asin(a));
    case 'Acos': return (a) => f32(Math.acos(a));
    case 'Atan': return (a) => f32(Math.atan(a));
    case 'Sinh': return (a) => f32(Math.sinh(a));
    case 'Cosh': return (a) => f32(Math.cosh(a));
    case 'Asinh': return (a) => f32(Math.asinh(a));
    case 'Acosh': return (a) => f32(Math.acosh(a));
    case 'Atanh': return (a) => f32(Math.atanh(a));
    case 'Shrink': {
      const lambd = attr('lambd', 0.5);
      const bias = attr('bias', 0);
      const sub = int ? (a: number) => (a - bias) | 0 : (a: number) => f32(a - bias);
      const add = int ? (a: number) => (a + bias) | 0 : (a: number) => f32(a + bias);
      return (a) => (a < -lambd ? add(a) : a > lambd ? sub(a) : 0);
    }
    case 'BitwiseAnd': return (a, b) => a & b;
    case 'BitwiseOr': return (a, b) => a | b;
    case 'BitwiseXor': return (a, b) => a ^ b;
    case 'BitwiseNot': return (a) => ~a;
    case 'Sign': return (a) => (Number.isNaN(a) ? a : Math.sign(a) + 0);
    case 'Softplus': return (a) => f32(softplus(a));
    case 'Softsign': return (a) => f32(a / (1 + Math.abs(a)));
    case 'Elu': { const alpha = attr('alpha', 1); return (a) => (a >= 0 ? a : f32(alpha * Math.expm1(a))); }
    case 'Celu': {
      const alpha = attr('alpha', 1);
      return (a) => f32(Math.max(0, a) + Math.min(0, alpha * Math.expm1(a / alpha)));
    }
    case 'Selu': {
      const alpha = attr('alpha', 1.67326319217681884765625);
      const gamma = attr('gamma', 1.05070102214813232421875);
      return (a) => f32(gamma * (a > 0 ? a : alpha * Math.expm1(a)));
    }
    case 'Mish': return (a) => f32(a * Math.tanh(softplus(a)));
    case 'Not': return (a) => 1 - a;
    case 'And': return (a, b) => a & b;
    case 'Or': return (a, b) => a | b;
    case 'Xor': return (a, b) => a ^ b;
    case 'Equal': return (a, b) => (a === b ? 1 : 0);
    case 'Less': return (a, b) => (a < b ? 1 : 0);
    case 'Greater': return (a, b) => (a > b ? 1 : 0);
    case 'LessOrEqual': return (a, b) => (a <= b ? 1 : 0);
    case 'GreaterOrEqual': return (a, b) => (a >= b ? 1 : 0);
    case 'Where': return (a, b, c) => (a !== 0 ? b : c);
    case 'IsNaN': return (a) => (Number.isNaN(a) ? 1 : 0);
    case 'IsInf': {
      const positive = (attributes.detect_positive ?? 1) !== 0;
      const negative = (attributes.detect_negative ?? 1) !== 0;
      return (a) => ((positive && a === Infinity) || (negative && a === -Infinity) ? 1 : 0);
    }
    case 'Identity': return (a) => a;
    case 'Cast': return castFunction(argType, outType, attributes.to);
    default:
      throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `no CPU evaluation for elementwise op '${opType}'`, { opType });
  }
}

/** A literal argument converted to the storage type it is used as. */
export function scalarLiteral(value: number, type: WgslScalar): number {
  if (type === 'u32') return value !== 0 ? 1 : 0;
  if (type === 'i32') return Number.isNaN(value) ? 0 : Math.trunc(Math.max(-2147483648, Math.min(2147483647, value)));
  return f32(value);
}
