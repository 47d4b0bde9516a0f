/**
 * MatMulInteger (opset 10): int32 Y = (A - a_zero_point) · (B - b_zero_point) with NumPy batching, A and B
 * int8/uint8, a_zero_point per tensor, b_zero_point per tensor or per column (length N). Integer tensors are
 * i32 per element on the GPU, so the kernels accumulate exactly in i32.
 *
 * A constant 2-D B (the W8A8 dynamic pattern: DynamicQuantizeLinear → MatMulInteger) is kept packed, four
 * K-consecutive bytes per u32 word per column, offset to unsigned; the zero points come out of the sum:
 *   Σ (a - za)(b - zb) = Σ ua·ub − ZB·Σ ua − ZA·Σ ub + K·ZA·ZB   (ua = a + oa, ZA = za + oa; likewise for B)
 * with Σ ub per column precomputed. Where the adapter has the `packed_4x8_integer_dot_product` WGSL language
 * feature the four products and the A sum are dot4U8Packed; elsewhere vec4<i32> dots of the unpacked bytes.
 */
import { elementCount, makeTensor, type Tensor, type TensorType } from '../graph/ir.ts';
import { quantError, requireInput } from './quant-params.ts';
import { bytesToWords } from '../quant/packing.ts';
import { broadcastShapes, linearDispatch, ShapeValues, storageBinding, stridesOf } from './shader-util.ts';
import type { Binding, BuildContext, KernelProgram, OpContext, OpDefinition } from './types.ts';

const DOT4_FEATURE = 'wgsl:packed_4x8_integer_dot_product';

interface IntegerProblem {
  batchShape: number[];
  M: number;
  K: number;
  N: number;
  /** Batch strides of A and B (0 where broadcast), aligned to batchShape. */
  aBatch: number[];
  bBatch: number[];
  outputShape: number[];
  perColumnB: boolean;
}

function alignedStrides(shape: number[], batchShape: number[], matrix: number): number[] {
  const offset = batchShape.length - shape.length;
  const own = stridesOf(shape);
  return batchShape.map((_, d) => (d - offset < 0 || shape[d - offset] === 1 ? 0 : own[d - offset] * matrix));
}

function integerProblem(ctx: OpContext): IntegerProblem {
  if (ctx.inputs.length < 2 || ctx.inputs.length > 4) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `expects 2 to 4 inputs, got ${ctx.inputs.length}`);
  const a = requireInput(ctx, 0, 'A');
  const b = requireInput(ctx, 1, 'B');
  for (const [index, type] of [[0, a], [1, b], [2, ctx.inputs[2]], [3, ctx.inputs[3]]] as const) {
    if (type && type.dtype !== 'int8' && type.dtype !== 'uint8') {
      throw quantError(ctx, 'EDGERUN_ERR_ONNX_INVALID', `input ${index} is ${type.dtype}; MatMulInteger takes int8 or uint8`, { input: index, dtype: type.dtype });
    }
  }
  if (a.shape.length === 0 || b.shape.length === 0) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', 'scalar operands are not allowed');
  const aShape = a.shape.length === 1 ? [1, a.shape[0]] : [...a.shape];
  const bShape = b.shape.length === 1 ? [b.shape[0], 1] : [...b.shape];
  const K = aShape[aShape.length - 1];
  const M = aShape[aShape.length - 2];
  const N = bShape[bShape.length - 1];
  if (bShape[bShape.length - 2] !== K) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `inner dimensions differ: A [${a.shape}] vs B [${b.shape}]`, { aShape: a.shape, bShape: b.shape });
  const batchShape = broadcastShapes(aShape.slice(0, -2), bShape.slice(0, -2));
  if (!batchShape) throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `batch dimensions of [${a.shape}] and [${b.shape}] do not broadcast`);
  const aZero = ctx.inputs[2];
  if (aZero && elementCount(aZero.shape) !== 1) {
    throw quantError(ctx, 'EDGERUN_ERR_UNSUPPORTED_OP', `a_zero_point dims [${aZero.shape}]: only a per-tensor a_zero_point is supported`, { shape: aZero.shape });
  }
  const bZero = ctx.inputs[3];
  const perColumnB = !!bZero && elementCount(bZero.shape) !== 1;
  if (bZero && perColumnB && (bZero.shape.length !== 1 || bZero.shape[0] !== N)) {
    throw quantError(ctx, 'EDGERUN_ERR_SHAPE', `b_zero_point dims [${bZero.shape}] must be [] or [${N}]`, { shape: bZero.shape });
  }
  const outputShape = [...batchShape];
  if (a.shape.length > 1) outputShape.push(M);
  if (b.shape.length > 1) outputShape.push(N);
  return {
    batchShape, M, K, N, outputShape, perColumnB,
    aBatch: alignedStrides(aShape.slice(0, -2), batchShape, M * K),
    bBatch: alignedStrides(bShape.slice(0, -2), batchShape, K * N),
  };
}

