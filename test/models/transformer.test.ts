/**
 * Transformer encoders and decoders as PyTorch exports them (built by test/fixtures/transformer-models.ts with
 * random weights), several sizes and opsets, through edgerun and onnxruntime-node.
 *
 * Error bound: each layer sums ≤ ffn (≤ 128) products per output in f32 (relative rounding ~√K·2⁻²⁴ ≈ 7e-7),
 * softmax and layer norm renormalise, and erf is a 1.5e-7 approximation; through ≤ 3 layers plus the tanh pooler
 * the outputs (of order 1) agree to ~1e-6 (measured); the bound, 1e-5, leaves a factor of ten.
 */
import t from 'tap';
import { buildTransformerDecoder, buildTransformerEncoder, type TransformerFixture } from '../fixtures/transformer-models.ts';
import { closeSharedEngine, compareWithOrt } from '../helpers/engine-oracle.ts';

t.teardown(closeSharedEngine);

const BOUND = 1e-5;

const CASES: { name: string; build: () => TransformerFixture }[] = [
  { name: 'encoder opset 11, decomposed layer norm, dynamic shapes', build: () => buildTransformerEncoder({ opset: 11, layers: 2, hidden: 32, heads: 4, ffn: 64, seq: 8, layerNorm: 'decomposed', shapes: 'dynamic' }) },
  { name: 'encoder opset 13, Gemm FFN, additive mask', build: () => buildTransformerEncoder({ opset: 13, layers: 1, hidden: 48, heads: 3, ffn: 96, seq: 6, ffnStyle: 'gemm', maskStyle: 'add' }) },
  { name: 'encoder opset 17, LayerNormalization, batch 2', build: () => buildTransformerEncoder({ opset: 17, layers: 3, hidden: 64, heads: 4, ffn: 128, seq: 10, batch: 2, layerNorm: 'fused' }) },
  { name: 'encoder opset 21', build: () => buildTransformerEncoder({ opset: 21, layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 5 }) },
  { name: 'decoder opset 13, Range causal mask, cross-attention', build: () => buildTransformerDecoder({ opset: 13, layers: 2, hidden: 32, heads: 4, ffn: 64, seq: 7, memorySeq: 9 }) },
  { name: 'decoder opset 17, constant causal mask', build: () => buildTransformerDecoder({ opset: 17, layers: 1, hidden: 64, heads: 8, ffn: 128, seq: 12, causalMask: 'constant' }) },
  { name: 'decoder opset 11', build: () => buildTransformerDecoder({ opset: 11, layers: 1, hidden: 32, heads: 4, ffn: 64, seq: 4, memorySeq: 6 }) },
];

for (const c of CASES) {
  t.test(`${c.name}: matches onnxruntime within ${BOUND}`, async (t) => {
    const fixture = c.build();
    const feeds = new Map(Object.entries(fixture.sampleInputs(3)));
    const results = await compareWithOrt(fixture.bytes, feeds, c.name);
    t.equal(results.length, Object.keys(fixture.outputs).length, 'every output is produced');
    for (const r of results) {
      t.ok(r.shapeMatches, `${r.name}: shape [${r.actual.dims}]`);
      t.ok(r.maxAbs <= BOUND, `${r.name}: max |Δ| ${r.maxAbs.toExponential(2)} ≤ ${BOUND} (max ref ${r.maxRef.toFixed(3)})`);
    }
  });
}
