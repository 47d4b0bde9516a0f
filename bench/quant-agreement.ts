/**
 * Does each compressed package's model.onnx run in onnxruntime-node, and does edgerun's WebGPU engine (fused
 * INT8/INT4 kernels) agree with it? For every package: edgerun compiles the model (counting the quantized layers that
 * run fused and any DequantizeLinear/Cast left over), loads it (GPU constant bytes against the file size), runs every
 * eval-set case and compares each output with onnxruntime-node running the graph as written
 * (graphOptimizationLevel 'disabled': its default optimizations replace DequantizeLinear → MatMul by kernels that also
 * quantize the activations, a different computation).
 *   node --import tsx bench/quant-agreement.ts [--bound 2e-4] PKGDIR …
 * The bound is on max |edgerun − onnxruntime| relative to max(1, max |onnxruntime|); exit code 1 when a package misses it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { WebGpuEngine } from '../daemon/engine/webgpu-engine.ts';
import type { Tensor } from '../daemon/graph/ir.ts';
import { compileModel } from '../daemon/graph/compile.ts';
import { decodeModel } from '../daemon/onnx/decode.ts';
import { readPackage } from '../daemon/package/read-package.ts';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { bound: { type: 'string', default: '2e-4' } } });
const bound = Number(values.bound);
if (positionals.length === 0 || !(bound > 0)) {
  process.stderr.write('usage: node --import tsx bench/quant-agreement.ts [--bound 2e-4] PKGDIR …\n');
  process.exit(2);
}

function toOrt(tensor: Tensor): ort.Tensor {
  if (tensor.dtype !== 'float32') throw new Error(`only float32 inputs are compared, got ${tensor.dtype}`);
  return new ort.Tensor('float32', tensor.data as Float32Array, tensor.dims);
}

const engine = await WebGpuEngine.create();
let failed = 0;
process.stdout.write('| package | fused QConv / QMatMul | DequantizeLinear/Cast left | GPU constants / file | cases | max abs Δ vs onnxruntime (max abs ref) | within bound |\n|---|---|---|---|---|---|---|\n');
try {
  for (const dir of positionals) {
    const pkg = await readPackage(dir);
    if (!pkg.eval || pkg.eval.cases.length === 0) throw new Error(`${dir}: the package has no eval set to compare on`);
    const bytes = await fs.readFile(pkg.modelPath);
    const first = pkg.eval.cases[0]!;
    const shapes = new Map([...first.inputs].map(([name, tensor]) => [name, tensor.dims]));
    const model = decodeModel(bytes);
    const compiled = compileModel(model, { inputShapes: shapes, caps: engine.runtime.caps });
    const leftOver = compiled.nodeInfo.filter((n) => n.opType === 'DequantizeLinear' || n.opType === 'Cast').length;
    const reference = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
    let maxAbs = 0;
    let maxRef = 0;
    let constantBytes = 0;
    for (const evalCase of pkg.eval.cases) {
      const caseShapes = new Map([...evalCase.inputs].map(([name, tensor]) => [name, tensor.dims]));
      const session = await engine.load(pkg.modelPath, { inputShapes: caseShapes });
      try {
        constantBytes = (await session.prepare(caseShapes)).constantBytes;
        const ours = (await session.run(evalCase.inputs)).outputs;
        const theirs = await reference.run(Object.fromEntries([...evalCase.inputs].map(([name, tensor]) => [name, toOrt(tensor)])));
        for (const [name, tensor] of ours) {
          const expected = theirs[name]!.data as Float32Array;
          const actual = tensor.data as Float32Array;
          for (let i = 0; i < expected.length; i++) {
            maxAbs = Math.max(maxAbs, Math.abs(expected[i]! - actual[i]!));
            maxRef = Math.max(maxRef, Math.abs(expected[i]!));
          }
        }
      } finally {
        await session.close();
      }
    }
    await reference.release();
    const ok = maxAbs <= bound * Math.max(1, maxRef) && leftOver === 0;
    if (!ok) failed++;
    process.stdout.write(`| ${path.basename(dir)} | ${compiled.stats.quantizedConvs} / ${compiled.stats.quantizedMatMuls} | ${leftOver} | `
      + `${(constantBytes / bytes.length).toFixed(2)}× (${constantBytes.toLocaleString('en-US')} / ${bytes.length.toLocaleString('en-US')} B) | `
      + `${pkg.eval.cases.length} | ${maxAbs.toExponential(2)} (${maxRef.toFixed(3)}) | ${ok ? 'yes' : 'NO'} |\n`);
  }
} finally {
  await engine.close();
}
process.exit(failed === 0 ? 0 : 1);
