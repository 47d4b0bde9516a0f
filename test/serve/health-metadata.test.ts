import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { build } from '../../daemon/serve/app.ts';
import { MemoryModelRegistry } from './helpers/memory-registry.ts';
import { postJson, startServing } from './helpers/serving.ts';

const serving = await startServing(t, { load: ['example', 'typed'] });
const { app, registry, engine, models } = serving;
const get = (url: string) => app.inject({ method: 'GET', url });

t.test('live and ready answer 200 with an empty body when a model is ready', async (t) => {
  for (const url of ['/v2/health/live', '/v2/health/ready']) {
    const res = await get(url);
    t.equal(res.statusCode, 200, url);
    t.equal(res.body, '', url);
  }
});

t.test('ready is a 400 while no model is ready; live stays 200', async (t) => {
  const empty = new MemoryModelRegistry(engine, { example: models.example });
  const bare = await build({ registry: empty, metricsRegistry: new Registry() });
  t.teardown(() => bare.close());
  t.equal((await bare.inject({ method: 'GET', url: '/v2/health/live' })).statusCode, 200);
  const ready = await bare.inject({ method: 'GET', url: '/v2/health/ready' });
  t.equal(ready.statusCode, 400);
  t.same(ready.json(), { error: 'no model is ready to serve', code: 'EDGERUN_ERR_MODEL_NOT_READY' });
});

t.test('GET /v2 is the server metadata: name, package version, extensions', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  for (const url of ['/v2', '/v2/']) {
    const res = await get(url);
    t.equal(res.statusCode, 200, url);
    t.same(res.json(), { name: 'edgerun', version: pkg.version, extensions: ['binary_tensor_data', 'model_repository'] });
  }
});

t.test('model metadata lists versions, platform and tensors with protocol datatypes and -1 for dynamic dims', async (t) => {
  const example = await get('/v2/models/example');
  t.equal(example.statusCode, 200);
  t.same(example.json(), {
    name: 'example', versions: ['1'], platform: 'onnx',
    inputs: [{ name: 'input-0', datatype: 'FP32', shape: [-1, -1] }],
    outputs: [{ name: 'output-0', datatype: 'FP32', shape: [-1, -1] }, { name: 'argmax', datatype: 'INT64', shape: [-1] }],
  });
  const typed = (await get('/v2/models/typed/versions/1')).json();
  t.same(typed.versions, ['1']);
  t.same(typed.inputs, [
    { name: 'ids', datatype: 'INT64', shape: [-1] }, { name: 'mask', datatype: 'BOOL', shape: [-1] },
    { name: 'half', datatype: 'FP16', shape: [2] }, { name: 'small', datatype: 'INT8', shape: [3] },
    { name: 'fixed', datatype: 'FP32', shape: [1, 3] },
  ]);
});

t.test('unknown models and versions are a 404 naming them', async (t) => {
  const cases: [string, string][] = [
    ['/v2/models/nope', "no model 'nope'"],
    ['/v2/models/example/versions/7', "model 'example' has no version '7' (it has: 1)"],
    ['/v2/models/nope/ready', "no model 'nope'"],
    ['/v2/models/example/versions/7/ready', "model 'example' has no version '7' (it has: 1)"],
  ];
  for (const [url, error] of cases) {
    const res = await get(url);
    t.equal(res.statusCode, 404, url);
    t.same(res.json(), { error, code: 'EDGERUN_ERR_MODEL_NOT_FOUND' }, url);
  }
});

t.test('model readiness follows the registry: ready, a second version, a failed version', async (t) => {
  t.equal((await get('/v2/models/example/ready')).statusCode, 200);
  t.equal((await get('/v2/models/example/versions/1/ready')).statusCode, 200);

  await registry.addVersion('example', '2', models.example, { activate: false });
  t.equal((await get('/v2/models/example/versions/2/ready')).statusCode, 200);
  t.same((await get('/v2/models/example')).json().versions, ['1', '2']);
  const body = { inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [3, 1] }] };
  t.equal((await postJson(app, '/v2/models/example/versions/2/infer', body)).json().model_version, '2');
  t.equal((await postJson(app, '/v2/models/example/infer', body)).json().model_version, '1', 'unversioned requests go to the active version');

  const corrupt = path.join(models.dir, 'corrupt.onnx');
  fs.writeFileSync(corrupt, 'not an onnx model');
  await registry.addVersion('example', '3', corrupt);
  const failed = await get('/v2/models/example/versions/3/ready');
  t.equal(failed.statusCode, 400);
  t.match(failed.json(), { code: 'EDGERUN_ERR_MODEL_NOT_READY', error: /^model 'example' version 3 is FAILED: onnxruntime could not load/ });
  t.equal((await get('/v2/models/example/ready')).statusCode, 200, 'the active version still serves');
  const infer = await postJson(app, '/v2/models/example/versions/3/infer', body);
  t.equal(infer.statusCode, 503);
  t.equal(infer.json().code, 'EDGERUN_ERR_MODEL_NOT_READY');
});
