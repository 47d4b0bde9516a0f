/**
 * The inference request body of the Open Inference Protocol (KServe v2), JSON or with the binary tensor data
 * extension, checked field by field against the model's declared inputs and outputs. Unknown top-level fields
 * (Triton's examples carry "model_name") are ignored, as the protocol's servers do.
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import type { TensorInfo } from '../engine/types.ts';
import { datatypeOf, ELEMENT_BYTES, isDatatype, protocolShape, type Datatype } from './datatypes.ts';
import { decodeBinaryTensor, decodeJsonTensor } from './tensor-codecs.ts';

/** The response header and request header of the binary tensor data extension. */
export const HEADER_LENGTH_HEADER = 'inference-header-content-length';

export interface RequestedOutput {
  name: string;
  datatype: Datatype;
  binary: boolean;
}

export interface InferRequest {
  id?: string;
  feeds: Map<string, Tensor>;
  outputs: RequestedOutput[];
  /** The leading dim of the first input (1 for scalars): what telemetry records as the batch size. */
  batchSize: number;
}

const MAX_RANK = 32;

function fail(field: string, message: string): never {
  throw new EdgerunError('EDGERUN_ERR_REQUEST', `${field}: ${message}`, { field });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Splits a body into its JSON header and the binary tensor data that follows it. */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined): { header: unknown; binary: Uint8Array } {
  let jsonBytes = body;
  let binary: Uint8Array = new Uint8Array(0);
  if (headerLength !== undefined) {
    const text = Array.isArray(headerLength) ? headerLength[0] : headerLength;
    if (!/^\d+$/.test(text) || Number(text) > body.length) {
      fail('Inference-Header-Content-Length', `must be an integer from 0 to the body length (${body.length}), got '${text}'`);
    }
    jsonBytes = body.subarray(0, Number(text));
    binary = body.subarray(Number(text));
  }
  if (jsonBytes.length === 0) fail('body', 'the request body is empty; an inference request is a JSON object with "inputs"');
  let header: unknown;
  try {
    header = JSON.parse(jsonBytes.toString('utf8'));
  } catch (error) {
    fail('body', `not valid JSON: ${(error as Error).message}`);
  }
  return { header, binary };
}

function checkShape(field: string, shape: unknown, declared: TensorInfo): number[] {
  if (!Array.isArray(shape)) fail(`${field}.shape`, 'must be an array of non-negative integers');
  if (shape.length > MAX_RANK) fail(`${field}.shape`, `rank ${shape.length} exceeds ${MAX_RANK}`);
  shape.forEach((dim, i) => {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) fail(`${field}.shape[${i}]`, `must be a non-negative integer, got ${JSON.stringify(dim)}`);
  });
  const dims = shape as number[];
  if (declared.dims) {
    const expected = protocolShape(declared.dims);
    const mismatch = expected.length !== dims.length || expected.some((d, i) => d >= 0 && d !== dims[i]);
    if (mismatch) fail(`${field}.shape`, `input '${declared.name}' must have shape [${expected.join(', ')}] (-1: any size), got [${dims.join(', ')}]`);
  }
  return dims;
}

/** Parameters are open-ended in the protocol; those that would change the meaning of a tensor are refused. */
function readParameters(field: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) fail(field, 'must be an object');
  for (const key of Object.keys(value)) {
    if (key.startsWith('shared_memory')) fail(`${field}.${key}`, 'shared-memory tensors are not supported');
    if (key === 'classification') fail(`${field}.${key}`, 'the classification extension is not supported');
  }
  return value;
}

