import t from 'tap';
import { postJson, startServing } from './helpers/serving.ts';

const { app, registry } = await startServing(t, { load: ['example', 'typed'] });

const exampleInput = (overrides: object = {}) => ({ name: 'input-0', shape: [1, 2], datatype: 'FP32', data: [1, 2], ...overrides });
const typedInputs = () => [
  { name: 'ids', shape: [2], datatype: 'INT64', data: [1, 2] },
  { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] },
  { name: 'half', shape: [2], datatype: 'FP16', data: [1, 2] },
  { name: 'small', shape: [3], datatype: 'INT8', data: [1, 2, 3] },
  { name: 'fixed', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] },
];
const withTyped = (name: string, overrides: object) => ({ inputs: typedInputs().map((i) => (i.name === name ? { ...i, ...overrides } : i)) });

/** [what is wrong, model, body, expected message] — every one must be a 400 EDGERUN_ERR_REQUEST naming the field. */
const cases: [string, string, unknown, RegExp][] = [
  ['a JSON array body', 'example', [], /^body: must be a JSON object with "inputs"$/],
  ['no inputs', 'example', { outputs: [] }, /^inputs: must be a non-empty array of input tensors$/],
  ['empty inputs', 'example', { inputs: [] }, /^inputs: must be a non-empty array/],
  ['an input that is not an object', 'example', { inputs: [42] }, /^inputs\[0\]: must be an object with name, shape, datatype and data$/],
  ['an input without a name', 'example', { inputs: [exampleInput({ name: undefined })] }, /^inputs\[0\]\.name: must be a string$/],
  ['an unknown input name', 'example', { inputs: [exampleInput({ name: 'x' })] }, /^inputs\[0\]\.name: the model has no input 'x' \(its inputs: input-0\)$/],
  ['an unknown datatype', 'example', { inputs: [exampleInput({ datatype: 'FLOAT32' })] }, /^inputs\[0\]\.datatype: must be a tensor datatype such as FP32, INT64 or BOOL, got "FLOAT32"$/],
  ['the wrong datatype', 'example', { inputs: [exampleInput({ datatype: 'INT32' })] }, /^inputs\[0\]\.datatype: input 'input-0' is FP32, got INT32$/],
  ['a shape that is not an array', 'example', { inputs: [exampleInput({ shape: 2 })] }, /^inputs\[0\]\.shape: must be an array of non-negative integers$/],
  ['a negative dim', 'example', { inputs: [exampleInput({ shape: [-1, 2] })] }, /^inputs\[0\]\.shape\[0\]: must be a non-negative integer, got -1$/],
  ['a fractional dim', 'example', { inputs: [exampleInput({ shape: [1, 2.5] })] }, /^inputs\[0\]\.shape\[1\]: must be a non-negative integer, got 2\.5$/],
  ['the wrong rank', 'example', { inputs: [exampleInput({ shape: [2] })] }, /^inputs\[0\]\.shape: input 'input-0' must have shape \[-1, -1\] \(-1: any size\), got \[2\]$/],
  ['a fixed dim that differs', 'typed', withTyped('fixed', { shape: [1, 4], data: [1, 2, 3, 4] }), /^inputs\[4\]\.shape: input 'fixed' must have shape \[1, 3\] \(-1: any size\), got \[1, 4\]$/],
  ['too few elements', 'example', { inputs: [exampleInput({ shape: [2, 2] })] }, /^inputs\[0\]\.data has 2 elements but the shape needs 4$/],
  ['too many elements', 'example', { inputs: [exampleInput({ data: [1, 2, 3] })] }, /^inputs\[0\]\.data has more than 2 elements but the shape needs 2$/],
  ['data that is not an array', 'example', { inputs: [exampleInput({ data: 'AAAA' })] }, /^inputs\[0\]\.data must be an array of tensor elements$/],
  ['no data and no binary size', 'example', { inputs: [exampleInput({ data: undefined })] }, /^inputs\[0\]\.data: is required/],
  ['a string in FP32 data', 'example', { inputs: [exampleInput({ data: [1, '2'] })] }, /^inputs\[0\]\.data\[1\] must be a number for FP32, got "2"$/],
  ['null in FP32 data', 'example', { inputs: [exampleInput({ data: [null, 2] })] }, /^inputs\[0\]\.data\[0\] must be a number for FP32, got null$/],
  ['an FP32 overflow', 'example', { inputs: [exampleInput({ data: [1e39, 2] })] }, /^inputs\[0\]\.data\[0\]: 1e\+39 overflows FP32$/],
  ['an FP16 overflow', 'typed', withTyped('half', { data: [70000, 1] }), /^inputs\[2\]\.data\[0\]: 70000 overflows FP16$/],
  ['a number for BOOL', 'typed', withTyped('mask', { data: [1, 0] }), /^inputs\[1\]\.data\[0\] must be true or false for BOOL, got 1$/],
  ['a fraction for INT64', 'typed', withTyped('ids', { data: [1.5, 2] }), /^inputs\[0\]\.data\[0\] must be an integer for INT64, got 1\.5$/],
  ['INT64 beyond int32', 'typed', withTyped('ids', { data: [1, 2 ** 40] }), /^inputs\[0\]\.data\[1\]: 1099511627776 is outside the range edgerun holds INT64 values in \(-2147483648\.\.2147483647\)$/],
  ['INT8 out of range', 'typed', withTyped('small', { data: [1, 200, 3] }), /^inputs\[3\]\.data\[1\]: 200 is outside the range edgerun holds INT8 values in \(-128\.\.127\)$/],
  ['a missing input', 'typed', { inputs: typedInputs().filter((i) => i.name !== 'mask') }, /^inputs: the model's input 'mask' \(BOOL \[-1\]\) is missing$/],
  ['an input given twice', 'example', { inputs: [exampleInput(), exampleInput()] }, /^inputs\[1\]\.name: input 'input-0' is given twice$/],
  ['outputs that is not an array', 'example', { inputs: [exampleInput()], outputs: {} }, /^outputs: must be an array$/],
  ['an unknown output', 'example', { inputs: [exampleInput()], outputs: [{ name: 'logits' }] }, /^outputs\[0\]\.name: the model has no output 'logits' \(its outputs: output-0, argmax\)$/],
  ['an output asked twice', 'example', { inputs: [exampleInput()], outputs: [{ name: 'argmax' }, { name: 'argmax' }] }, /^outputs\[1\]\.name: output 'argmax' is requested twice$/],
  ['binary_data that is not a boolean', 'example', { inputs: [exampleInput()], outputs: [{ name: 'argmax', parameters: { binary_data: 'yes' } }] }, /^outputs\[0\]\.parameters\.binary_data: must be true or false$/],
  ['a classification output', 'example', { inputs: [exampleInput()], outputs: [{ name: 'argmax', parameters: { classification: 3 } }] }, /classification extension is not supported/],
  ['a shared-memory input', 'example', { inputs: [exampleInput({ parameters: { shared_memory_region: 'r0' } })] }, /^inputs\[0\]\.parameters\.shared_memory_region: shared-memory tensors are not supported$/],
  ['a numeric id', 'example', { id: 42, inputs: [exampleInput()] }, /^id: must be a string$/],
  ['parameters that are not an object', 'example', { parameters: [], inputs: [exampleInput()] }, /^parameters: must be an object$/],
  ['binary_data_output that is not a boolean', 'example', { parameters: { binary_data_output: 1 }, inputs: [exampleInput()] }, /^parameters\.binary_data_output: must be true or false$/],
  ['data nested absurdly deep', 'example', { inputs: [exampleInput({ data: JSON.parse('['.repeat(40) + ']'.repeat(40)) })] }, /^inputs\[0\]\.data is nested deeper than 32 levels$/],
];

t.test('every malformed inference request is a 400 naming the field', async (t) => {
  for (const [what, model, body, pattern] of cases) {
    const res = await postJson(app, `/v2/models/${model}/infer`, body);
    t.equal(res.statusCode, 400, `${what}: status`);
    const reply = res.json();
    t.equal(reply.code, 'EDGERUN_ERR_REQUEST', `${what}: code`);
    t.match(reply.error, pattern, `${what}: message`);
  }
});

t.test('bodies that are not JSON, or empty, are a 400', async (t) => {
  for (const payload of ['{"inputs": [', 'not json', '']) {
    const res = await app.inject({ method: 'POST', url: '/v2/models/example/infer', headers: { 'content-type': 'application/json' }, payload });
    t.equal(res.statusCode, 400, JSON.stringify(payload));
    t.match(res.json().error, payload === '' ? /^body: the request body is empty/ : /^body: not valid JSON/);
  }
});

t.test('unknown models are a 404; routes that do not exist are a 404 with the error body', async (t) => {
  const res = await postJson(app, '/v2/models/nope/infer', { inputs: [exampleInput()] });
  t.equal(res.statusCode, 404);
  t.same(res.json(), { error: "no model 'nope'", code: 'EDGERUN_ERR_MODEL_NOT_FOUND' });
  const wrongMethod = await app.inject({ method: 'GET', url: '/v2/models/example/infer' });
  t.equal(wrongMethod.statusCode, 404);
  t.match(wrongMethod.json(), { error: 'no endpoint GET /v2/models/example/infer', code: 'EDGERUN_ERR_REQUEST' });
});

t.test('after every refused request the server still serves, and no lease was leaked', async (t) => {
  const res = await postJson(app, '/v2/models/example/infer', { inputs: [exampleInput()] });
  t.equal(res.statusCode, 200);
  t.same(res.json().outputs[0].data, [2, 4]);
  t.equal(registry.inFlight('example', '1'), 0);
  t.equal(registry.inFlight('typed', '1'), 0);
  t.ok(registry.releases.every((r) => r.outcome === undefined || r.outcome.ok), 'refused requests never count against the model');
});
