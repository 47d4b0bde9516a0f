/** Small ONNX models and sample folders for the compressor's tests (seeded, so every run sees the same numbers). */
import fs from 'node:fs/promises';
import path from 'node:path';
import { ModelBuilder } from '../../helpers/onnx-builder.ts';
import { seededRandom } from '../../fixtures/transformer-models.ts';
import { encodeNpy } from '../../../daemon/util/npy.ts';
import type { Tensor } from '../../../daemon/graph/ir.ts';

export function randomValues(count: number, seed: number, scale = 1): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: count }, () => (random() * 2 - 1) * scale);
}

/**
 * x [1,8,10,10] → Conv 3×3 (16) → BatchNorm → Relu → depthwise Conv 3×3 → grouped Conv 1×1 (g=4, 32) →
 * GlobalAveragePool → Flatten → MatMul [32,64] → Add → Gemm (transB=1, [10,64]) → y [1,10]. Opset 13.
 */
export function convNetModel(opset = 13): Uint8Array {
  return new ModelBuilder({ opset })
    .input('x', 'float32', [1, 8, 10, 10])
    .initializer('conv1.w', 'float32', [16, 8, 3, 3], randomValues(16 * 72, 1, 0.2))
    .initializer('conv1.b', 'float32', [16], randomValues(16, 2, 0.1))
    .initializer('bn.scale', 'float32', [16], randomValues(16, 3, 0.3).map((v) => 1 + v))
    .initializer('bn.bias', 'float32', [16], randomValues(16, 4, 0.2))
    .initializer('bn.mean', 'float32', [16], randomValues(16, 5, 0.1))
    .initializer('bn.var', 'float32', [16], randomValues(16, 6, 0.3).map((v) => 1 + v))
    .initializer('dw.w', 'float32', [16, 1, 3, 3], randomValues(16 * 9, 7, 0.4))
    .initializer('gc.w', 'float32', [32, 4, 1, 1], randomValues(32 * 4, 8, 0.4))
    .initializer('fc.w', 'float32', [32, 64], randomValues(32 * 64, 9, 0.25))
    .initializer('fc.b', 'float32', [64], randomValues(64, 10, 0.1))
    .initializer('head.w', 'float32', [10, 64], randomValues(640, 11, 0.2))
    .initializer('head.b', 'float32', [10], randomValues(10, 12, 0.1))
    .node('Conv', ['x', 'conv1.w', 'conv1.b'], ['c1'], { pads: [1, 1, 1, 1] }, { name: 'conv1' })
    .node('BatchNormalization', ['c1', 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'], ['b1'], {}, { name: 'bn1' })
    .node('Relu', ['b1'], ['r1'])
    .node('Conv', ['r1', 'dw.w'], ['d1'], { pads: [1, 1, 1, 1], group: 16 }, { name: 'depthwise' })
    .node('Conv', ['d1', 'gc.w'], ['g1'], { group: 4 }, { name: 'grouped' })
    .node('GlobalAveragePool', ['g1'], ['p1'])
    .node('Flatten', ['p1'], ['f1'])
    .node('MatMul', ['f1', 'fc.w'], ['m1'], {}, { name: 'fc' })
    .node('Add', ['m1', 'fc.b'], ['a1'])
    .node('Relu', ['a1'], ['r2'])
    .node('Gemm', ['r2', 'head.w', 'head.b'], ['y'], { transB: 1 }, { name: 'head' })
    .output('y', 'float32', [1, 10])
    .toBytes();
}

/** x [batch, 4, 64] → MatMul [64,128] → Relu → MatMul [128,64] → Softmax(-1) → y: two matrices big enough for blocks of 32–128. */
export function mlpModel(opset = 13): Uint8Array {
  return new ModelBuilder({ opset })
    .input('x', 'float32', ['batch', 4, 64])
    .initializer('w1', 'float32', [64, 128], randomValues(64 * 128, 21, 0.2))
    .initializer('w2', 'float32', [128, 64], randomValues(128 * 64, 22, 0.2))
    .node('MatMul', ['x', 'w1'], ['h'], {}, { name: 'up' })
    .node('Relu', ['h'], ['hr'])
    .node('MatMul', ['hr', 'w2'], ['z'], {}, { name: 'down' })
    .node('Softmax', ['z'], ['y'], { axis: -1 })
    .output('y', 'float32', ['batch', 4, 64])
    .toBytes();
}

export function randomTensorOf(dims: number[], seed: number, scale = 1): Tensor {
  return { dtype: 'float32', dims, data: randomValues(dims.reduce((a, b) => a * b, 1), seed, scale) };
}

/** Writes `count` .npy samples of `dims` into `dir` (created). */
export async function writeSamples(dir: string, dims: number[], count: number, seed: number): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    await fs.writeFile(path.join(dir, `s${String(i).padStart(2, '0')}.npy`), encodeNpy(randomTensorOf(dims, seed + i)));
  }
  return dir;
}