function parseInput(field: string, entry: unknown, declaredInputs: TensorInfo[], binary: { bytes: Uint8Array; offset: number }): Tensor & { name: string } {
  if (!isObject(entry)) fail(field, 'must be an object with name, shape, datatype and data');
  const { name, datatype, shape, data } = entry;
  if (typeof name !== 'string') fail(`${field}.name`, 'must be a string');
  const declared = declaredInputs.find((input) => input.name === name);
  if (!declared) fail(`${field}.name`, `the model has no input '${name}' (its inputs: ${declaredInputs.map((i) => i.name).join(', ')})`);
  if (!isDatatype(datatype)) fail(`${field}.datatype`, `must be a tensor datatype such as FP32, INT64 or BOOL, got ${JSON.stringify(datatype)}`);
  const expected = datatypeOf(declared.dtype);
  if (datatype !== expected) fail(`${field}.datatype`, `input '${name}' is ${expected}, got ${datatype}`);
  const dims = checkShape(field, shape, declared);
  const count = dims.reduce((a, b) => a * b, 1);
  const parameters = readParameters(`${field}.parameters`, entry.parameters);
  const binarySize = parameters.binary_data_size;
  if (binarySize !== undefined) {
    if (typeof binarySize !== 'number' || !Number.isSafeInteger(binarySize) || binarySize < 0) {
      fail(`${field}.parameters.binary_data_size`, `must be a non-negative integer, got ${JSON.stringify(binarySize)}`);
    }
    if (data !== undefined) fail(`${field}.data`, 'must be absent when parameters.binary_data_size is given');
    const needed = count * ELEMENT_BYTES[datatype as Exclude<Datatype, 'BYTES'>];
    if (binarySize !== needed) fail(`${field}.parameters.binary_data_size`, `is ${binarySize} bytes but shape [${dims.join(', ')}] of ${datatype} needs ${needed}`);
    if (binary.offset + binarySize > binary.bytes.length) {
      fail(`${field}.parameters.binary_data_size`, `needs ${binarySize} bytes at offset ${binary.offset} of the binary data, which holds ${binary.bytes.length}`);
    }
    const bytes = binary.bytes.subarray(binary.offset, binary.offset + binarySize);
    binary.offset += binarySize;
    return { name, dtype: declared.dtype, dims, data: decodeBinaryTensor(`${field} (binary)`, datatype, bytes, count) };
  }
  if (data === undefined) fail(`${field}.data`, 'is required (or parameters.binary_data_size with binary tensor data)');
  return { name, dtype: declared.dtype, dims, data: decodeJsonTensor(`${field}.data`, datatype, data, count) };
}

function parseOutputs(value: unknown, declaredOutputs: TensorInfo[], binaryByDefault: boolean): RequestedOutput[] {
  if (value === undefined) {
    return declaredOutputs.map((o) => ({ name: o.name, datatype: datatypeOf(o.dtype), binary: binaryByDefault }));
  }
  if (!Array.isArray(value)) fail('outputs', 'must be an array');
  const seen = new Set<string>();
  return value.map((entry, i) => {
    const field = `outputs[${i}]`;
    if (!isObject(entry)) fail(field, 'must be an object with a name');
    if (typeof entry.name !== 'string') fail(`${field}.name`, 'must be a string');
    const declared = declaredOutputs.find((o) => o.name === entry.name);
    if (!declared) fail(`${field}.name`, `the model has no output '${entry.name}' (its outputs: ${declaredOutputs.map((o) => o.name).join(', ')})`);
    if (seen.has(entry.name)) fail(`${field}.name`, `output '${entry.name}' is requested twice`);
    seen.add(entry.name);
    const parameters = readParameters(`${field}.parameters`, entry.parameters);
    const binary = parameters.binary_data;
    if (binary !== undefined && typeof binary !== 'boolean') fail(`${field}.parameters.binary_data`, 'must be true or false');
    return { name: entry.name, datatype: datatypeOf(declared.dtype), binary: binary ?? binaryByDefault };
  });
}

/** Parses and validates an inference request for a model with these inputs and outputs. */
export function parseInferRequest(body: Buffer, headerLength: string | string[] | undefined, inputs: TensorInfo[], outputs: TensorInfo[]): InferRequest {
  const { header, binary } = splitBody(body, headerLength);
  if (!isObject(header)) fail('body', 'must be a JSON object with "inputs"');
  if (header.id !== undefined && typeof header.id !== 'string') fail('id', 'must be a string');
  const parameters = header.parameters;
  if (parameters !== undefined && !isObject(parameters)) fail('parameters', 'must be an object');
  const binaryOutput = parameters?.binary_data_output;
  if (binaryOutput !== undefined && typeof binaryOutput !== 'boolean') fail('parameters.binary_data_output', 'must be true or false');
  if (!Array.isArray(header.inputs) || header.inputs.length === 0) fail('inputs', 'must be a non-empty array of input tensors');
  const feeds = new Map<string, Tensor>();
  const cursor = { bytes: binary, offset: 0 };
  header.inputs.forEach((entry, i) => {
    const { name, ...tensor } = parseInput(`inputs[${i}]`, entry, inputs, cursor);
    if (feeds.has(name)) fail(`inputs[${i}].name`, `input '${name}' is given twice`);
    feeds.set(name, tensor);
  });
  if (cursor.offset !== binary.length) {
    fail('body', `${binary.length - cursor.offset} bytes of binary data follow the JSON header that no input's binary_data_size accounts for`);
  }
  for (const input of inputs) {
    if (!feeds.has(input.name)) {
      fail('inputs', `the model's input '${input.name}' (${datatypeOf(input.dtype)} [${protocolShape(input.dims).join(', ')}]) is missing`);
    }
  }
  const first = feeds.values().next().value as Tensor;
  return {
    ...(header.id !== undefined ? { id: header.id as string } : {}),
    feeds,
    outputs: parseOutputs(header.outputs, outputs, binaryOutput === true),
    batchSize: first.dims.length > 0 ? first.dims[0] : 1,
  };
}
