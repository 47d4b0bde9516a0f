import os from 'node:os';
import t from 'tap';
import { WebGpuEngine } from '../../daemon/engine/webgpu-engine.ts';
import { postJson, startServing } from './helpers/serving.ts';

process.env.XDG_RUNTIME_DIR ??= os.tmpdir();

const engine = await WebGpuEngine.create();
const { app, telemetry } = await startServing(t, { engine, load: ['example'] });
// Registered after the serving teardown, so sessions close before their engine.
t.teardown(() => engine.close());

t.test('the same protocol requests are served through the WebGPU engine', async (t) => {
  const res = await postJson(app, '/v2/models/example/infer', {
    id: 'gpu', inputs: [{ name: 'input-0', shape: [2, 3], datatype: 'FP32', data: [[1, -2, 0.5], [-1, 4, 3]] }],
  });
  t.equal(res.statusCode, 200, res.body);
  t.same(res.json(), {
    model_name: 'example', model_version: '1', id: 'gpu',
    outputs: [
      { name: 'output-0', datatype: 'FP32', shape: [2, 3], data: [2, -4, 1, -2, 8, 6] },
      { name: 'argmax', datatype: 'INT64', shape: [2], data: [0, 1] },
    ],
  });
  const metadata = await app.inject({ method: 'GET', url: '/v2/models/example' });
  t.same(metadata.json().inputs, [{ name: 'input-0', datatype: 'FP32', shape: [-1, -1] }]);
  t.equal(telemetry.requests.at(-1)?.engine, 'webgpu');
});
