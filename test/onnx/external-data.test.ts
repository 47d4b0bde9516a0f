import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { decodeModel, loadModelFile } from '../../daemon/onnx/decode.ts';
import { ModelBuilder, onnx } from '../helpers/onnx-builder.ts';

/** A model whose initializer 'w' (float32 [4]) lives in an external file. */
function externalModel(entries: Record<string, string>): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', [4])
    .initializerProto({
      name: 'w',
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims: [4],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: Object.entries(entries).map(([key, value]) => ({ key, value })),
    })
    .node('Add', ['x', 'w'], ['y'])
    .output('y', 'float32', [4])
    .toBytes();
}

const weights = Float32Array.of(1.5, -2, 3.25, 4);
/** 8 bytes of padding, then the four weights, then 4 more bytes. */
function weightFile(): Buffer {
  const bytes = Buffer.alloc(8 + 16 + 4);
  Buffer.from(weights.buffer).copy(bytes, 8);
  return bytes;
}

t.test('external data inside the model folder is read at its offset, as onnxruntime reads it', async (t) => {
  const dir = t.testdir({ 'model.onnx.data': weightFile(), sub: { 'w.bin': Buffer.from(weights.buffer) } });
  const modelPath = path.join(dir, 'model.onnx');
  fs.writeFileSync(modelPath, externalModel({ location: 'model.onnx.data', offset: '8', length: '16' }));
  const model = await loadModelFile(modelPath);
  t.same(model.graph.initializers.get('w'), { dtype: 'float32', dims: [4], data: weights });

  const session = await ort.InferenceSession.create(modelPath, { logSeverityLevel: 3 });
  const result = await session.run({ x: new ort.Tensor('float32', new Float32Array(4), [4]) });
  t.same(Array.from(result.y.data as Float32Array), Array.from(weights), 'onnxruntime agrees');

  fs.writeFileSync(modelPath, externalModel({ location: 'sub/w.bin' }));
  t.same((await loadModelFile(modelPath)).graph.initializers.get('w')?.data, weights, 'a subfolder, no offset or length');
});

const rejected: { title: string; entries: Record<string, string>; message: RegExp }[] = [
  { title: 'a parent-folder location', entries: { location: '../secret.bin' }, message: /'w'.*relative path inside the model folder/ },
  { title: 'a nested parent-folder location', entries: { location: 'sub/../../secret.bin' }, message: /'w'.*relative path inside/ },
  { title: 'an absolute location', entries: { location: '/etc/passwd' }, message: /'w'.*relative path inside/ },
  { title: 'a missing file', entries: { location: 'absent.bin' }, message: /'w'.*'absent\.bin' cannot be found/ },
  { title: 'an offset past the end', entries: { location: 'model.onnx.data', offset: '20' }, message: /'w'.*\[20, 36\) lies outside.*28 bytes/ },
  { title: 'a length that disagrees with the dims', entries: { location: 'model.onnx.data', length: '12' }, message: /'w'.*length 12.*16 bytes/ },
  { title: 'a malformed offset', entries: { location: 'model.onnx.data', offset: '-4' }, message: /'w'.*offset '-4'/ },
  { title: 'no location', entries: { offset: '0' }, message: /'w'.*no location/ },
  { title: 'a folder as location', entries: { location: 'sub' }, message: /'w'.*not a regular file/ },
];

for (const { title, entries, message } of rejected) {
  t.test(`${title} is EDGERUN_ERR_ONNX_EXTERNAL_DATA naming the tensor`, async (t) => {
    const root = t.testdir({ 'secret.bin': weightFile(), models: { 'model.onnx.data': weightFile(), sub: {} } });
    const modelPath = path.join(root, 'models', 'model.onnx');
    fs.writeFileSync(modelPath, externalModel(entries));
    await t.rejects(loadModelFile(modelPath), { code: 'EDGERUN_ERR_ONNX_EXTERNAL_DATA', message });
  });
}

t.test('a symlink leading out of the model folder is EDGERUN_ERR_ONNX_EXTERNAL_DATA', async (t) => {
  const root = t.testdir({ 'secret.bin': weightFile(), models: { 'inside.bin': weightFile() } });
  fs.symlinkSync(path.join(root, 'secret.bin'), path.join(root, 'models', 'escape.bin'));
  fs.symlinkSync(path.join(root, 'models', 'inside.bin'), path.join(root, 'models', 'alias.bin'));
  const modelPath = path.join(root, 'models', 'model.onnx');
  fs.writeFileSync(modelPath, externalModel({ location: 'escape.bin', offset: '8' }));
  await t.rejects(loadModelFile(modelPath), { code: 'EDGERUN_ERR_ONNX_EXTERNAL_DATA', message: /'w'.*resolves outside/ });
  fs.writeFileSync(modelPath, externalModel({ location: 'alias.bin', offset: '8' }));
  t.same((await loadModelFile(modelPath)).graph.initializers.get('w')?.data, weights, 'a symlink within the folder is fine');
});

t.test('external data in bytes decoded without a base folder is rejected', async (t) => {
  t.throws(() => decodeModel(externalModel({ location: 'model.onnx.data' }), { source: 'upload' }),
    { code: 'EDGERUN_ERR_ONNX_EXTERNAL_DATA', message: /upload.*'w'.*without a base folder/ });
});
