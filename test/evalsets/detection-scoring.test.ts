/** DB post-processing on synthetic probability maps, IoU matching and P/R/hmean on crafted boxes. */
import t from 'tap';
import { iou, matchBoxes, scoreDetection } from '../../daemon/evalsets/box-match.ts';
import { dbPostprocess } from '../../daemon/evalsets/db-postprocess.ts';

function map(width: number, height: number, regions: { x0: number; y0: number; x1: number; y1: number; p: number }[]): Float32Array {
  const prob = new Float32Array(width * height).fill(0.05);
  for (const r of regions) for (let y = r.y0; y <= r.y1; y++) for (let x = r.x0; x <= r.x1; x++) prob[y * width + x] = r.p;
  return prob;
}

t.test('each confident region becomes one box grown by area × 1.5 / perimeter', async (t) => {
  const prob = map(100, 60, [{ x0: 10, y0: 10, x1: 50, y1: 20, p: 0.9 }, { x0: 60, y0: 40, x1: 90, y1: 50, p: 0.8 }]);
  const boxes = dbPostprocess(prob, 100, 60);
  t.equal(boxes.length, 2);
  // 40 × 10 box: distance = 400 × 1.5 / 100 = 6
  t.same({ ...boxes[0], score: undefined }, { x0: 4, y0: 4, x1: 56, y1: 26, score: undefined });
  t.ok(Math.abs(boxes[0].score - 0.9) < 1e-6);
});

t.test('weak, tiny and below-threshold regions give no box', async (t) => {
  const prob = map(100, 60, [
    { x0: 10, y0: 10, x1: 50, y1: 20, p: 0.5 }, // above 0.3 but mean score < 0.6
    { x0: 70, y0: 10, x1: 71, y1: 40, p: 0.95 }, // 1 px wide: below min size
    { x0: 10, y0: 40, x1: 50, y1: 50, p: 0.25 }, // below the binarisation threshold
  ]);
  t.same(dbPostprocess(prob, 100, 60), []);
});

t.test('boxes scale back to the original image size and stay inside it', async (t) => {
  const prob = map(64, 32, [{ x0: 2, y0: 2, x1: 40, y1: 12, p: 0.9 }]);
  const [box] = dbPostprocess(prob, 64, 32, { x: 2, y: 2 });
  t.equal(box.x0, 0);
  t.equal(box.y0, 0);
  t.ok(box.x1 > 80 && box.x1 <= 128);
});

t.test('IoU of crafted boxes', async (t) => {
  t.equal(iou({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 0, y0: 0, x1: 10, y1: 10 }), 1);
  t.equal(iou({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 5, y0: 0, x1: 15, y1: 10 }), 50 / 150);
  t.equal(iou({ x0: 0, y0: 0, x1: 10, y1: 10 }, { x0: 10, y0: 10, x1: 20, y1: 20 }), 0);
});

t.test('matching is one-to-one at IoU ≥ 0.5 and P/R/hmean sum counts over pages', async (t) => {
  const truths = [{ x0: 0, y0: 0, x1: 100, y1: 20 }, { x0: 0, y0: 40, x1: 100, y1: 60 }];
  const page1 = matchBoxes(truths, [
    { x0: 2, y0: 1, x1: 98, y1: 21 }, // matches the first
    { x0: 0, y0: 0, x1: 100, y1: 20 }, // duplicate of the first: a false positive
    { x0: 0, y0: 45, x1: 30, y1: 60 }, // IoU 0.3 with the second: no match
  ]);
  t.same(page1, { matched: 1, truths: 2, predictions: 3 });
  const page2 = matchBoxes([{ x0: 0, y0: 0, x1: 10, y1: 10 }], [{ x0: 0, y0: 0, x1: 10, y1: 10 }]);
  const score = scoreDetection([page1, page2]);
  t.equal(score.precision, 2 / 4);
  t.equal(score.recall, 2 / 3);
  t.ok(Math.abs(score.hmean - (2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3)) < 1e-12);
  t.same(scoreDetection([{ matched: 0, truths: 0, predictions: 0 }]), { precision: 0, recall: 0, hmean: 0, pages: 1 });
});
