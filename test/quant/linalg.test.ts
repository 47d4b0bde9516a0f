import t from 'tap';
import { choleskyLowerInPlace, upperCholeskyOfInverse } from '../../daemon/quant/linalg.ts';
import { normalArray } from './helpers/random.ts';

/** A random symmetric positive definite n×n matrix: AᵀA + n·I. */
function spd(n: number, seed: number): Float64Array {
  const a = normalArray(n * n, seed);
  const h = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = i === j ? n : 0;
    for (let k = 0; k < n; k++) s += a[k * n + i]! * a[k * n + j]!;
    h[i * n + j] = s;
  }
  return h;
}

t.test('upperCholeskyOfInverse returns an upper-triangular U with H·UᵀU = I', async (t) => {
  const n = 23;
  const h = spd(n, 1);
  const u = upperCholeskyOfInverse(h, n)!;
  let lowerMax = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) lowerMax = Math.max(lowerMax, Math.abs(u[i * n + j]!));
  t.equal(lowerMax, 0, 'nothing below the diagonal');
  t.ok(Array.from({ length: n }, (_, i) => u[i * n + i]!).every((d) => d > 0), 'positive diagonal');
  let worst = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) {
      let inv = 0;
      for (let m = 0; m < n; m++) inv += u[m * n + k]! * u[m * n + j]!;
      s += h[i * n + k]! * inv;
    }
    worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
  }
  t.ok(worst < 1e-10, `identity within ${worst}`);
});

t.test('a matrix that is not positive definite is reported, not factored', async (t) => {
  t.equal(upperCholeskyOfInverse(Float64Array.of(1, 2, 2, 1), 2), null);
  t.equal(choleskyLowerInPlace(Float64Array.of(0, 0, 0, 1), 2), false);
});
