/**
 * Every ONNX elementwise op, the variadic Sum/Mean/Max/Min, and edgerun.FusedElementwise. Each node becomes
 * an ElementwiseProgram (one step, or a chain for variadic ops and Clip with tensor bounds) that the CPU
 * folder (elementwise-program.ts) and the GPU kernel (elementwise-kernel.ts) both evaluate.
 */
import { Attributes } from '../graph/attributes.ts';
import { isFloatDType, type DType, type Node, type Tensor, type TensorType } from '../graph/ir.ts';
import { dtypeFromOnnx, nodeError, onnxDTypeCode, requireDType, requireSameDType, type DTypeClass } from './elementwise-dtypes.ts';
import { ELEMENTWISE_OPS } from './elementwise-expr.ts';
import { buildElementwiseKernel } from './elementwise-kernel.ts';
import { evaluateElementwiseProgram, parseElementwiseProgram, serializeElementwiseProgram } from './elementwise-program.ts';
import { broadcastShapes } from './shader-util.ts';
import type { BuildContext, ElementwiseArg, ElementwiseProgram, ElementwiseStep, KernelProgram, OpContext, OpDefinition } from './types.ts';

/** The program of one node and which node inputs it reads (program input i is node input tensorInputs[i]). */
interface NodeProgram {
  program: ElementwiseProgram;
  tensorInputs: number[];
}

interface ElementwiseSpec {
  opType: string;
  /** Tensor inputs: exact count, or a range for variadic ops. */
  inputs: { min: number; max: number };
  /** Allowed dtypes of the inputs that must share one dtype. */
  accepts: DTypeClass;
  /** 'same' (the inputs' dtype), 'bool', or resolved from the node (Cast). */
  output: 'same' | 'bool' | ((ctx: OpContext) => DType);
  attributes?: (a: Attributes, ctx: OpContext) => Record<string, number>;
  /** Custom program (variadic ops, Clip); default: one step over all inputs. */
  program?: (ctx: OpContext, attributes: Record<string, number>, dtype: DType) => NodeProgram;
  /** Fusion inlines only single-step nodes of this arity. */
  fusable?: boolean;
  /** Extra validation after the generic checks. */
  check?: (ctx: OpContext, attributes: Record<string, number>) => void;
  /** Unidirectional broadcast of input 1 to input 0 (PRelu). */
  unidirectional?: boolean;
}

function present(ctx: OpContext): number[] {
  return ctx.inputs.flatMap((t, i) => (t ? [i] : []));
}

function stepOver(opType: string, args: ElementwiseArg[], attributes: Record<string, number>, dtype: DType): ElementwiseStep {
  return { opType, args, attributes, dtype };
}

/** Folds n inputs with a binary op: ((i0 op i1) op i2) …; one input is an Identity. */
function chainProgram(opType: string, count: number, dtype: DType, tail?: ElementwiseStep): ElementwiseProgram {
  const steps: ElementwiseStep[] = [];
  if (count === 1) steps.push(stepOver('Identity', [{ input: 0 }], {}, dtype));
  for (let i = 1; i < count; i++) {
    steps.push(stepOver(opType, [i === 1 ? { input: 0 } : { step: steps.length - 1 }, { input: i }], {}, dtype));
  }
  if (tail) steps.push(tail);
  return { steps, result: steps.length - 1 };
}

function variadic(opType: string, binary: string, accepts: DTypeClass, mean = false): ElementwiseSpec {
  return {
    opType,
    inputs: { min: 1, max: Infinity },
    accepts,
    output: 'same',
    fusable: opType === binary,
    program: (ctx, _attributes, dtype) => {
      const tensorInputs = present(ctx);
      const count = tensorInputs.length;
      const tail = mean && count > 1 ? stepOver('Div', [{ step: count - 2 }, { literal: count }], {}, dtype) : undefined;
      return { program: chainProgram(binary, count, dtype, tail), tensorInputs };
    },
  };
}

