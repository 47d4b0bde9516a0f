import t from 'tap';
import { startServing } from './helpers/serving.ts';

const { app } = await startServing(t, { load: ['example', 'mymodel'] });

/** A body of the binary tensor data extension: JSON header, then the tensors' bytes. */
function binaryBody(header: unknown, ...tensors: Uint8Array[]): { payload: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { payload: Buffer.concat([json, ...tensors.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]), headerLength: json.length };
}

/** The error body of a failed reply (a binary success body would garble the TAP output). */
function failure(res: { statusCode: number; body: string }): string {
  return res.statusCode === 200 ? 'status 200' : res.body;
}

function splitResponse(body: Buffer, headerLength: number): { header: any; binary: Buffer } {
  return { header: JSON.parse(body.subarray(0, headerLength).toString('utf8')), binary: body.subarray(headerLength) };
}

t.test("Triton's binary tensor data example works unchanged", async (t) => {
  // The request of Triton's docs/protocol/extension_binary_data.md, with its 16 + 3 bytes of tensor data.
  const { payload, headerLength } = binaryBody({
    model_name: 'mymodel',
    inputs: [
      { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
      { name: 'input1', shape: [3], datatype: 'BOOL', parameters: { binary_data_size: 3 } },
    ],
    outputs: [
      { name: 'output0', parameters: { binary_data: true } },
      { name: 'output1' },
    ],
  }, new Uint8Array(Uint32Array.of(10, 20, 30, 4000000).buffer), Uint8Array.of(1, 0, 1));
  const res = await app.inject({
    method: 'POST', url: '/v2/models/mymodel/infer', payload,
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
  });
  t.equal(res.statusCode, 200, failure(res));
  t.equal(res.headers['content-type'], 'application/octet-stream');
  const responseHeaderLength = Number(res.headers['inference-header-content-length']);
  const { header, binary } = splitResponse(res.rawPayload, responseHeaderLength);
  t.same(header, {
    model_name: 'mymodel',
    model_version: '1',
    outputs: [
      { name: 'output0', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } },
      { name: 'output1', datatype: 'UINT32', shape: [2, 2], data: [10, 20, 30, 4000000] },
    ],
  });
  t.equal(binary.length, 16);
  t.same([...new Float32Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + 16))], [10, 20, 30, 4000000]);
});

t.test('the Inference-Header-Content-Length header alone marks a binary request, whatever the content type', async (t) => {
  const { payload, headerLength } = binaryBody({
    inputs: [{ name: 'input-0', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }],
  }, new Uint8Array(Float32Array.of(1.5, -2, 9).buffer));
  const res = await app.inject({ method: 'POST', url: '/v2/models/example/infer', payload, headers: { 'inference-header-content-length': String(headerLength) } });
  t.equal(res.statusCode, 200, failure(res));
  t.same(res.json().outputs, [
    { name: 'output-0', datatype: 'FP32', shape: [1, 3], data: [3, -4, 18] },
    { name: 'argmax', datatype: 'INT64', shape: [1], data: [2] },
  ]);
});

t.test('parameters.binary_data_output returns every output as binary data, INT64 as 8-byte little-endian', async (t) => {
  const res = await app.inject({
    method: 'POST', url: '/v2/models/example/infer', headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ parameters: { binary_data_output: true }, inputs: [{ name: 'input-0', shape: [2, 2], datatype: 'FP32', data: [1, 5, 7, 3] }] }),
  });
  t.equal(res.statusCode, 200, failure(res));
  const { header, binary } = splitResponse(res.rawPayload, Number(res.headers['inference-header-content-length']));
  t.same(header.outputs.map((o: any) => [o.name, o.parameters.binary_data_size, 'data' in o]), [['output-0', 16, false], ['argmax', 16, false]]);
  const bytes = binary.buffer.slice(binary.byteOffset, binary.byteOffset + binary.length);
  t.same([...new Float32Array(bytes, 0, 4)], [2, 10, 14, 6]);
  t.same([...new BigInt64Array(bytes, 16, 2)], [1n, 0n]);
});

