/** CTC greedy decoding, edit distance and the rec scores on crafted inputs. */
import t from 'tap';
import { ctcGreedyDecode, editDistance, scoreRecognition } from '../../daemon/evalsets/ctc.ts';
import { dictionaryFromText } from '../../daemon/evalsets/dictionary.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

// classes: 0 blank, 1 'a', 2 'b', 3 '中', 4 space
const dictionary = dictionaryFromText('a\nb\n中\n');

function logits(path: number[], classes = 5): Float32Array {
  const scores = new Float32Array(path.length * classes).fill(-1);
  path.forEach((c, t) => { scores[t * classes + c] = 3; });
  return scores;
}

t.test('greedy decoding collapses repeats, drops blanks and keeps a repeat split by a blank', async (t) => {
  t.equal(ctcGreedyDecode(logits([1, 1, 0, 1, 2, 2, 4, 3, 0]), 9, 5, dictionary), 'aab 中');
  t.equal(ctcGreedyDecode(logits([0, 0, 0]), 3, 5, dictionary), '');
  t.equal(ctcGreedyDecode(logits([3, 3, 3]), 3, 5, dictionary), '中');
});

t.test('decoding rejects scores whose class count differs from the dictionary', async (t) => {
  await expectEdgerunError(t, () => ctcGreedyDecode(new Float32Array(12), 2, 6, dictionary), 'EDGERUN_ERR_EVALSET', /6 output classes.*5/);
  await expectEdgerunError(t, () => ctcGreedyDecode(new Float32Array(11), 2, 5, dictionary), 'EDGERUN_ERR_EVALSET', /11 values/);
});

t.test('edit distance counts insertions, deletions and substitutions by code point', async (t) => {
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(editDistance('', 'abc'), 3);
  t.equal(editDistance('中文字', '中字'), 1);
  t.equal(editDistance('same', 'same'), 0);
});

t.test('character accuracy is 1 − Σ distance / Σ label length, ignoring spaces', async (t) => {
  const score = scoreRecognition([
    { label: 'ab cd', predicted: 'abcd' },
    { label: '中文', predicted: '中' },
    { label: 'xyz', predicted: 'xyq' },
  ]);
  t.equal(score.charAccuracy, 1 - 2 / 9);
  t.equal(score.lineAccuracy, 1 / 3);
  t.equal(score.lines, 3);
  t.equal(scoreRecognition([{ label: 'ab', predicted: 'abcdefgh' }]).charAccuracy, 0, 'never below zero');
});
