/** The PP-OCR direction classifier against onnxruntime (bounds: test/helpers/paddleocr-cases.ts). */
import t from 'tap';
import { closeSharedEngine, imageLikeInput } from '../helpers/engine-oracle.ts';
import { paddleCase } from '../helpers/paddleocr-cases.ts';

t.teardown(closeSharedEngine);

// softmax over 2 classes (upright / rotated); measured |Δ| ~1e-7
paddleCase(t, { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', shape: [1, 3, 48, 192], bound: 1e-5, input: (s) => imageLikeInput(s, 5) });