t.test('binary FP32 data may hold NaN and Infinity; JSON outputs carry them as null, binary outputs exactly', async (t) => {
  const { payload, headerLength } = binaryBody({
    inputs: [{ name: 'input-0', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }],
    outputs: [{ name: 'output-0' }],
  }, new Uint8Array(Float32Array.of(NaN, Infinity, 1).buffer));
  const headers = { 'inference-header-content-length': String(headerLength) };
  const res = await app.inject({ method: 'POST', url: '/v2/models/example/infer', payload, headers });
  t.equal(res.statusCode, 200, failure(res));
  t.same(res.json().outputs[0].data, [null, null, 2]);

  const binaryOut = binaryBody({
    inputs: [{ name: 'input-0', shape: [1, 3], datatype: 'FP32', parameters: { binary_data_size: 12 } }],
    outputs: [{ name: 'output-0', parameters: { binary_data: true } }],
  }, new Uint8Array(Float32Array.of(NaN, -Infinity, 1).buffer));
  const exact = await app.inject({ method: 'POST', url: '/v2/models/example/infer', payload: binaryOut.payload, headers: { 'inference-header-content-length': String(binaryOut.headerLength) } });
  const { binary } = splitResponse(exact.rawPayload, Number(exact.headers['inference-header-content-length']));
  t.same([...new Float32Array(binary.buffer.slice(binary.byteOffset, binary.byteOffset + 12))], [NaN, -Infinity, 2]);
});

t.test('inconsistent binary requests are refused with the field named', async (t) => {
  const fp32 = (values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
  const input = (size: number, extra: object = {}) => ({ inputs: [{ name: 'input-0', shape: [1, 2], datatype: 'FP32', parameters: { binary_data_size: size }, ...extra }] });
  const cases: [string, Buffer, string, RegExp][] = [];
  const add = (name: string, header: object, tensors: Uint8Array[], pattern: RegExp, headerLengthDelta = 0) => {
    const { payload, headerLength } = binaryBody(header, ...tensors);
    cases.push([name, payload, String(headerLength + headerLengthDelta), pattern]);
  };
  add('size disagrees with the shape', input(12), [fp32([1, 2, 3])], /inputs\[0\]\.parameters\.binary_data_size: is 12 bytes but shape \[1, 2\] of FP32 needs 8/);
  add('fewer bytes than declared', input(8), [fp32([1])], /binary_data_size: needs 8 bytes at offset 0 of the binary data, which holds 4/);
  add('bytes left over', input(8), [fp32([1, 2, 3])], /4 bytes of binary data follow the JSON header that no input's binary_data_size accounts for/);
  add('data and binary_data_size together', input(8, { data: [1, 2] }), [fp32([1, 2])], /inputs\[0\]\.data: must be absent when parameters\.binary_data_size is given/);
  add('negative size', input(-8), [], /binary_data_size: must be a non-negative integer, got -8/);
  add('header length beyond the body', input(8), [fp32([1, 2])], /Inference-Header-Content-Length: must be an integer from 0 to the body length/, 1000);
  add('header length cutting the JSON', input(8), [fp32([1, 2])], /body: not valid JSON/, -5);
  cases.push(['header length not a number', Buffer.from('{}'), 'twelve', /Inference-Header-Content-Length: must be an integer/]);
  for (const [name, payload, headerLength, pattern] of cases) {
    const res = await app.inject({ method: 'POST', url: '/v2/models/example/infer', payload, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': headerLength } });
    t.equal(res.statusCode, 400, name);
    t.equal(res.json().code, 'EDGERUN_ERR_REQUEST', name);
    t.match(res.json().error, pattern, name);
  }
});

t.test('binary UINT32 values beyond what edgerun holds are refused, not wrapped', async (t) => {
  const { payload, headerLength } = binaryBody({
    inputs: [
      { name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } },
      { name: 'input1', shape: [3], datatype: 'BOOL', data: [true, true, true] },
    ],
  }, new Uint8Array(Uint32Array.of(1, 2, 3, 3000000000).buffer));
  const res = await app.inject({ method: 'POST', url: '/v2/models/mymodel/infer', payload, headers: { 'inference-header-content-length': String(headerLength) } });
  t.equal(res.statusCode, 400);
  t.match(res.json().error, /inputs\[0\] \(binary\) element 3: 3000000000 is outside the range edgerun holds UINT32 values in/);
});
