import * as ort from 'onnxruntime-node';
import t from 'tap';
import type { Tensor } from '../../daemon/graph/ir.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import {
  buildTransformerDecoder, buildTransformerEncoder, type DecoderOptions, type EncoderOptions, type TransformerFixture,
} from '../fixtures/transformer-models.ts';

const OPSETS = [11, 13, 17, 21];

function toOrt(tensor: Tensor): ort.Tensor {
  if (tensor.dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(tensor.data, (v) => BigInt(v)), tensor.dims);
  return new ort.Tensor('float32', Float32Array.from(tensor.data), tensor.dims);
}

async function run(fixture: TransformerFixture, inputs: Record<string, Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(fixture.bytes, { logSeverityLevel: 3 });
  const results = await session.run(Object.fromEntries(Object.entries(inputs).map(([name, value]) => [name, toOrt(value)])));
  for (const [name, spec] of Object.entries(fixture.outputs)) {
    if (JSON.stringify(results[name].dims) !== JSON.stringify(spec.dims)) {
      throw new Error(`output ${name} has dims ${results[name].dims}, expected ${spec.dims}`);
    }
  }
  await session.release();
  return Object.fromEntries(Object.entries(results).map(([name, value]) => [name, value.data as Float32Array]));
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return a.length === b.length ? max : Infinity;
}

function opTypes(fixture: TransformerFixture): Set<string> {
  return new Set(decodeModel(fixture.bytes).graph.nodes.map((n) => n.opType));
}

const encoderVariants: EncoderOptions[] = [
  {},
  { layerNorm: 'decomposed', ffnStyle: 'gemm', maskStyle: 'add', shapes: 'static' },
  { layerNorm: 'decomposed', maskStyle: 'where', shapes: 'dynamic', ffnStyle: 'gemm' },
];
const decoderVariants: DecoderOptions[] = [
  {},
  { causalMask: 'constant', shapes: 'static', ffnStyle: 'gemm', layerNorm: 'decomposed' },
];

t.test('every encoder variant loads and runs in onnxruntime at every opset, and all compute the same function', async (t) => {
  const reference = buildTransformerEncoder({ opset: 17 });
  const inputs = reference.sampleInputs(3);
  const expected = await run(reference, inputs);
  for (const opset of OPSETS) {
    for (const variant of encoderVariants) {
      if (opset < 17 && variant.layerNorm === undefined) continue;
      const fixture = buildTransformerEncoder({ ...variant, opset });
      const label = `opset ${opset} ${JSON.stringify(variant)}`;
      const model = decodeModel(fixture.bytes, { source: label });
      t.equal(model.opsets.get(''), opset, `${label}: decodes with its opset`);
      const outputs = await run(fixture, inputs);
      t.ok(outputs.last_hidden_state.every(Number.isFinite), `${label}: finite`);
      t.ok(maxAbsDiff(outputs.last_hidden_state, expected.last_hidden_state) < 1e-4, `${label}: same hidden states`);
      t.ok(maxAbsDiff(outputs.pooler_output, expected.pooler_output) < 1e-4, `${label}: same pooler output`);
    }
    // Before opset 17 the default is the decomposed form.
    const defaults = buildTransformerEncoder({ opset });
    t.equal(opTypes(defaults).has('LayerNormalization'), opset >= 17, `opset ${opset}: default LayerNorm form`);
    t.ok(maxAbsDiff((await run(defaults, inputs)).last_hidden_state, expected.last_hidden_state) < 1e-4, `opset ${opset} defaults`);
  }
});

t.test('every decoder variant loads and runs in onnxruntime at every opset, and all compute the same function', async (t) => {
  const reference = buildTransformerDecoder({ opset: 17 });
  const inputs = reference.sampleInputs(5);
  const expected = await run(reference, inputs);
  for (const opset of OPSETS) {
    for (const variant of decoderVariants) {
      const fixture = buildTransformerDecoder({ ...variant, opset, layerNorm: opset < 17 ? 'decomposed' : variant.layerNorm });
      const label = `opset ${opset} ${JSON.stringify(variant)}`;
      t.equal(decodeModel(fixture.bytes).opsets.get(''), opset, `${label}: decodes with its opset`);
      const outputs = await run(fixture, inputs);
      t.ok(maxAbsDiff(outputs.logits, expected.logits) < 1e-4, `${label}: same logits`);
      t.ok(maxAbsDiff(outputs.next_token_logits, expected.logits.subarray(-50)) < 1e-4, `${label}: next-token logits are the last row`);
    }
  }
});

t.test('the encoder mask hides padded tokens', async (t) => {
  for (const maskStyle of ['where', 'add'] as const) {
    const fixture = buildTransformerEncoder({ maskStyle, opset: 13, seq: 6 });
    const ids = Int32Array.of(3, 14, 15, 9, 2, 6);
    const mask = Int32Array.of(1, 1, 1, 1, 0, 0);
    const base = await run(fixture, {
      input_ids: { dtype: 'int64', dims: [1, 6], data: ids },
      attention_mask: { dtype: 'int64', dims: [1, 6], data: mask },
    });
    const changedPadding = await run(fixture, {
      input_ids: { dtype: 'int64', dims: [1, 6], data: Int32Array.of(3, 14, 15, 9, 40, 41) },
      attention_mask: { dtype: 'int64', dims: [1, 6], data: mask },
    });
    const kept = 4 * 32;
    t.ok(maxAbsDiff(base.last_hidden_state.subarray(0, kept), changedPadding.last_hidden_state.subarray(0, kept)) < 1e-5,
      `${maskStyle}: kept positions ignore padded tokens`);
    const unmasked = await run(fixture, {
      input_ids: { dtype: 'int64', dims: [1, 6], data: Int32Array.of(3, 14, 15, 9, 40, 41) },
      attention_mask: { dtype: 'int64', dims: [1, 6], data: new Int32Array(6).fill(1) },
    });
    t.ok(maxAbsDiff(base.last_hidden_state.subarray(0, kept), unmasked.last_hidden_state.subarray(0, kept)) > 1e-3,
      `${maskStyle}: without the mask they do not`);
  }
});