function batchOffset(batch: number, batchShape: number[], strides: number[]): number {
  let offset = 0;
  let rest = batch;
  for (let d = batchShape.length - 1; d >= 0; d--) {
    offset += (rest % batchShape[d]) * strides[d];
    rest = Math.floor(rest / batchShape[d]);
  }
  return offset;
}

function batchOffsetWgsl(batchShape: number[], strides: number[], batch: string): string {
  const terms: string[] = [];
  let inner = 1;
  for (let d = batchShape.length - 1; d >= 0; d--) {
    if (strides[d] !== 0) terms.push(`((${batch} / ${inner}u) % ${batchShape[d]}u) * ${strides[d]}u`);
    inner *= batchShape[d];
  }
  return terms.length ? terms.join(' + ') : '0u';
}

/** The packed-B kernel: one invocation per 4 output columns of 4 rows (1 row for single-row problems). */
function packedIntegerProgram(ctx: BuildContext, p: IntegerProblem, b: Tensor, bZero: Tensor | null): KernelProgram {
  const { K, N } = p;
  const rows = elementCount(ctx.inputs[0]!.shape) / K;
  const words = Math.ceil(K / 4);
  const offsetA = ctx.inputs[0]!.dtype === 'int8' ? 128 : 0;
  const offsetB = b.dtype === 'int8' ? 128 : 0;
  const nPad = Math.ceil(N / 4) * 4;
  const bytes = new Uint8Array(nPad * words * 4);
  // per column: (Σ ub, ZB)
  const columns = new Int32Array(nPad * 2);
  for (let n = 0; n < N; n++) {
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const ub = b.data[k * N + n] + offsetB;
      bytes[n * words * 4 + k] = ub;
      sum += ub;
    }
    columns[2 * n] = sum;
    columns[2 * n + 1] = (bZero ? bZero.data[p.perColumnB ? n : 0] : 0) + offsetB;
  }
  const dot4 = ctx.device.features.has(DOT4_FEATURE);
  const shapes = new ShapeValues(ctx.device.isCpu);
  const M = shapes.value(rows, 'M');
  const NV = shapes.value(N, 'N');
  const KW = shapes.value(words, 'KW');
  const KFULL = shapes.value(Math.floor(K / 4), 'KFULL');
  const KV = shapes.value(K, 'K');
  const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'constant', data: bytesToWords(bytes) }, { kind: 'constant', data: columns }];
  const declarations = [storageBinding(0, 'a', 'i32', 'read'), storageBinding(1, 'bw', 'u32', 'read'),
    '@group(0) @binding(2) var<storage, read> columns: array<vec2<i32>>;'];
  let za = `${offsetA}`;
  if (ctx.inputs[2]) {
    declarations.push(storageBinding(bindings.length, 'a_zero_point', 'i32', 'read'));
    bindings.push({ kind: 'input', index: 2 });
    za = `a_zero_point[0] + ${offsetA}`;
  }
  declarations.push(storageBinding(bindings.length, 'y', 'i32', 'read_write'));
  bindings.push({ kind: 'output', index: 0 });
  const paramsDeclaration = shapes.declaration(bindings.length);
  const params = shapes.binding();
  if (params) bindings.push(params);
  const columnIds = [0, 1, 2, 3];
  // 4 rows × 4 columns per invocation (1 row for single-row problems): each B word serves every row
  const tileRows = rows === 1 ? 1 : 4;
  const rowIds = Array.from({ length: tileRows }, (_, r) => r);
  const loadA = (r: number, k: string, guarded: boolean) => {
    const read = (j: number) => `u32(a[aRow${r} + ${k} + ${j}u] + ${offsetA})`;
    const lanes = columnIds.map((j) => (guarded ? `select(0u, ${read(j)}, ${k} + ${j}u < ${KV})` : read(j)));
    return `vec4<u32>(${lanes.join(', ')})`;
  };
  const accumulate = (k: string, kw: string, guarded: boolean) => [
    ...columnIds.map((j) => dot4
      ? `let b${j} = bw[bCol${j} + ${kw}];`
      : `let b${j} = vec4<i32>((vec4<u32>(bw[bCol${j} + ${kw}]) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u));`),
    ...rowIds.flatMap((r) => dot4
      ? [`let ap${r} = pack4xU8(${loadA(r, k, guarded)});`, `sa${r} = sa${r} + dot4U8Packed(ap${r}, 0x01010101u);`,
        ...columnIds.map((j) => `acc${r}[${j}] = acc${r}[${j}] + dot4U8Packed(ap${r}, b${j});`)]
      : [`let av${r} = vec4<i32>(${loadA(r, k, guarded)});`, `sa${r} = sa${r} + av${r}.x + av${r}.y + av${r}.z + av${r}.w;`,
        ...columnIds.map((j) => `acc${r}[${j}] = acc${r}[${j}] + dot(av${r}, b${j});`)]),
  ];
  const kTerm = KV === 'K' ? 'i32(K)' : `${K}`;
  const stores = rowIds.map((r) => `if (m + ${r}u < ${M}) {
    for (var j = 0u; j < 4u; j = j + 1u) {
      let n = col + j;
      if (n < ${NV}) {
        let c = columns[n];
        y[(m + ${r}u) * ${NV} + n] = i32(acc${r}[j]) - c.y * i32(sa${r}) - za * c.x + ${kTerm} * za * c.y;
      }
    }
  }`);
  const code = `${dot4 ? 'requires packed_4x8_integer_dot_product;\n' : ''}${declarations.join('\n')}
${paramsDeclaration}

@compute @workgroup_size(16, 4, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${shapes.loads().join('\n  ')}
  let col = gid.x * 4u;
  let m = gid.y * ${tileRows}u;
  if (col >= ${NV} || m >= ${M}) { return; }
  ${rowIds.map((r) => `let aRow${r} = ${r === 0 ? 'm' : `min(m + ${r}u, ${M} - 1u)`} * ${KV};`).join('\n  ')}
  ${columnIds.map((j) => `let bCol${j} = min(col + ${j}u, ${NV} - 1u) * ${KW};`).join('\n  ')}
  ${rowIds.map((r) => `var acc${r} = vec4<${dot4 ? 'u32' : 'i32'}>(0${dot4 ? 'u' : ''});\n  var sa${r} = 0${dot4 ? 'u' : ''};`).join('\n  ')}
  for (var kw = 0u; kw < ${KFULL}; kw = kw + 1u) {
    let k = kw * 4u;
    ${accumulate('k', 'kw', false).join('\n    ')}
  }
  ${K % 4 ? `{
    let kw = ${KFULL};
    let k = kw * 4u;
    ${accumulate('k', 'kw', true).join('\n    ')}
  }` : ''}
  let za = ${za};
  ${stores.join('\n  ')}
}
`;
  return {
    label: `MatMulInteger packed${dot4 ? ' dot4' : ''} ${rows}x${K}x${N} (${ctx.node.name})`,
    key: `MatMulInteger packed ${dot4 ? 'dot4' : 'unpacked'} r${tileRows} oa${offsetA} za${ctx.inputs[2] ? 1 : 0} tail${K % 4 ? 1 : 0} ${shapes.key()}`,
    code,
    workgroups: [Math.ceil(N / 4 / 16), Math.ceil(rows / tileRows / 4), 1],
    bindings,
  };
}

