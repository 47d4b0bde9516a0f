/** The PP-OCRv4 recogniser against onnxruntime at two widths (bounds: test/helpers/paddleocr-cases.ts). */
import t from 'tap';
import { closeSharedEngine, imageLikeInput } from '../helpers/engine-oracle.ts';
import { paddleCase } from '../helpers/paddleocr-cases.ts';

t.teardown(closeSharedEngine);

// per time step a softmax over 6,625 classes; two widths exercise the per-shape plans; measured |Δ| ~6e-6
for (const width of [160, 96]) {
  paddleCase(t, { file: 'ch_PP-OCRv4_rec_infer.onnx', shape: [1, 3, 48, width], bound: 5e-5, argmax: true, input: (s) => imageLikeInput(s, 5) });
}
