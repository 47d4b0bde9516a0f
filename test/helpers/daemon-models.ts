/** Small ONNX models for the daemon's process tests and the swap benchmark. */
import { ModelBuilder } from './onnx-builder.ts';

/** y = x + 1, x: float32[batch, 4]. */
export function addOneModel(): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 4]).initializer('one', 'float32', [], [1])
    .node('Add', ['x', 'one'], ['y']).output('y', 'float32', ['batch', 4]).toBytes();
}

/** y = x * factor, x: float32[batch, 4]: versions of one model differ by `factor`. */
export function scaleModel(factor: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 4]).initializer('factor', 'float32', [], [factor])
    .node('Mul', ['x', 'factor'], ['y']).output('y', 'float32', ['batch', 4]).toBytes();
}

/**
 * A model that keeps onnxruntime busy for a few hundred ms (a chain of n×n MatMuls of a broadcast input), for
 * requests that are still in flight when a signal arrives. x: float32[1, 1] → y: float32 scalar.
 */
export function slowModel(n = 1024, matmuls = 10): Uint8Array {
  let builder = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 1])
    .initializer('shape', 'int64', [2], [n, n]).initializer('w0', 'float32', [], [0.001])
    .node('Expand', ['x', 'shape'], ['m0']).node('Expand', ['w0', 'shape'], ['w']);
  for (let i = 0; i < matmuls; i++) builder = builder.node('MatMul', [`m${i}`, 'w'], [`m${i + 1}`]);
  return builder.node('ReduceSum', [`m${matmuls}`], ['y'], { keepdims: 0 }).output('y', 'float32', []).toBytes();
}

/** A KServe v2 JSON inference request body for one float32 input. */
export function inferBody(name: string, shape: number[], data: number[]): string {
  return JSON.stringify({ inputs: [{ name, shape, datatype: 'FP32', data }] });
}
