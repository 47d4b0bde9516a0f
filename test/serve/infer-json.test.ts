import t from 'tap';
import { postJson, startServing } from './helpers/serving.ts';

const serving = await startServing(t);
const { app } = serving;

t.test('the KServe v2 REST example with nested FP32 data works unchanged', async (t) => {
  // Open Inference Protocol docs: "inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]
  const res = await postJson(app, '/v2/models/example/infer', {
    inputs: [{ name: 'input-0', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] }],
  });
  t.equal(res.statusCode, 200, res.body);
  t.match(res.headers['content-type'], /application\/json/);
  t.same(res.json(), {
    model_name: 'example',
    model_version: '1',
    outputs: [
      { name: 'output-0', datatype: 'FP32', shape: [2, 2], data: [2, 4, 6, 8] },
      { name: 'argmax', datatype: 'INT64', shape: [2], data: [1, 1] },
    ],
  });
});

t.test("KServe's sklearn iris v2 request (input-0, FP32 [2, 4], nested rows) works unchanged", async (t) => {
  const body = {
    inputs: [{
      name: 'input-0',
      shape: [2, 4],
      datatype: 'FP32',
      data: [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]],
    }],
  };
  const res = await postJson(app, '/v2/models/example/infer', body);
  t.equal(res.statusCode, 200, res.body);
  const [doubled, argmax] = res.json().outputs;
  t.same(doubled.shape, [2, 4]);
  t.same(doubled.data, [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6].map((v) => Math.fround(Math.fround(v) * 2)));
  t.same(argmax.data, [0, 0]);
});

t.test('the protocol spec request example: its BOOL input has 1 value for shape [3], which is refused naming the field', async (t) => {
  // Verbatim from the KServe v2 spec ("Inference Request Examples"); the spec's own example is inconsistent.
  const verbatim = {
    id: '42',
    inputs: [
      { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
      { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] },
    ],
    outputs: [{ name: 'output0' }],
  };
  const refused = await postJson(app, '/v2/models/mymodel/infer', verbatim);
  t.equal(refused.statusCode, 400);
  t.same(refused.json(), { error: 'inputs[1].data has 1 elements but the shape needs 3', code: 'EDGERUN_ERR_REQUEST' });

  verbatim.inputs[1].data = [true, false, true];
  const res = await postJson(app, '/v2/models/mymodel/infer', verbatim);
  t.equal(res.statusCode, 200, res.body);
  t.same(res.json(), {
    model_name: 'mymodel',
    model_version: '1',
    id: '42',
    outputs: [{ name: 'output0', datatype: 'FP32', shape: [2, 2], data: [1, 2, 3, 4] }],
  });
});

t.test('outputs selects and orders the returned tensors; BOOL comes back as JSON booleans', async (t) => {
  const res = await postJson(app, '/v2/models/mymodel/infer', {
    inputs: [
      { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [[7, 0], [2147483647, 1]] },
      { name: 'input1', shape: [3], datatype: 'BOOL', data: [true, false, false] },
    ],
    outputs: [{ name: 'output2' }, { name: 'output1', parameters: { binary_data: false } }],
  });
  t.equal(res.statusCode, 200, res.body);
  t.same(res.json().outputs, [
    { name: 'output2', datatype: 'BOOL', shape: [3], data: [false, true, true] },
    { name: 'output1', datatype: 'UINT32', shape: [2, 2], data: [7, 0, 2147483647, 1] },
  ]);
});

t.test('INT64, BOOL, FP16 and INT8 inputs and outputs convert both ways', async (t) => {
  const res = await postJson(app, '/v2/models/typed/infer', {
    inputs: [
      { name: 'ids', shape: [3], datatype: 'INT64', data: [-7, 0, 41] },
      { name: 'mask', shape: [3], datatype: 'BOOL', data: [true, true, false] },
      { name: 'half', shape: [2], datatype: 'FP16', data: [0.5, -2] },
      { name: 'small', shape: [3], datatype: 'INT8', data: [-128, 5, 127] },
      { name: 'fixed', shape: [1, 3], datatype: 'FP32', data: [[0.25, 0.5, 0.75]] },
    ],
  });
  t.equal(res.statusCode, 200, res.body);
  const outputs = Object.fromEntries(res.json().outputs.map((o: { name: string }) => [o.name, o]));
  t.same(outputs.ids_next, { name: 'ids_next', datatype: 'INT64', shape: [3], data: [-6, 1, 42] });
  t.same(outputs.ids_wide.data, [-2147483648, 0, 2147483647], 'int64 beyond int32 saturates (the IR holds int32)');
  t.same(outputs.mask_not.data, [false, false, true]);
  t.same(outputs.half_twice, { name: 'half_twice', datatype: 'FP16', shape: [2], data: [1, -4] });
  t.same(outputs.small_out, { name: 'small_out', datatype: 'INT8', shape: [3], data: [-128, 5, 127] });
  t.same(outputs.fixed_out.shape, [1, 3]);
});

t.test('a versioned URL serves exactly that version and reports it', async (t) => {
  const body = { inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [1, -1] }] };
  const res = await postJson(app, '/v2/models/example/versions/1/infer', body);
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json().model_version, '1');
  const missing = await postJson(app, '/v2/models/example/versions/9/infer', body);
  t.equal(missing.statusCode, 404);
  t.same(missing.json(), { error: "model 'example' has no version '9'", code: 'EDGERUN_ERR_MODEL_NOT_FOUND' });
});

t.test('request ids are echoed; unknown top-level fields such as model_name are ignored', async (t) => {
  const res = await postJson(app, '/v2/models/example/infer', {
    id: 'req-7', model_name: 'example', parameters: { priority: 1 },
    inputs: [{ name: 'input-0', shape: [1, 1], datatype: 'FP32', data: [3], parameters: { content_type: 'np' } }],
  });
  t.equal(res.statusCode, 200, res.body);
  t.equal(res.json().id, 'req-7');
  t.same(res.json().outputs[0].data, [6]);
});

t.test('an application/json body without content-type, or with a charset, is accepted', async (t) => {
  const payload = JSON.stringify({ inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] });
  for (const headers of [{}, { 'content-type': 'application/json; charset=utf-8' }, { 'content-type': 'text/plain' }]) {
    const res = await app.inject({ method: 'POST', url: '/v2/models/example/infer', headers, payload });
    t.equal(res.statusCode, 200, `${JSON.stringify(headers)}: ${res.body}`);
  }
});

t.test('every request released its lease and reported telemetry', async (t) => {
  t.equal(serving.registry.inFlight('example', '1'), 0);
  t.equal(serving.registry.inFlight('mymodel', '1'), 0);
  const ok = serving.telemetry.requests.filter((r) => r.ok);
  t.ok(ok.length >= 8);
  for (const record of ok) {
    t.equal(record.engine, 'onnxruntime-cpu');
    t.ok(record.totalMs >= record.computeMs, `total ${record.totalMs} ≥ compute ${record.computeMs}`);
    t.ok(record.computeMs > 0);
  }
  const refused = serving.telemetry.requests.find((r) => !r.ok && r.model === 'mymodel');
  t.match(refused, { ok: false, error: 'EDGERUN_ERR_REQUEST', version: '1' });
  t.same(serving.telemetry.requests.find((r) => r.model === 'example' && r.batchSize === 2)?.batchSize, 2);
});