const alpha = (fallback: number) => (a: Attributes) => ({ alpha: a.float('alpha', fallback) });

/** Clip's bounds: attributes before opset 11, optional inputs after (constant ones become attributes). */
function clipBounds(ctx: OpContext): { attributes: Record<string, number>; tensorBounds: number[] } {
  const attributes: Record<string, number> = {};
  const tensorBounds: number[] = [];
  if (ctx.opset < 11) {
    const a = new Attributes(ctx.node);
    if (a.has('min')) attributes.min = a.float('min');
    if (a.has('max')) attributes.max = a.float('max');
    return { attributes, tensorBounds };
  }
  (['min', 'max'] as const).forEach((name, k) => {
    const index = k + 1;
    if (!ctx.inputs[index]) return;
    const constant = ctx.constants[index];
    if (constant) {
      if (constant.data.length !== 1) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `'${name}' must be a scalar, got [${constant.dims}]`);
      attributes[name] = constant.data[0];
    } else {
      tensorBounds.push(index);
    }
  });
  return { attributes, tensorBounds };
}

const clipSpec: ElementwiseSpec = {
  opType: 'Clip',
  inputs: { min: 1, max: 3 },
  accepts: 'numeric',
  output: 'same',
  fusable: true,
  attributes: (_a, ctx) => clipBounds(ctx).attributes,
  program: (ctx, attributes, dtype) => {
    const { tensorBounds } = clipBounds(ctx);
    if (!tensorBounds.length) return { program: { steps: [stepOver('Clip', [{ input: 0 }], attributes, dtype)], result: 0 }, tensorInputs: [0] };
    // bounds known only at run time: max(x, min) then min(…, max); a constant bound is still inlined
    const steps: ElementwiseStep[] = Object.keys(attributes).length ? [stepOver('Clip', [{ input: 0 }], attributes, dtype)] : [];
    tensorBounds.forEach((index, k) => {
      const previous: ElementwiseArg = steps.length ? { step: steps.length - 1 } : { input: 0 };
      steps.push(stepOver(index === 1 ? 'Max' : 'Min', [previous, { input: k + 1 }], {}, dtype));
    });
    return { program: { steps, result: steps.length - 1 }, tensorInputs: [0, ...tensorBounds] };
  },
  check: (ctx) => {
    for (const index of [1, 2]) {
      const bound = ctx.inputs[index];
      if (bound && bound.shape.length !== 0 && !(bound.shape.length === 1 && bound.shape[0] === 1)) {
        throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input ${index} ('${ctx.node.inputs[index]}') must be a scalar, got [${bound.shape}]`);
      }
    }
  },
};

const unary = (opType: string, accepts: DTypeClass, attributes?: ElementwiseSpec['attributes']): ElementwiseSpec =>
  ({ opType, inputs: { min: 1, max: 1 }, accepts, output: 'same', fusable: true, ...(attributes ? { attributes } : {}) });
const binary = (opType: string, accepts: DTypeClass, output: 'same' | 'bool' = 'same'): ElementwiseSpec =>
  ({ opType, inputs: { min: 2, max: 2 }, accepts, output, fusable: true });

const SPECS: ElementwiseSpec[] = [
  binary('Add', 'numeric'), binary('Sub', 'numeric'), binary('Mul', 'numeric'), binary('Div', 'numeric'),
  {
    ...binary('Mod', 'numeric'),
    attributes: (a) => ({ fmod: a.int('fmod', 0) }),
    check: (ctx, attributes) => {
      if (!attributes.fmod && ctx.inputs[0] && isFloatDType(ctx.inputs[0].dtype)) {
        throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, 'Mod on floating-point inputs requires fmod=1');
      }
    },
  },
  { ...binary('PRelu', 'numeric'), unidirectional: true },
  unary('Relu', 'numeric'), unary('LeakyRelu', 'float', alpha(0.01)), unary('ThresholdedRelu', 'float', alpha(1)),
  unary('Sigmoid', 'float'), unary('HardSwish', 'float'),
  unary('HardSigmoid', 'float', (a) => ({ alpha: a.float('alpha', 0.2), beta: a.float('beta', 0.5) })),
  clipSpec,
  unary('Tanh', 'float'), unary('Erf', 'float'),
  unary('Gelu', 'float', (a, ctx) => {
    const approximate = a.string('approximate', 'none');
    if (approximate !== 'none' && approximate !== 'tanh') throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `unknown approximate='${approximate}'`);
    return { approximate: approximate === 'tanh' ? 1 : 0 };
  }),
  ...['Exp', 'Log', 'Sqrt', 'Reciprocal', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos', 'Softplus', 'Softsign'].map((op) => unary(op, 'float')),
  ...['Neg', 'Abs', 'Sign'].map((op) => unary(op, 'numeric')),
  unary('Elu', 'float', alpha(1)), unary('Celu', 'float', alpha(1)),
  unary('Selu', 'float', (a) => ({ alpha: a.float('alpha', 1.67326319217681884765625), gamma: a.float('gamma', 1.05070102214813232421875) })),
  unary('Mish', 'float'),
  unary('Not', 'bool'),
  binary('And', 'bool', 'bool'), binary('Or', 'bool', 'bool'), binary('Xor', 'bool', 'bool'),
  binary('Equal', 'any', 'bool'),
  ...['Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'].map((op) => binary(op, 'numeric', 'bool')),
  { ...unary('IsNaN', 'float'), output: 'bool' },
  {
    ...unary('IsInf', 'float', (a) => ({ detect_positive: a.int('detect_positive', 1), detect_negative: a.int('detect_negative', 1) })),
    output: 'bool',
  },
  {
    ...unary('Cast', 'any', (a) => ({ to: a.int('to') })),
    output: (ctx) => dtypeFromOnnx(new Attributes(ctx.node).int('to'), ctx.node, 'to'),
  },
  ...['Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh'].map((op) => unary(op, 'float')),
  unary('Shrink', 'numeric', (a) => ({ lambd: a.float('lambd', 0.5), bias: a.float('bias', 0) })),
  binary('BitwiseAnd', 'integer'), binary('BitwiseOr', 'integer'), binary('BitwiseXor', 'integer'),
  {
    ...unary('BitwiseNot', 'integer'),
    // i32 storage holds unsigned narrow types zero-extended, where ~ would set the high bits
    check: (ctx) => {
      const dtype = ctx.inputs[0]?.dtype;
      if (dtype === 'uint8' || dtype === 'uint16') throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node, `BitwiseNot on ${dtype} is not supported`);
    },
  },
  castLikeSpec(),
  variadic('Max', 'Max', 'numeric'), variadic('Min', 'Min', 'numeric'),
  variadic('Sum', 'Add', 'numeric'), variadic('Mean', 'Add', 'float', true),
];

/** CastLike: a Cast to the dtype of input 1 (which is read for its type only). */
function castLikeSpec(): ElementwiseSpec {
  return {
    opType: 'CastLike',
    inputs: { min: 2, max: 2 },
    accepts: 'any',
    output: (ctx) => ctx.inputs[1]!.dtype,
    program: (ctx, _attributes, dtype) => ({
      program: { steps: [stepOver('Cast', [{ input: 0 }], { to: onnxDTypeCode(dtype) }, dtype)], result: 0 },
      tensorInputs: [0],
    }),
  };
}

/** Pow: base and exponent may differ in dtype (opset 12+); the result has the base's dtype. */
const powSpec: ElementwiseSpec = { ...binary('Pow', 'numeric'), output: (ctx) => ctx.inputs[0]!.dtype };

/** Where: bool condition, two values of one dtype. */
const whereSpec: ElementwiseSpec = {
  opType: 'Where', inputs: { min: 3, max: 3 }, accepts: 'any', output: (ctx) => ctx.inputs[1]!.dtype, fusable: true,
};

function checkInputs(spec: ElementwiseSpec, ctx: OpContext): TensorType[] {
  const node = ctx.node;
  const given = present(ctx);
  const required = spec.opType === 'Clip' ? [0] : Array.from({ length: Math.max(spec.inputs.min, given.length) }, (_, i) => i);
  for (const index of required) {
    if (!ctx.inputs[index]) throw nodeError('EDGERUN_ERR_ONNX_INVALID', node, `input ${index} is missing`);
  }
  if (given.length < spec.inputs.min || ctx.inputs.length > spec.inputs.max) {
    throw nodeError('EDGERUN_ERR_ONNX_INVALID', node, `takes ${spec.inputs.min}${spec.inputs.max === spec.inputs.min ? '' : '…'} inputs, got ${given.length}`);
  }
  const types = given.map((i) => ctx.inputs[i]!);
  const dtypes = ctx.inputs.map((t) => t?.dtype);
  if (spec.opType === 'Where') {
    requireDType(node, 0, dtypes[0]!, 'bool');
    requireSameDType(node, dtypes, [1, 2]);
  } else if (spec.opType === 'Pow') {
    requireDType(node, 0, dtypes[0]!, 'numeric');
    requireDType(node, 1, dtypes[1]!, 'numeric');
  } else if (spec.opType !== 'CastLike') {
    for (const index of given) requireDType(node, index, dtypes[index]!, spec.accepts);
    requireSameDType(node, dtypes, given);
  }
  return types;
}

function outputShape(spec: ElementwiseSpec, ctx: OpContext, types: TensorType[]): number[] {
  const shape = broadcastShapes(...types.map((t) => t.shape));
  if (!shape || (spec.unidirectional && shape.join(',') !== types[0].shape.join(','))) {
    throw nodeError('EDGERUN_ERR_SHAPE', ctx.node,
      `input shapes ${types.map((t) => `[${t.shape}]`).join(', ')} are not ${spec.unidirectional ? 'unidirectionally ' : ''}broadcastable`,
      { shapes: types.map((t) => t.shape) });
  }
  return shape;
}

function resolveAttributes(spec: ElementwiseSpec, ctx: OpContext): Record<string, number> {
  if (ctx.opset < 7 && new Attributes(ctx.node).has('axis')) {
    throw nodeError('EDGERUN_ERR_UNSUPPORTED_OP', ctx.node, `legacy broadcast with 'axis' (opset ${ctx.opset}) is not supported`);
  }
  return spec.attributes ? spec.attributes(new Attributes(ctx.node), ctx) : {};
}

function outputDType(spec: ElementwiseSpec, ctx: OpContext, types: TensorType[]): DType {
  if (spec.output === 'bool') return 'bool';
  if (spec.output === 'same') return types[0].dtype;
  return spec.output(ctx);
}

function nodeProgram(spec: ElementwiseSpec, ctx: OpContext, attributes: Record<string, number>, dtype: DType): NodeProgram {
  if (spec.program) return spec.program(ctx, attributes, dtype);
  const tensorInputs = present(ctx);
  return { program: { steps: [stepOver(spec.opType, tensorInputs.map((_, i) => ({ input: i })), attributes, dtype)], result: 0 }, tensorInputs };
}

function definition(spec: ElementwiseSpec): OpDefinition {
  const infer = (ctx: OpContext): TensorType[] => {
    const types = checkInputs(spec, ctx);
    const attributes = resolveAttributes(spec, ctx);
    spec.check?.(ctx, attributes);
    return [{ dtype: outputDType(spec, ctx, types), shape: outputShape(spec, ctx, types) }];
  };
  const programOf = (ctx: OpContext): NodeProgram => {
    const types = checkInputs(spec, ctx);
    return nodeProgram(spec, ctx, resolveAttributes(spec, ctx), outputDType(spec, ctx, types));
  };
  return {
    opType: spec.opType,
    infer,
    fold(ctx: OpContext, inputs: (Tensor | null)[]): Tensor[] {
      const { program, tensorInputs } = programOf(ctx);
      return [evaluateElementwiseProgram(program, tensorInputs.map((i) => inputs[i]!), ctx.node.name)];
    },
    build(ctx: BuildContext): KernelProgram[] {
      const { program, tensorInputs } = programOf(ctx);
      const kernel = buildElementwiseKernel({
        label: `${spec.opType} (${ctx.node.name})`,
        program,
        inputs: tensorInputs.map((i) => ctx.inputs[i]!),
        inputIndices: tensorInputs,
        output: ctx.outputs[0],
        device: ctx.device,
      });
      return kernel ? [kernel] : [];
    },
    ...(spec.fusable && ELEMENTWISE_OPS.has(spec.opType) ? {
      elementwise: {
        arity: spec.inputs.min === 1 && spec.inputs.max === Infinity ? 2 : spec.opType === 'Clip' ? 1 : spec.inputs.min,
        fusionAttributes(ctx: OpContext): Record<string, number> | null {
          const { program, tensorInputs } = programOf(ctx);
          const step = program.steps[0];
          if (program.steps.length !== 1 || step.opType !== spec.opType) return null;
          if (tensorInputs.length !== step.args.length) return null;
          return step.attributes;
        },
      },
    } : {}),
  };
}

export const FUSED_ELEMENTWISE_OP = 'FusedElementwise';
export const FUSED_ELEMENTWISE_DOMAIN = 'edgerun';

/** The node the fusion pass substitutes for a chain: program input i is `inputs[i]`. */
export function makeFusedElementwiseNode(name: string, program: ElementwiseProgram, inputs: string[], output: string): Node {
  return {
    name,
    opType: FUSED_ELEMENTWISE_OP,
    domain: FUSED_ELEMENTWISE_DOMAIN,
    inputs,
    outputs: [output],
    attributes: new Map([['program', { type: 'string', value: serializeElementwiseProgram(program) }]]),
  };
}

function fusedProgram(ctx: OpContext): ElementwiseProgram {
  const text = new Attributes(ctx.node).string('program');
  ctx.inputs.forEach((t, i) => {
    if (!t) throw nodeError('EDGERUN_ERR_ONNX_INVALID', ctx.node, `input ${i} is missing`);
  });
  return parseElementwiseProgram(text, ctx.inputs.length, `node '${ctx.node.name}' (${FUSED_ELEMENTWISE_OP})`);
}

const fusedElementwise: OpDefinition = {
  opType: FUSED_ELEMENTWISE_OP,
  domain: FUSED_ELEMENTWISE_DOMAIN,
  infer(ctx) {
    const program = fusedProgram(ctx);
    const types = ctx.inputs as TensorType[];
    const shape = broadcastShapes(...types.map((t) => t.shape));
    if (!shape) throw nodeError('EDGERUN_ERR_SHAPE', ctx.node, `input shapes ${types.map((t) => `[${t.shape}]`).join(', ')} do not broadcast`);
    return [{ dtype: program.steps[program.result].dtype, shape }];
  },
  fold(ctx, inputs) {
    return [evaluateElementwiseProgram(fusedProgram(ctx), inputs as Tensor[], ctx.node.name)];
  },
  build(ctx) {
    const kernel = buildElementwiseKernel({
      label: `FusedElementwise (${ctx.node.name})`,
      program: fusedProgram(ctx),
      inputs: ctx.inputs as TensorType[],
      inputIndices: ctx.inputs.map((_, i) => i),
      output: ctx.outputs[0],
      device: ctx.device,
    });
    return kernel ? [kernel] : [];
  },
};

export const ops: OpDefinition[] = [...SPECS, powSpec, whereSpec].map(definition).concat(fusedElementwise);
