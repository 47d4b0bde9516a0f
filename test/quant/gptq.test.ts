import t from 'tap';
import { layerOutputError } from '../../daemon/quant/error-metrics.ts';
import { quantizeGptq } from '../../daemon/quant/gptq.ts';
import { dequantize, quantizeRtn } from '../../daemon/quant/rtn.ts';
import type { LayerCalibration, QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { calibrationOf } from './helpers/layers.ts';
import { correlatedActivations, normalArray } from './helpers/random.ts';

const int4Group32: QuantSpec = { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } };
const int8Channel: QuantSpec = { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 1 } };

const K = 96;
const N = 48;
const ROWS = 1024;
const x = correlatedActivations(ROWS, K, 11);
const calib = calibrationOf(x, ROWS, K);
const w = normalArray(K * N, 12, 0.05);

function errors(spec: QuantSpec, options: { actOrder?: boolean; blockSize?: number } = {}): { rtn: number; gptq: number } {
  const rtn = layerOutputError(w, dequantize(quantizeRtn(w, [K, N], spec)), [K, N], calib, 'matmul').relative;
  const gptq = layerOutputError(w, dequantize(quantizeGptq(w, [K, N], spec, calib, { layout: 'matmul', ...options })), [K, N], calib, 'matmul').relative;
  return { rtn, gptq };
}

t.test('GPTQ int4 group 32 has at least 20% less output error than RTN on correlated inputs', async (t) => {
  for (const actOrder of [true, false]) {
    const { rtn, gptq } = errors(int4Group32, { actOrder, blockSize: 32 });
    t.ok(gptq < 0.8 * rtn, `actOrder ${actOrder}: GPTQ ${gptq.toExponential(3)} vs RTN ${rtn.toExponential(3)}`);
  }
  const asymmetric = errors({ ...int4Group32, scheme: 'asymmetric' });
  t.ok(asymmetric.gptq < 0.8 * asymmetric.rtn, `uint4: GPTQ ${asymmetric.gptq.toExponential(3)} vs RTN ${asymmetric.rtn.toExponential(3)}`);
});

t.test('GPTQ int8 per-channel has less output error than RTN', async (t) => {
  const { rtn, gptq } = errors(int8Channel);
  t.ok(gptq < 0.8 * rtn, `GPTQ ${gptq.toExponential(3)} vs RTN ${rtn.toExponential(3)}`);
});

t.test('GPTQ stays in the spec’s integer range and block layout', async (t) => {
  const q = quantizeGptq(w, [K, N], int4Group32, calib, { layout: 'matmul' });
  t.same(q.scaleDims, [3, N]);
  t.ok(q.values.every((v) => v >= -8 && v <= 7));
  const u = quantizeGptq(w, [K, N], { ...int4Group32, scheme: 'asymmetric' }, calib, { layout: 'matmul' });
  t.ok(u.values.every((v) => v >= 0 && v <= 15));
  t.equal(u.zeroPoint!.length, 3 * N);
});

t.test('with uncorrelated inputs (diagonal H) GPTQ passes no error on and equals RTN', async (t) => {
  const diagonal: LayerCalibration = { ...calib, hessian: new Float64Array(K * K) };
  for (let i = 0; i < K; i++) diagonal.hessian[i * K + i] = 1 + (i % 5);
  for (const spec of [int4Group32, int8Channel]) {
    const gptq = quantizeGptq(w, [K, N], spec, diagonal, { layout: 'matmul' });
    t.same(Array.from(gptq.values), Array.from(quantizeRtn(w, [K, N], spec).values));
  }
});

t.test('GPTQ handles rank-deficient statistics and features the calibration never saw', async (t) => {
  const few = calibrationOf(x.subarray(0, 8 * K), 8, K);
  for (let j = 0; j < K; j++) {
    few.hessian[5 * K + j] = 0;
    few.hessian[j * K + 5] = 0;
  }
  const q = quantizeGptq(w, [K, N], int4Group32, few, { layout: 'matmul' });
  const rtn = layerOutputError(w, dequantize(quantizeRtn(w, [K, N], int4Group32)), [K, N], few, 'matmul').error;
  t.ok(layerOutputError(w, dequantize(q), [K, N], few, 'matmul').error < rtn);
});

