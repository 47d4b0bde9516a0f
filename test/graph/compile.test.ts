/**
 * The graph compiler's passes on small real models: what they fold and fuse (from the compile stats),
 * and that the fused result still matches onnxruntime. Bounds: a handful of f32 operations per element,
 * reordered by fusion: 1e-5 absolute on values of order 1.
 */
import t from 'tap';
import { compileModel } from '../../daemon/graph/compile.ts';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { closeSharedEngine, compareWithOrt, sharedEngine } from '../helpers/engine-oracle.ts';
import { randomTensor, seededRandom } from '../helpers/kernel-harness.ts';
import { ModelBuilder, floatAttr } from '../helpers/onnx-builder.ts';

t.teardown(closeSharedEngine);

const values = (count: number, seed: number, lo = -1, hi = 1) => {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => lo + (hi - lo) * random());
};

async function compile(bytes: Uint8Array, shapes: Record<string, number[]>) {
  const engine = await sharedEngine();
  return compileModel(decodeModel(bytes), { inputShapes: new Map(Object.entries(shapes)), caps: engine.runtime.caps });
}

function convBnHardSwish(): Uint8Array {
  return new ModelBuilder({ opset: 11 })
    .input('x', 'float32', [1, 4, 8, 8])
    .initializer('w', 'float32', [6, 4, 3, 3], values(6 * 4 * 9, 1))
    .initializer('gamma', 'float32', [6], values(6, 2, 0.5, 1.5))
    .initializer('beta', 'float32', [6], values(6, 3))
    .initializer('mean', 'float32', [6], values(6, 4))
    .initializer('var', 'float32', [6], values(6, 5, 0.5, 2))
    .initializer('three', 'float32', [], [3])
    .initializer('six', 'float32', [], [6])
    .initializer('zero', 'float32', [], [0])
    .node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] })
    .node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], ['b'], { epsilon: floatAttr(1e-5) })
    .node('Add', ['b', 'three'], ['a'])
    .node('Clip', ['a', 'zero', 'six'], ['k'])
    .node('Mul', ['b', 'k'], ['m'])
    .node('Div', ['m', 'six'], ['y'])
    .output('y', 'float32', [1, 6, 8, 8])
    .toBytes();
}

t.test('BatchNorm folds into the Conv and a HardSwish chain becomes its epilogue', async (t) => {
  const bytes = convBnHardSwish();
  const compiled = await compile(bytes, { x: [1, 4, 8, 8] });
  t.equal(compiled.stats.batchNormsFolded, 1, 'one BatchNormalization folded');
  t.equal(compiled.stats.fusedEpilogues, 1, 'the activation chain is fused into the conv');
  t.equal(compiled.nodeInfo.length, 1, 'one node is left to run');
  const [result] = await compareWithOrt(bytes, new Map([['x', randomTensor([1, 4, 8, 8], 9)]]));
  t.ok(result.maxAbs <= 1e-4, `max |Δ| ${result.maxAbs.toExponential(2)} ≤ 1e-4 (conv sums 36 terms)`);
});

t.test('the decomposed layer normalisation becomes one LayerNormalization', async (t) => {
  const d = 16;
  const bytes = new ModelBuilder({ opset: 13 })
    .input('x', 'float32', [2, 5, d])
    .initializer('two', 'float32', [], [2])
    .initializer('eps', 'float32', [], [1e-5])
    .initializer('gamma', 'float32', [d], values(d, 7, 0.5, 1.5))
    .initializer('beta', 'float32', [d], values(d, 8))
    .node('ReduceMean', ['x'], ['mu'], { axes: [-1] })
    .node('Sub', ['x', 'mu'], ['dx'])
    .node('Pow', ['dx', 'two'], ['sq'])
    .node('ReduceMean', ['sq'], ['var'], { axes: [-1] })
    .node('Add', ['var', 'eps'], ['ve'])
    .node('Sqrt', ['ve'], ['sd'])
    .node('Div', ['dx', 'sd'], ['n'])
    .node('Mul', ['n', 'gamma'], ['g'])
    .node('Add', ['g', 'beta'], ['y'])
    .output('y', 'float32', [2, 5, d])
    .toBytes();
  const compiled = await compile(bytes, { x: [2, 5, d] });
  t.equal(compiled.stats.layerNormsFused, 1);
  t.equal(compiled.nodeInfo.length, 1);
  const [result] = await compareWithOrt(bytes, new Map([['x', randomTensor([2, 5, d], 10, -3, 3)]]));
  t.ok(result.maxAbs <= 1e-5, `max |Δ| ${result.maxAbs.toExponential(2)} ≤ 1e-5`);
});

