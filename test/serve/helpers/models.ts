/**
 * Small real ONNX models for serving and engine tests, written to a temp folder (onnxruntime loads them
 * from files, as the daemon does).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelBuilder } from '../../helpers/onnx-builder.ts';

/**
 * input-0 float32 [batch, features] → output-0 = 2 · input-0, argmax int64 [batch] (ArgMax over features).
 * Serves the KServe documentation's examples ("input-0", FP32, [2, 2] or [2, 4]).
 */
export function exampleModel(): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('input-0', 'float32', ['batch', 'features'])
    .initializer('two', 'float32', [], [2])
    .node('Mul', ['input-0', 'two'], ['output-0'])
    .node('ArgMax', ['input-0'], ['argmax'], { axis: 1, keepdims: 0 })
    .output('output-0', 'float32', ['batch', 'features'])
    .output('argmax', 'int64', ['batch'])
    .toBytes();
}

/**
 * The model of the KServe / Triton protocol examples: input0 UINT32 [2, 2], input1 BOOL [3];
 * output0 = float(input0) FP32 [2, 2], output1 = input0 UINT32 [2, 2], output2 = not input1 BOOL [3].
 */
export function protocolExampleModel(): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('input0', 'uint32', [2, 2])
    .input('input1', 'bool', [3])
    .node('Cast', ['input0'], ['output0'], { to: 1 })
    .node('Identity', ['input0'], ['output1'])
    .node('Not', ['input1'], ['output2'])
    .output('output0', 'float32', [2, 2])
    .output('output1', 'uint32', [2, 2])
    .output('output2', 'bool', [3])
    .toBytes();
}

/**
 * One input per dtype family: ids int64 [n] → ids_next = ids + 1, ids_wide = ids · 2^32 (beyond int32);
 * mask bool [n] → mask_not; half float16 [2] → half_twice = half + half; small int8 [3] → small_out;
 * fixed float32 [1, 3] → fixed_out.
 */
export function typedModel(): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('ids', 'int64', ['n'])
    .input('mask', 'bool', ['n'])
    .input('half', 'float16', [2])
    .input('small', 'int8', [3])
    .input('fixed', 'float32', [1, 3])
    .initializer('one', 'int64', [], [1])
    .initializer('wide', 'int64', [], [4294967296n])
    .node('Add', ['ids', 'one'], ['ids_next'])
    .node('Mul', ['ids', 'wide'], ['ids_wide'])
    .node('Not', ['mask'], ['mask_not'])
    .node('Add', ['half', 'half'], ['half_twice'])
    .node('Identity', ['small'], ['small_out'])
    .node('Identity', ['fixed'], ['fixed_out'])
    .output('ids_next', 'int64', ['n'])
    .output('ids_wide', 'int64', ['n'])
    .output('mask_not', 'bool', ['n'])
    .output('half_twice', 'float16', [2])
    .output('small_out', 'int8', [3])
    .output('fixed_out', 'float32', [1, 3])
    .toBytes();
}

/** x float32 [n, 256] through `layers` MatMuls with one 256×256 weight: n sets the compute time. */
export function slowModel(layers = 32): Uint8Array {
  const size = 256;
  const weights = new Float32Array(size * size);
  for (let i = 0; i < weights.length; i++) weights[i] = (((i * 7919) % 113) - 56) / (56 * 16);
  const builder = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['n', size])
    .initializer('w', 'float32', [size, size], weights);
  let previous = 'x';
  for (let layer = 0; layer < layers; layer++) {
    const next = layer === layers - 1 ? 'y' : `h${layer}`;
    builder.node('MatMul', [previous, 'w'], [next]);
    previous = next;
  }
  return builder.output('y', 'float32', ['n', size]).toBytes();
}

export interface ModelFiles {
  dir: string;
  example: string;
  protocol: string;
  typed: string;
  slow: string;
  remove(): void;
}

export function writeModels(): ModelFiles {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-serve-models-'));
  const write = (name: string, bytes: Uint8Array): string => {
    const file = path.join(dir, `${name}.onnx`);
    fs.writeFileSync(file, bytes);
    return file;
  };
  return {
    dir,
    example: write('example', exampleModel()),
    protocol: write('mymodel', protocolExampleModel()),
    typed: write('typed', typedModel()),
    slow: write('slow', slowModel()),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
