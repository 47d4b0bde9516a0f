import t from 'tap';
import { postJson, startServing } from './helpers/serving.ts';

const { app, registry } = await startServing(t, { load: ['example', 'slow'] });
const exampleBody = { inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] };

t.test('the repository index lists every model version with its state; ready: true filters', async (t) => {
  const res = await app.inject({ method: 'POST', url: '/v2/repository/index' });
  t.equal(res.statusCode, 200);
  t.same(res.json(), [
    { name: 'example', version: '1', state: 'READY' },
    { name: 'mymodel', state: 'UNAVAILABLE', reason: 'no version' },
    { name: 'typed', state: 'UNAVAILABLE', reason: 'no version' },
    { name: 'slow', version: '1', state: 'READY' },
  ]);
  const ready = await postJson(app, '/v2/repository/index', { ready: true });
  t.same(ready.json().map((e: { name: string }) => e.name), ['example', 'slow']);
  const emptyJson = await app.inject({ method: 'POST', url: '/v2/repository/index', headers: { 'content-type': 'application/json' } });
  t.equal(emptyJson.statusCode, 200, 'an empty body with a JSON content type is fine (curl -X POST)');
  const bad = await postJson(app, '/v2/repository/index', { ready: 'yes' });
  t.equal(bad.statusCode, 400);
  t.same(bad.json(), { error: 'ready: must be true or false', code: 'EDGERUN_ERR_REQUEST' });
});

t.test('load brings a model up; loading again swaps in a new version and infer reports it', async (t) => {
  const load = await app.inject({ method: 'POST', url: '/v2/repository/models/mymodel/load' });
  t.equal(load.statusCode, 200, load.body);
  t.equal((await app.inject({ method: 'GET', url: '/v2/models/mymodel/ready' })).statusCode, 200);

  const reload = await postJson(app, '/v2/repository/models/example/load', {});
  t.equal(reload.statusCode, 200, reload.body);
  t.equal((await postJson(app, '/v2/models/example/infer', exampleBody)).json().model_version, '2');
  const index = (await app.inject({ method: 'POST', url: '/v2/repository/index' })).json();
  t.same(index.filter((e: { name: string }) => e.name === 'example'), [
    { name: 'example', version: '1', state: 'UNAVAILABLE', reason: 'replaced' },
    { name: 'example', version: '2', state: 'READY' },
  ]);
});

t.test('load refuses unknown models and request-supplied configurations or files', async (t) => {
  const unknown = await app.inject({ method: 'POST', url: '/v2/repository/models/nope/load' });
  t.equal(unknown.statusCode, 404);
  t.same(unknown.json(), { error: "no model 'nope' in the models folder", code: 'EDGERUN_ERR_MODEL_NOT_FOUND' });
  for (const key of ['config', 'file:1/model.onnx']) {
    const res = await postJson(app, '/v2/repository/models/example/load', { parameters: { [key]: '{}' } });
    t.equal(res.statusCode, 400, key);
    t.match(res.json().error, /not supported/);
  }
  const notJson = await app.inject({ method: 'POST', url: '/v2/repository/models/example/load', headers: { 'content-type': 'application/json' }, payload: '{' });
  t.equal(notJson.statusCode, 400);
  t.match(notJson.json().error, /^body of repository load: not valid JSON/);
});

t.test('unload drains in-flight requests before freeing the session; later requests get 503', async (t) => {
  const rows = 2048;
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 256], datatype: 'FP32', parameters: { binary_data_size: rows * 1024 } }] }));
  const inflight = app.inject({
    method: 'POST', url: '/v2/models/slow/infer', payload: Buffer.concat([header, Buffer.alloc(rows * 1024)]),
    headers: { 'inference-header-content-length': String(header.length) },
  });
  while (registry.inFlight('slow', '1') === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  const unload = app.inject({ method: 'POST', url: '/v2/repository/models/slow/unload' });
  const [served, unloaded] = await Promise.all([inflight, unload]);
  t.equal(served.statusCode, 200, 'the in-flight request finished on its session');
  t.equal(served.json().outputs[0].shape[0], rows);
  t.equal(unloaded.statusCode, 200);
  const after = await postJson(app, '/v2/models/slow/infer', { inputs: [{ name: 'x', shape: [1, 256], datatype: 'FP32', data: new Array(256).fill(0) }] });
  t.equal(after.statusCode, 503);
  t.same(after.json(), { error: "model 'slow' has no active version", code: 'EDGERUN_ERR_MODEL_NOT_READY' });
  const ready = await app.inject({ method: 'GET', url: '/v2/models/slow/ready' });
  t.equal(ready.statusCode, 400);
  t.match(ready.json().error, /no active version/);
  t.equal((await app.inject({ method: 'POST', url: '/v2/repository/models/nope/unload' })).statusCode, 404);
});
