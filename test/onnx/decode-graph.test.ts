import t from 'tap';
import { decodeModel } from '../../daemon/onnx/decode.ts';
import { GraphBuilder, ModelBuilder, onnx, floatAttr, floatsAttr, graphAttr, rawAttr, toLong } from '../helpers/onnx-builder.ts';

t.test('attributes decode into the tagged union, 64-bit ints saturated', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [1, 4])
    .node('Custom', ['x'], ['y'], {
      an_int: 3,
      a_float: 0.25,
      a_whole_float: floatAttr(2),
      some_ints: [1, -2, 3],
      some_floats: [0.5, 1.5],
      whole_floats: floatsAttr([1, 2]),
      a_string: 'nearest',
      some_strings: ['a', 'bc'],
      a_tensor: { dtype: 'float32', dims: [2], data: [1, 2] },
      huge: 9223372036854775807n,
      huge_list: rawAttr({ type: onnx.AttributeProto.AttributeType.INTS, ints: [toLong(-(2n ** 62n)), toLong(2n ** 40n), 5] }),
    }, { domain: 'com.example' })
    .output('y', 'float32', null)
    .toBytes();
  const node = decodeModel(bytes).graph.nodes[0];
  t.equal(node.domain, 'com.example');
  t.same(Object.fromEntries(node.attributes), {
    an_int: { type: 'int', value: 3 },
    a_float: { type: 'float', value: 0.25 },
    a_whole_float: { type: 'float', value: 2 },
    some_ints: { type: 'ints', value: [1, -2, 3] },
    some_floats: { type: 'floats', value: [0.5, 1.5] },
    whole_floats: { type: 'floats', value: [1, 2] },
    a_string: { type: 'string', value: 'nearest' },
    some_strings: { type: 'strings', value: ['a', 'bc'] },
    a_tensor: { type: 'tensor', value: { dtype: 'float32', dims: [2], data: Float32Array.of(1, 2) } },
    huge: { type: 'int', value: 2 ** 31 - 1 },
    huge_list: { type: 'ints', value: [-(2 ** 31), 2 ** 31 - 1, 5] },
  });
});

t.test('an attribute whose type field is unset is typed by the field that holds its value', async (t) => {
  const bytes = new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [2])
    .node('Custom', ['x'], ['y'], { legacy: rawAttr({ ints: [4, 5] }), legacy_s: rawAttr({ s: new TextEncoder().encode('abc') }) })
    .output('y', 'float32', null).toBytes();
  const node = decodeModel(bytes).graph.nodes[0];
  t.same(node.attributes.get('legacy'), { type: 'ints', value: [4, 5] });
  t.same(node.attributes.get('legacy_s'), { type: 'string', value: 'abc' });
});

t.test('unnamed nodes are named <opType>_<index>, clashing names get a suffix, ai.onnx is the default domain', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [2])
    .node('Relu', ['x'], ['a'])
    .node('Relu', ['a'], ['b'], {}, { name: 'Relu_0', domain: 'ai.onnx' })
    .node('Neg', ['b'], ['c'], {}, { name: 'negate' })
    .output('c', 'float32', [2]).toBytes());
  t.same(model.graph.nodes.map((n) => [n.name, n.domain]), [['Relu_0', ''], ['Relu_0_1', ''], ['negate', '']]);
});

t.test('opset imports map domains to versions, ai.onnx written as the empty domain', async (t) => {
  const builder = new ModelBuilder({ opset: 13, domains: { 'com.microsoft': 1 } })
    .input('x', 'float32', [1]).node('Identity', ['x'], ['y']).output('y', 'float32', [1]);
  const proto = builder.toProto();
  proto.opsetImport![0].domain = 'ai.onnx';
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create(proto)).finish();
  const model = decodeModel(bytes);
  t.same([...model.opsets], [['', 13], ['com.microsoft', 1]]);
  t.equal(model.irVersion, 8);
  t.equal(model.producer, 'edgerun-test-builder');
});

