import t from 'tap';
import { quantizeAwq, scaleCalibration } from '../../daemon/quant/awq.ts';
import { layerOutputError } from '../../daemon/quant/error-metrics.ts';
import { quantizeGptq } from '../../daemon/quant/gptq.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { calibrationOf } from './helpers/layers.ts';
import { correlatedActivations, normalArray } from './helpers/random.ts';

const [K, N, ROWS] = [64, 32, 512];
const spec: QuantSpec = { bits: 4, scheme: 'asymmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } };
const w = normalArray(K * N, 5, 0.1);

/** The dequantized scaled weight divided back by the input scales: what the folded model computes. */
function restored(result: ReturnType<typeof quantizeAwq>): Float32Array {
  return dequantize(result.quantized).map((v, e) => v / result.inputScales[Math.floor(e / N)]!);
}

t.test('AWQ is never worse than RTN and its α = 0 is RTN', async (t) => {
  const calib = calibrationOf(correlatedActivations(ROWS, K, 6), ROWS, K);
  const result = quantizeAwq(w, [K, N], spec, calib, { layout: 'matmul', grid: 10 });
  const rtn = layerOutputError(w, dequantize(quantizeRtn(w, [K, N], spec)), [K, N], calib, 'matmul').error;
  t.ok(Math.abs(result.rtnError - rtn) / rtn < 1e-9, 'α = 0 gives the RTN error');
  t.ok(result.error <= rtn, `AWQ ${result.error.toExponential(3)} ≤ RTN ${rtn.toExponential(3)}`);
  const check = layerOutputError(w, restored(result), [K, N], calib, 'matmul').error;
  t.ok(Math.abs(check - result.error) / result.error < 1e-9, 'the reported error is that of the folded weight');
  const subset = quantizeAwq(w, [K, N], spec, calib, { layout: 'matmul', grid: 10, maxSearchOutputs: 3 });
  t.ok(subset.error <= subset.rtnError, `α chosen on 3 of ${N} outputs: ${subset.error.toExponential(3)} ≤ RTN ${subset.rtnError.toExponential(3)} on all outputs`);
  const subsetCheck = layerOutputError(w, restored(subset), [K, N], calib, 'matmul').error;
  t.ok(Math.abs(subsetCheck - subset.error) / subset.error < 1e-9, 'and its reported error covers all outputs');
});

t.test('AWQ protects salient input channels and clearly beats RTN there', async (t) => {
  const salient = [3, 17, 40, 41, 58];
  const x = correlatedActivations(ROWS, K, 8, { salient, salientGain: 20 });
  const calib = calibrationOf(x, ROWS, K);
  const result = quantizeAwq(w, [K, N], spec, calib, { layout: 'matmul' });
  t.ok(result.alpha > 0, `α = ${result.alpha}`);
  t.ok(result.error < 0.8 * result.rtnError, `AWQ ${result.error.toExponential(3)} vs RTN ${result.rtnError.toExponential(3)}`);
  const mean = result.inputScales.reduce((a, b) => a + b, 0) / K;
  t.ok(salient.every((s) => result.inputScales[s]! > mean), 'salient channels get the largest scales');
});

t.test('scaleCalibration lets GPTQ run on the AWQ-scaled weight', async (t) => {
  const x = correlatedActivations(ROWS, K, 9, { salient: [1, 2], salientGain: 20 });
  const calib = calibrationOf(x, ROWS, K);
  const awq = quantizeAwq(w, [K, N], spec, calib, { layout: 'matmul', grid: 10 });
  const scaled = Float32Array.from(w, (v, e) => v * awq.inputScales[Math.floor(e / N)]!);
  const [scaledCalib] = scaleCalibration(calib, awq.inputScales, [K, N], 'matmul');
  const gptq = quantizeGptq(scaled, [K, N], spec, scaledCalib!, { layout: 'matmul' });
  const combined = layerOutputError(w, restored({ ...awq, quantized: gptq }), [K, N], calib, 'matmul').error;
  const direct = layerOutputError(scaled, dequantize(gptq), [K, N], scaledCalib!, 'matmul').error;
  t.ok(Math.abs(combined - direct) / direct < 1e-6, 'the rescaled statistics measure the same output error');
  t.ok(combined < awq.error, `AWQ+GPTQ ${combined.toExponential(3)} < AWQ ${awq.error.toExponential(3)}`);
});

t.test('AWQ on a conv scales input channels (C of them)', async (t) => {
  const dims = [8, 4, 3, 3];
  const weights = normalArray(8 * 36, 10, 0.1);
  const calibs = [0, 1].map((g) => calibrationOf(correlatedActivations(256, 36, 60 + g, { salient: [0, 1, 2] }), 256, 36));
  const result = quantizeAwq(weights, dims, { bits: 4, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } }, calibs, { layout: 'conv', grid: 5 });
  t.equal(result.inputScales.length, 8, 'two groups of four input channels');
  t.ok(result.error <= result.rtnError);
  await expectEdgerunError(t, () => quantizeAwq(weights, dims, spec, calibs, { layout: 'conv', grid: 0, name: 'c1' }), 'EDGERUN_ERR_COMPRESS', /c1/, /grid/);
});