t.test('GPTQ on a grouped conv uses each group’s statistics and beats RTN', async (t) => {
  const [m, cg, kh, kw, groups] = [12, 8, 3, 3, 2];
  const features = cg * kh * kw;
  const weights = normalArray(m * features, 21, 0.1);
  const calibs = [0, 1].map((g) => calibrationOf(correlatedActivations(512, features, 30 + g), 512, features));
  const spec: QuantSpec = { bits: 4, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } };
  const q = quantizeGptq(weights, [m, cg, kh, kw], spec, calibs, { layout: 'conv' });
  const dims = [m, cg, kh, kw];
  const gptq = layerOutputError(weights, dequantize(q), dims, calibs, 'conv').relative;
  const rtn = layerOutputError(weights, dequantize(quantizeRtn(weights, dims, spec)), dims, calibs, 'conv').relative;
  t.ok(gptq < 0.8 * rtn, `grouped conv (${groups} groups): GPTQ ${gptq.toExponential(3)} vs RTN ${rtn.toExponential(3)}`);
  const blocks = quantizeGptq(weights, dims, { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 1, blockSize: 32 } }, calibs, { layout: 'conv' });
  t.same(blocks.scaleDims, [m, 1, kh, kw], 'block scales along the input channels, one per kernel position');
  const blockRtn = layerOutputError(weights, dequantize(quantizeRtn(weights, dims, blocks.spec)), dims, calibs, 'conv').relative;
  const blockGptq = layerOutputError(weights, dequantize(blocks), dims, calibs, 'conv').relative;
  t.ok(blockGptq < 0.8 * blockRtn, `strided block groups: GPTQ ${blockGptq.toExponential(3)} vs RTN ${blockRtn.toExponential(3)}`);
});

t.test('GPTQ on a depthwise conv (one input channel per group) works and is no worse than RTN', async (t) => {
  const [m, kh, kw] = [6, 3, 3];
  const dims = [m, 1, kh, kw];
  const weights = normalArray(m * kh * kw, 41, 0.2);
  const calibs = Array.from({ length: m }, (_, g) => calibrationOf(correlatedActivations(256, kh * kw, 50 + g, { rank: 2 }), 256, kh * kw));
  const spec: QuantSpec = { bits: 4, scheme: 'asymmetric', granularity: { kind: 'channel', axis: 0 } };
  const q = quantizeGptq(weights, dims, spec, calibs, { layout: 'conv' });
  t.equal(q.scale.length, m);
  const gptq = layerOutputError(weights, dequantize(q), dims, calibs, 'conv').error;
  const rtn = layerOutputError(weights, dequantize(quantizeRtn(weights, dims, spec)), dims, calibs, 'conv').error;
  t.ok(gptq < rtn, `depthwise: GPTQ ${gptq.toExponential(3)} vs RTN ${rtn.toExponential(3)}`);
});

t.test('NaN in the statistics or mismatched statistics fail with EDGERUN_ERR_COMPRESS naming the tensor', async (t) => {
  const broken = { ...calib, hessian: Float64Array.from(calib.hessian) };
  broken.hessian[3] = NaN;
  await expectEdgerunError(t, () => quantizeGptq(w, [K, N], int8Channel, broken, { layout: 'matmul', name: 'linear_79.w_0' }), 'EDGERUN_ERR_COMPRESS', /linear_79\.w_0/, /hessian/, /NaN/);
  const meanInf = { ...calib, meanAbs: Float64Array.from(calib.meanAbs) };
  meanInf.meanAbs[0] = Infinity;
  await expectEdgerunError(t, () => quantizeGptq(w, [K, N], int8Channel, meanInf, { layout: 'matmul', name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /fc/, /meanAbs/);
  await expectEdgerunError(t, () => quantizeGptq(w, [N, K], int8Channel, calib, { layout: 'matmul', name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /fc/, /features/);
  await expectEdgerunError(t, () => quantizeGptq(normalArray(10 * 8 * 9, 1), [10, 8, 3, 3], int8Channel, [calib, calib, calib], { layout: 'conv', name: 'conv' }), 'EDGERUN_ERR_COMPRESS', /10 output channels/);
});
