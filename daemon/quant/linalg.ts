/** Dense float64 linear algebra for GPTQ (row-major n×n matrices). */

/** Σ a[ao+k]·b[bo+k] for k < n; four partial sums break the add-latency chain (~25% faster in V8). */
export function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += a[ao + k]! * b[bo + k]!;
    s1 += a[ao + k + 1]! * b[bo + k + 1]!;
    s2 += a[ao + k + 2]! * b[bo + k + 2]!;
    s3 += a[ao + k + 3]! * b[bo + k + 3]!;
  }
  for (; k < n; k++) s0 += a[ao + k]! * b[bo + k]!;
  return s0 + s1 + s2 + s3;
}

/** In-place lower Cholesky factor of a symmetric matrix (the upper triangle is left as is); false when not positive definite. */
export function choleskyLowerInPlace(a: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      const s = a[ri + j]! - dot(a, ri, a, rj, j);
      if (i === j) {
        if (!(s > 0)) return false;
        a[ri + i] = Math.sqrt(s);
      } else {
        a[ri + j] = s / a[rj + j]!;
      }
    }
  }
  return true;
}

/** The inverse of a lower-triangular matrix (only its lower triangle is read), built row by row. */
export function invertLowerTriangular(l: Float64Array, n: number): Float64Array {
  const x = new Float64Array(n * n);
  const acc = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    acc.fill(0, 0, i);
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k]!;
      if (lik === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) acc[j]! += lik * x[rk + j]!;
    }
    const diag = l[ri + i]!;
    for (let j = 0; j < i; j++) x[ri + j] = -acc[j]! / diag;
    x[ri + i] = 1 / diag;
  }
  return x;
}

/**
 * The upper-triangular U with H⁻¹ = UᵀU (what GPTQ's torch.cholesky(cholesky_inverse(cholesky(H)), upper=True)
 * computes), in one Cholesky and one triangular inverse: with J the reversal permutation and JHJ = L'L'ᵀ,
 * H⁻¹ = (J L'⁻ᵀ J)(J L'⁻¹ J) and J L'⁻¹ J is upper triangular. Null when H is not positive definite.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number): Float64Array | null {
  const reversed = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) reversed[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)]!;
  if (!choleskyLowerInPlace(reversed, n)) return null;
  const inverse = invertLowerTriangular(reversed, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = inverse[(n - 1 - i) * n + (n - 1 - j)]!;
  return u;
}
