/** Deterministic random data for the quantization tests. */

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller) from a seeded uniform source. */
export function seededNormal(seed: number): () => number {
  const uniform = seededUniform(seed);
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

export function normalArray(count: number, seed: number, std = 1): Float32Array {
  const normal = seededNormal(seed);
  return Float32Array.from({ length: count }, () => normal() * std);
}

/**
 * `rows` activation rows of width `features` with strong correlation between features (a low-rank factor model
 * plus noise) and per-feature magnitudes spread over two orders of magnitude, the regime GPTQ exploits.
 * `salient` features get an extra ×`salientGain` magnitude (AWQ's salient channels).
 */
export function correlatedActivations(rows: number, features: number, seed: number, options: { rank?: number; salient?: number[]; salientGain?: number; offset?: number } = {}): Float32Array {
  const normal = seededNormal(seed);
  const rank = options.rank ?? Math.max(2, Math.floor(features / 8));
  const mixing = Float64Array.from({ length: rank * features }, () => normal());
  const magnitude = Float64Array.from({ length: features }, (_, j) => Math.exp(((j * 7919) % features) / features * 2 - 1));
  for (const s of options.salient ?? []) magnitude[s]! *= options.salientGain ?? 10;
  const out = new Float32Array(rows * features);
  const factor = new Float64Array(rank);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < rank; f++) factor[f] = normal();
    for (let j = 0; j < features; j++) {
      let v = 0.3 * normal();
      for (let f = 0; f < rank; f++) v += factor[f]! * mixing[f * features + j]!;
      out[r * features + j] = (v / Math.sqrt(rank) + (options.offset ?? 0)) * magnitude[j]!;
    }
  }
  return out;
}
