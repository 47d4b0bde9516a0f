/**
 * The inference response: a JSON object, or with the binary tensor data extension a JSON header followed by
 * the raw bytes of every output the client asked for as binary_data (its length in
 * Inference-Header-Content-Length).
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import type { RequestedOutput } from './infer-request.ts';
import { encodeBinaryTensor, encodeJsonTensor } from './tensor-codecs.ts';

export interface ResponseOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters?: { binary_data_size: number };
  data?: (number | boolean | null)[];
}

export interface InferResponseBody {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: ResponseOutput[];
}

export interface EncodedResponse {
  /** A JSON object when no output is binary. */
  json?: InferResponseBody;
  /** The JSON header and binary data, concatenated, when some output is binary. */
  binary?: { body: Buffer; headerLength: number };
}

export function encodeInferResponse(model: { name: string; version: string }, id: string | undefined,
  requested: RequestedOutput[], outputs: Map<string, Tensor>): EncodedResponse {
  const chunks: Uint8Array[] = [];
  const body: InferResponseBody = {
    model_name: model.name,
    model_version: model.version,
    ...(id !== undefined ? { id } : {}),
    outputs: requested.map((output) => {
      const tensor = outputs.get(output.name);
      if (!tensor) {
        throw new EdgerunError('EDGERUN_ERR_ENGINE', `model '${model.name}' version ${model.version} returned no output '${output.name}'`, { output: output.name });
      }
      if (output.binary) {
        const bytes = encodeBinaryTensor(output.datatype, tensor);
        chunks.push(bytes);
        return { name: output.name, datatype: output.datatype, shape: tensor.dims, parameters: { binary_data_size: bytes.byteLength } };
      }
      return { name: output.name, datatype: output.datatype, shape: tensor.dims, data: encodeJsonTensor(output.datatype, tensor) };
    }),
  };
  if (chunks.length === 0) return { json: body };
  const header = Buffer.from(JSON.stringify(body), 'utf8');
  return { binary: { body: Buffer.concat([header, ...chunks]), headerLength: header.length } };
}