t.test('graph inputs that are also initializers are not real inputs', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 11 })
    .input('x', 'float32', [1, 2])
    .input('w', 'float32', [2, 2])
    .initializer('w', 'float32', [2, 2], [1, 0, 0, 1])
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'float32', [1, 2]).toBytes());
  t.same(model.graph.inputs.map((i) => i.name), ['x']);
  t.ok(model.graph.initializers.has('w'));
});

t.test('declared dims are numbers, dim_param names or null; a missing shape is null', async (t) => {
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 3, null])
    .input('flag', 'bool', null)
    .node('Identity', ['x'], ['y'])
    .output('y', 'float32', ['batch', 3, null]).toBytes());
  t.same(model.graph.inputs, [
    { name: 'x', dtype: 'float32', dims: ['batch', 3, null] },
    { name: 'flag', dtype: 'bool', dims: null },
  ]);
  t.same(model.graph.outputs, [{ name: 'y', dtype: 'float32', dims: ['batch', 3, null] }]);
});

t.test('inputs and outputs with element types edgerun cannot hold are rejected naming the value', async (t) => {
  const builder = new ModelBuilder({ opset: 17 }).input('text', 'float32', [1]).node('Identity', ['text'], ['y']).output('y', 'float32', [1]);
  const proto = builder.toProto();
  proto.graph!.input![0].type!.tensorType!.elemType = onnx.TensorProto.DataType.STRING;
  t.throws(() => decodeModel(onnx.ModelProto.encode(proto).finish()), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /'text'.*string/ });
  proto.graph!.input![0].type!.tensorType!.elemType = onnx.TensorProto.DataType.COMPLEX64;
  t.throws(() => decodeModel(onnx.ModelProto.encode(proto).finish()), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /'text'.*complex64/ });
  proto.graph!.input![0].type = { sequenceType: { elemType: { tensorType: { elemType: 1 } } } };
  t.throws(() => decodeModel(onnx.ModelProto.encode(proto).finish()), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /'text'.*sequenceType/ });
  proto.graph!.input![0].type = null;
  t.throws(() => decodeModel(onnx.ModelProto.encode(proto).finish()), { code: 'EDGERUN_ERR_ONNX_INVALID', message: /'text'.*without a type/ });
});

t.test('string initializers are rejected naming the tensor', async (t) => {
  const builder = new ModelBuilder({ opset: 17 })
    .initializerProto({ name: 'vocab', dataType: onnx.TensorProto.DataType.STRING, dims: [1], stringData: [new Uint8Array([65])] });
  t.throws(() => decodeModel(builder.toBytes()), { code: 'EDGERUN_ERR_UNSUPPORTED_OP', message: /vocab.*string/ });
});

t.test('subgraphs decode recursively, may read outer values, and are sorted too', async (t) => {
  const thenBranch = new GraphBuilder('then')
    .node('Add', ['t1', 'outer'], ['t2'])
    .node('Neg', ['outer'], ['t1'])
    .output('t2', 'float32', [2]);
  const elseBranch = new GraphBuilder('else').node('Identity', ['outer'], ['e1']).output('e1', 'float32', [2]);
  const model = decodeModel(new ModelBuilder({ opset: 17 })
    .input('cond', 'bool', [])
    .input('x', 'float32', [2])
    .node('If', ['cond'], ['y'], { then_branch: graphAttr(thenBranch), else_branch: graphAttr(elseBranch) })
    .node('Relu', ['x'], ['outer'])
    .output('y', 'float32', [2]).toBytes());
  t.same(model.graph.nodes.map((n) => n.opType), ['Relu', 'If'], 'the If waits for the value its branch reads');
  const then = model.graph.nodes[1].attributes.get('then_branch');
  t.equal(then?.type, 'graph');
  if (then?.type === 'graph') {
    t.equal(then.value.name, 'then');
    t.same(then.value.nodes.map((n) => n.opType), ['Neg', 'Add']);
  }
});