t.test('the decoder is causal and reads its encoder memory', async (t) => {
  for (const options of [{ causalMask: 'range' as const }, { causalMask: 'constant' as const, shapes: 'static' as const }]) {
    const fixture = buildTransformerDecoder({ ...options, opset: 11, layerNorm: 'decomposed' });
    const inputs = fixture.sampleInputs(9);
    const base = await run(fixture, inputs);
    const ids = Int32Array.from(inputs.input_ids.data);
    ids[ids.length - 1] = (ids[ids.length - 1] + 1) % 50;
    const changedLast = await run(fixture, { ...inputs, input_ids: { ...inputs.input_ids, data: ids } });
    const earlier = (8 - 1) * 50;
    t.ok(maxAbsDiff(base.logits.subarray(0, earlier), changedLast.logits.subarray(0, earlier)) < 1e-5,
      `${options.causalMask}: earlier positions do not see a later token`);
    t.ok(maxAbsDiff(base.logits.subarray(earlier), changedLast.logits.subarray(earlier)) > 1e-3, `${options.causalMask}: the last one does`);
    const memory = inputs.encoder_hidden_states;
    const otherMemory = { ...memory, data: Float32Array.from(memory.data, (v) => -v) };
    const changedMemory = await run(fixture, { ...inputs, encoder_hidden_states: otherMemory });
    t.ok(maxAbsDiff(base.logits, changedMemory.logits) > 1e-3, `${options.causalMask}: cross-attention reads the memory`);
  }
});

t.test('dynamic variants accept another batch size and sequence length', async (t) => {
  const encoder = buildTransformerEncoder({ opset: 21, batch: 3, seq: 5, layerNorm: 'decomposed' });
  const outputs = await run(encoder, encoder.sampleInputs(1));
  t.equal(outputs.last_hidden_state.length, 3 * 5 * 32);
  const decoder = buildTransformerDecoder({ opset: 13, batch: 2, seq: 4, memorySeq: 7 });
  const decoded = await run(decoder, decoder.sampleInputs(1));
  t.equal(decoded.logits.length, 2 * 4 * 50);
  t.same(decodeModel(decoder.bytes).graph.inputs.map((i) => i.dims), [['batch', 'target'], ['batch', 'source', 32]]);
});

t.test('the fixtures contain the exporter patterns they promise', async (t) => {
  const encoder = opTypes(buildTransformerEncoder({ opset: 13 }));
  for (const op of ['Gather', 'Add', 'ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'Mul', 'MatMul', 'Reshape', 'Transpose',
    'Softmax', 'Where', 'Expand', 'Equal', 'Erf', 'Tanh', 'Gemm', 'Shape', 'Unsqueeze', 'Concat', 'Range', 'Constant']) {
    t.ok(encoder.has(op), `encoder has ${op}`);
  }
  t.ok(opTypes(buildTransformerEncoder({ opset: 17, maskStyle: 'add' })).has('Cast'), 'additive mask casts');
  t.ok(opTypes(buildTransformerEncoder({ opset: 17, ffnStyle: 'gemm' })).has('Gemm'));
  const decoder = opTypes(buildTransformerDecoder({ opset: 17 }));
  for (const op of ['Range', 'Unsqueeze', 'Less', 'Where', 'Expand', 'Flatten', 'Squeeze', 'Concat', 'Slice', 'LayerNormalization']) {
    t.ok(decoder.has(op), `decoder has ${op}`);
  }
});

t.test('axes move from attributes to inputs at the opsets ONNX moved them', async (t) => {
  const arity = (opset: number, opType: string): number[] => {
    const fixture = buildTransformerEncoder({ opset, layerNorm: 'decomposed' });
    const nodes = decodeModel(fixture.bytes).graph.nodes.filter((n) => n.opType === opType);
    return [...new Set(nodes.map((n) => n.inputs.length * 10 + (n.attributes.has('axes') ? 1 : 0)))];
  };
  t.same(arity(11, 'Unsqueeze'), [11], 'opset 11: Unsqueeze axes attribute');
  t.same(arity(13, 'Unsqueeze'), [20], 'opset 13: Unsqueeze axes input');
  t.same(arity(17, 'ReduceMean'), [11], 'opset 17: ReduceMean axes attribute');
  t.same(arity(21, 'ReduceMean'), [20], 'opset 21: ReduceMean axes input');
  const decoder = decodeModel(buildTransformerDecoder({ opset: 11, layerNorm: 'decomposed' }).bytes);
  t.ok(decoder.graph.nodes.filter((n) => n.opType === 'Slice').every((n) => n.inputs.length >= 3), 'Slice takes inputs');
});

t.test('fixtures are deterministic per seed', async (t) => {
  t.same(Buffer.from(buildTransformerDecoder({ seed: 4 }).bytes), Buffer.from(buildTransformerDecoder({ seed: 4 }).bytes));
  t.notSame(Buffer.from(buildTransformerDecoder({ seed: 4 }).bytes), Buffer.from(buildTransformerDecoder({ seed: 5 }).bytes));
  t.same(buildTransformerEncoder().sampleInputs(2), buildTransformerEncoder().sampleInputs(2));
  t.throws(() => buildTransformerEncoder({ opset: 13, layerNorm: 'fused' }), /opset 17/);
  t.throws(() => buildTransformerEncoder({ opset: 12 }), /opset 12/);
});