t.test('an elementwise chain with broadcasting runs as one fused kernel', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [2, 3, 4])
    .input('z', 'float32', [2, 3, 4])
    .initializer('bias', 'float32', [4], values(4, 11))
    .initializer('half', 'float32', [], [0.5])
    .node('Add', ['x', 'bias'], ['a'])
    .node('Sigmoid', ['a'], ['s'])
    .node('Mul', ['s', 'z'], ['m'])
    .node('Sub', ['m', 'half'], ['y'])
    .output('y', 'float32', [2, 3, 4])
    .toBytes();
  const compiled = await compile(bytes, { x: [2, 3, 4], z: [2, 3, 4] });
  t.equal(compiled.stats.fusedElementwiseGroups, 1);
  t.equal(compiled.stats.dispatches, 1, 'one dispatch');
  const results = await compareWithOrt(bytes, new Map([['x', randomTensor([2, 3, 4], 12)], ['z', randomTensor([2, 3, 4], 13)]]));
  t.ok(results[0].maxAbs <= 1e-6, `max |Δ| ${results[0].maxAbs.toExponential(2)} ≤ 1e-6`);
});

t.test('a PyTorch-style shape subgraph is folded away at compile time', async (t) => {
  const bytes = new ModelBuilder({ opset: 13 })
    .input('x', 'float32', ['batch', 6])
    .initializer('zero', 'int64', [], [0n])
    .initializer('axes0', 'int64', [1], [0n])
    .initializer('tail', 'int64', [2], [2n, 3n])
    .node('Shape', ['x'], ['shape'])
    .node('Gather', ['shape', 'zero'], ['b'], { axis: 0 })
    .node('Unsqueeze', ['b', 'axes0'], ['b1'])
    .node('Concat', ['b1', 'tail'], ['target'], { axis: 0 })
    .node('Reshape', ['x', 'target'], ['r'])
    .node('Relu', ['r'], ['y'])
    .output('y', 'float32', ['batch', 2, 3])
    .toBytes();
  const compiled = await compile(bytes, { x: [4, 6] });
  t.ok(compiled.stats.foldedNodes >= 4, `folded ${compiled.stats.foldedNodes} nodes`);
  t.equal(compiled.stats.dispatches, 1, 'only the Relu dispatches (the Reshape is a view)');
  t.same(compiled.outputs[0].shape, [4, 2, 3]);
  const [result] = await compareWithOrt(bytes, new Map([['x', randomTensor([4, 6], 14)]]));
  t.equal(result.maxAbs, 0);
});

t.test('activation buffers are reused once their values are dead', async (t) => {
  const n = 64;
  const builder = new ModelBuilder({ opset: 17 }).input('x', 'float32', [n, n]);
  let previous = 'x';
  for (let i = 0; i < 8; i++) {
    builder.initializer(`w${i}`, 'float32', [n, n], values(n * n, 20 + i, -0.1, 0.1));
    builder.node('MatMul', [previous, `w${i}`], [`h${i}`]);
    builder.node('Tanh', [`h${i}`], [`t${i}`]);
    previous = `t${i}`;
  }
  const bytes = builder.output(previous, 'float32', [n, n]).toBytes();
  const compiled = await compile(bytes, { x: [n, n] });
  const tensorBytes = n * n * 4;
  t.ok(compiled.stats.activationBytes <= 4 * tensorBytes, `activation memory ${compiled.stats.activationBytes} B ≤ 4 tensors (16 values are produced)`);
  const [result] = await compareWithOrt(bytes, new Map([['x', randomTensor([n, n], 15)]]));
  t.ok(result.maxAbs <= 1e-5, `max |Δ| ${result.maxAbs.toExponential(2)} ≤ 1e-5`);
});

t.test('an unknown operator is reported at load with its name and node', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [2])
    .node('FancyNewOp', ['x'], ['y'], {}, { name: 'the_fancy_node' })
    .output('y', 'float32', [2])
    .toBytes();
  const engine = await sharedEngine();
  await expectEdgerunError(t, engine.loadModel(decodeModel(bytes)), 'EDGERUN_ERR_UNSUPPORTED_OP', /FancyNewOp/, /the_fancy_node/);
});

t.test('inputs of the wrong shape, dtype or name are refused with EDGERUN_ERR_INPUT', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [2, 3])
    .node('Relu', ['x'], ['y'])
    .output('y', 'float32', [2, 3])
    .toBytes();
  const engine = await sharedEngine();
  const session = await engine.loadModel(decodeModel(bytes));
  t.teardown(() => session.close());
  const bad = [
    new Map([['x', randomTensor([3, 2], 1)]]),
    new Map([['x', { dtype: 'int64' as const, dims: [2, 3], data: new Int32Array(6) }]]),
    new Map([['y', randomTensor([2, 3], 1)]]),
    new Map(),
  ];
  for (const feeds of bad) {
    await expectEdgerunError(t, session.run(feeds), 'EDGERUN_ERR_INPUT');
  }
  const ok = await session.run(new Map([['x', randomTensor([2, 3], 1)]]));
  t.same(ok.outputs.get('y')!.dims, [2, 3]);
});
