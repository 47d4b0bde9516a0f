/**
 * The adapter's own measured matmul throughput (GFLOP/s), the roofline model FLOP rates are compared with:
 * a square FP32 MatMul through edgerun's best matmul kernel on the same adapter, median of several runs.
 */
import onnxProto from 'onnx-proto';
import { decodeModel } from '../daemon/onnx/decode.ts';
import type { WebGpuEngine } from '../daemon/engine/webgpu-engine.ts';
import { seededRandom } from '../daemon/cli/random-inputs.ts';

const { onnx } = onnxProto;

function matmulModel(n: number): Uint8Array {
  const valueInfo = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: n }, { dimValue: n }] } } } });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'edgerun-bench',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'roofline',
      node: [{ name: 'mm', opType: 'MatMul', input: ['a', 'b'], output: ['c'] }],
      input: [valueInfo('a'), valueInfo('b')],
      output: [valueInfo('c')],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export async function measureMatmulRoofline(engine: WebGpuEngine, n = 1024, runs = 5): Promise<{ n: number; medianMs: number; gflops: number }> {
  const session = await engine.loadModel(decodeModel(matmulModel(n), { source: `matmul-${n}` }));
  const random = seededRandom(3);
  const make = () => ({ dtype: 'float32' as const, dims: [n, n], data: Float32Array.from({ length: n * n }, () => random() - 0.5) });
  const feeds = new Map([['a', make()], ['b', make()]]);
  await session.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push((await session.run(feeds)).timings.totalMs);
  await session.close();
  times.sort((a, b) => a - b);
  const medianMs = times[Math.floor(times.length / 2)];
  return { n, medianMs, gflops: (2 * n * n * n) / (medianMs * 1e6) };
}
