import t from 'tap';
import { dequantize, quantizeRtn, scaleDimsFor, scaleIndexOf, scaleIndexMap, groupParams } from '../../daemon/quant/rtn.ts';
import type { QuantSpec } from '../../daemon/quant/types.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { normalArray } from './helpers/random.ts';

const int8Channel: QuantSpec = { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 1 } };

t.test('block scales have the weight shape with the block axis divided by the block size, rounded up', async (t) => {
  t.same(scaleDimsFor([100, 6], { kind: 'block', axis: 0, blockSize: 32 }), [4, 6]);
  t.same(scaleDimsFor([8, 70, 3, 3], { kind: 'block', axis: 1, blockSize: 64 }), [8, 2, 3, 3]);
  t.same(scaleDimsFor([8, 70, 3, 3], { kind: 'channel', axis: 0 }), [8]);
  const dims = [5, 70, 2];
  const granularity = { kind: 'block', axis: 1, blockSize: 32 } as const;
  const map = scaleIndexMap(dims, granularity);
  for (let i = 0; i < map.length; i++) {
    const [a, b, c] = [Math.floor(i / 140), Math.floor(i / 2) % 70, i % 2];
    const expected = (a * 3 + Math.floor(b / 32)) * 2 + c;
    if (map[i] !== expected || scaleIndexOf(i, dims, granularity) !== expected) t.fail(`element ${i}: ${map[i]} ≠ ${expected}`);
  }
  t.pass('every element maps to its block');
});

t.test('symmetric int8 per-channel: values in [-127, 127], scale = absmax/127, channel maximum exact', async (t) => {
  const w = normalArray(64 * 10, 1);
  const q = quantizeRtn(w, [64, 10], int8Channel);
  t.same(q.scaleDims, [10]);
  t.equal(q.zeroPoint, null);
  for (let n = 0; n < 10; n++) {
    let absmax = 0;
    for (let k = 0; k < 64; k++) absmax = Math.max(absmax, Math.abs(w[k * 10 + n]!));
    t.equal(q.scale[n], Math.fround(absmax / 127));
  }
  t.ok(q.values.every((v) => v >= -127 && v <= 127));
  const deq = dequantize(q);
  for (let i = 0; i < w.length; i++) {
    if (Math.abs(deq[i]! - w[i]!) > q.scale[i % 10]! / 2 + 1e-7) t.fail(`element ${i} off by more than half a step`);
  }
});

t.test('symmetric int4 uses the -8 level when the largest magnitude is negative and never clips', async (t) => {
  const p = groupParams(-4, 2, { bits: 4, scheme: 'symmetric' });
  t.equal(p.scale, 0.5, '−4 maps to −8');
  const q = quantizeRtn(Float32Array.of(-4, 2, 3.5, -0.2), [4], { bits: 4, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } });
  t.equal(q.scale.length, 4);
  const block = quantizeRtn(Float32Array.of(-4, 2, 3.5, -0.2, 7, -7), [6], { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } });
  t.same(Array.from(block.values), [-4, 2, 4, 0, 7, -7], 'scale = max(7/7, 7/8) = 1');
  t.equal(block.scale[0], 1);
});

t.test('asymmetric uint4/uint8: zero is exactly representable and extremes land on 0 and qmax', async (t) => {
  for (const bits of [4, 8] as const) {
    const w = Float32Array.from(normalArray(96, 2 + bits), (v) => v + 0.7);
    const q = quantizeRtn(w, [96], { bits, scheme: 'asymmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } });
    const qmax = bits === 8 ? 255 : 15;
    t.ok(q.zeroPoint, 'asymmetric tensors carry a zero point');
    t.ok(q.values.every((v) => v >= 0 && v <= qmax), `values within [0, ${qmax}]`);
    for (let b = 0; b < 3; b++) {
      const zp = q.zeroPoint![b]!;
      t.ok(Number.isInteger(zp) && zp >= 0 && zp <= qmax, 'integer zero point in range');
      t.equal((zp - zp) * q.scale[b]!, 0, 'zero dequantizes to exactly 0');
      const slice = Array.from(q.values.subarray(b * 32, b * 32 + 32));
      t.equal(Math.max(...slice), qmax);
    }
  }
  const positive = quantizeRtn(Float32Array.of(1, 2, 3), [3], { bits: 8, scheme: 'asymmetric', granularity: { kind: 'channel', axis: 0 } });
  t.same(Array.from(positive.zeroPoint!), [0, 0, 0], 'an all-positive range is extended down to 0');
});

t.test('an all-zero group gets scale 1 and zero values', async (t) => {
  const q = quantizeRtn(new Float32Array(64), [64], { bits: 4, scheme: 'asymmetric', granularity: { kind: 'block', axis: 0, blockSize: 32 } });
  t.same(Array.from(q.scale), [1, 1]);
  t.ok(dequantize(q).every((v) => v === 0));
});

t.test('clip ratios shrink the range per scale', async (t) => {
  const w = Float32Array.of(1, 0.5, -0.25, 10);
  const full = quantizeRtn(w, [4], { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } });
  const clipped = quantizeRtn(w, [4], { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } }, { clipRatio: Float32Array.of(1, 1, 1, 0.5) });
  t.equal(clipped.scale[3], Math.fround(full.scale[3]! / 2));
  t.equal(clipped.values[3], 127, 'the clipped value saturates');
  await expectEdgerunError(t, () => quantizeRtn(w, [4], { bits: 8, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } }, { clipRatio: Float32Array.of(1), name: 'w4' }), 'EDGERUN_ERR_COMPRESS', /w4/, /clipRatio/);
});

t.test('NaN or Inf weights and wrong dims fail with EDGERUN_ERR_COMPRESS naming the tensor', async (t) => {
  const w = normalArray(20, 3);
  w[7] = NaN;
  await expectEdgerunError(t, () => quantizeRtn(w, [2, 10], int8Channel, { name: 'conv1.w' }), 'EDGERUN_ERR_COMPRESS', /conv1\.w/, /NaN/, /index 7/);
  w[7] = Infinity;
  await expectEdgerunError(t, () => quantizeRtn(w, [2, 10], int8Channel, { name: 'conv1.w' }), 'EDGERUN_ERR_COMPRESS', /Infinity/);
  await expectEdgerunError(t, () => quantizeRtn(normalArray(20, 3), [3, 10], int8Channel, { name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /fc/, /20 values/);
  await expectEdgerunError(t, () => quantizeRtn(normalArray(20, 3), [20], int8Channel, { name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /axis 1/);
  const badBlock = { bits: 4, scheme: 'symmetric', granularity: { kind: 'block', axis: 0, blockSize: 0 } } as unknown as QuantSpec;
  await expectEdgerunError(t, () => quantizeRtn(normalArray(20, 3), [20], badBlock, { name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /block size 0/);
  const badBits = { bits: 2, scheme: 'symmetric', granularity: { kind: 'channel', axis: 0 } } as unknown as QuantSpec;
  await expectEdgerunError(t, () => quantizeRtn(normalArray(20, 3), [20], badBits, { name: 'fc' }), 'EDGERUN_ERR_COMPRESS', /2-bit/);
});
