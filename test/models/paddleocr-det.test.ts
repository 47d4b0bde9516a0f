/** The PP-OCRv4 text detector against onnxruntime (bounds: test/helpers/paddleocr-cases.ts). */
import t from 'tap';
import { closeSharedEngine, textLikeInput } from '../helpers/engine-oracle.ts';
import { paddleCase } from '../helpers/paddleocr-cases.ts';

t.teardown(closeSharedEngine);

// per-pixel text probability (sigmoid) on a page-like input that makes the detector fire (measured |Δ| 3e-5);
// kept small for CI since every kernel is JIT-compiled on first use; the benchmark runs 640×640
paddleCase(t, { file: 'ch_PP-OCRv4_det_infer.onnx', shape: [1, 3, 64, 96], bound: 3e-4, minPeak: 0.5, input: textLikeInput });