const matMulInteger: OpDefinition = {
  opType: 'MatMulInteger',
  sinceVersion: 10,
  infer(ctx) {
    return [{ dtype: 'int32', shape: integerProblem(ctx).outputShape } satisfies TensorType];
  },
  fold(ctx, inputs) {
    const p = integerProblem(ctx);
    const [a, b, aZero, bZero] = inputs;
    const out = makeTensor('int32', p.outputShape);
    const batches = elementCount(p.batchShape);
    const za = aZero ? aZero.data[0] : 0;
    for (let batch = 0; batch < batches; batch++) {
      const aBase = batchOffset(batch, p.batchShape, p.aBatch);
      const bBase = batchOffset(batch, p.batchShape, p.bBatch);
      for (let m = 0; m < p.M; m++) {
        for (let n = 0; n < p.N; n++) {
          const zb = bZero ? bZero.data[p.perColumnB ? n : 0] : 0;
          let acc = 0;
          for (let k = 0; k < p.K; k++) acc += (a!.data[aBase + m * p.K + k] - za) * (b!.data[bBase + k * p.N + n] - zb);
          out.data[(batch * p.M + m) * p.N + n] = acc;
        }
      }
    }
    return [out];
  },
  build(ctx: BuildContext) {
    const p = integerProblem(ctx);
    const count = elementCount(p.outputShape);
    if (count === 0) return [];
    const b = ctx.constants[1];
    if (b && b.dims.length === 2 && (!ctx.inputs[3] || ctx.constants[3]) && p.K > 0) {
      return [packedIntegerProgram(ctx, p, b, ctx.constants[3] ?? null)];
    }
    const declarations = [storageBinding(0, 'a', 'i32', 'read'), storageBinding(1, 'b', 'i32', 'read')];
    const bindings: Binding[] = [{ kind: 'input', index: 0 }, { kind: 'input', index: 1 }];
    let za = '0';
    let zb = '0';
    if (ctx.inputs[2]) {
      declarations.push(storageBinding(bindings.length, 'a_zero_point', 'i32', 'read'));
      bindings.push({ kind: 'input', index: 2 });
      za = 'a_zero_point[0]';
    }
    if (ctx.inputs[3]) {
      declarations.push(storageBinding(bindings.length, 'b_zero_point', 'i32', 'read'));
      bindings.push({ kind: 'input', index: 3 });
      zb = p.perColumnB ? 'b_zero_point[n]' : 'b_zero_point[0]';
    }
    declarations.push(storageBinding(bindings.length, 'y', 'i32', 'read_write'));
    bindings.push({ kind: 'output', index: 0 });
    const dispatch = linearDispatch(count, 64, ctx.device.limits.maxComputeWorkgroupsPerDimension);
    const code = `${declarations.join('\n')}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${dispatch.prologue}
  let n = idx % ${p.N}u;
  let m = (idx / ${p.N}u) % ${p.M}u;
  let batch = idx / ${p.M * p.N}u;
  let aBase = ${batchOffsetWgsl(p.batchShape, p.aBatch, 'batch')} + m * ${p.K}u;
  let bBase = ${batchOffsetWgsl(p.batchShape, p.bBatch, 'batch')} + n;
  let za = ${za};
  let zb = ${zb};
  var acc = 0i;
  for (var k = 0u; k < ${p.K}u; k = k + 1u) {
    acc = acc + (a[aBase + k] - za) * (b[bBase + k * ${p.N}u] - zb);
  }
  y[idx] = acc;
}
`;
    return [{
      label: `MatMulInteger ${p.batchShape.length ? `[${p.batchShape}]×` : ''}${p.M}x${p.K}x${p.N} (${ctx.node.name})`,
      key: `MatMulInteger b[${p.batchShape}] a[${p.aBatch}] bb[${p.bBatch}] m${p.M} k${p.K} n${p.N} za${ctx.inputs[2] ? 1 : 0} zb${ctx.inputs[3] ? (p.perColumnB ? 'c' : 1) : 0} [${dispatch.workgroups}]`,
      code,
      workgroups: dispatch.workgroups,
      bindings,
    }];
  },
};

export const ops: OpDefinition[] = [matMulInteger];
