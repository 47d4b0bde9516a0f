/**
 * The declared inputs and outputs of an ONNX file, read without decoding its weights (a package is checked
 * before any engine loads it, and a large INT4 model should not be expanded just to learn its input names).
 */
import fs from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import type { TensorInfo } from '../engine/types.ts';
import type { Dim } from '../graph/ir.ts';
import { elementTypeOf, onnxTypeName, protoIntToNumber } from '../onnx/proto-values.ts';
import { packageError } from './manifest.ts';

const { onnx } = onnxProto;

export interface ModelIo {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

/** `source` names the package in errors, `file` the model file inside it. */
export async function readModelIo(modelPath: string, source: string, file: string): Promise<ModelIo> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(modelPath);
  } catch (error) {
    throw packageError(source, `${file}: cannot read the model (${(error as Error).message})`, { file });
  }
  return modelIoFromBytes(bytes, source, file);
}

export function modelIoFromBytes(bytes: Uint8Array, source: string, file: string): ModelIo {
  let graph: onnxProto.onnx.IGraphProto | null | undefined;
  try {
    graph = onnx.ModelProto.decode(bytes).graph;
  } catch (error) {
    throw packageError(source, `${file} is not a readable ONNX model (${(error as Error).message})`, { file });
  }
  if (!graph) throw packageError(source, `${file} is not an ONNX model (no graph)`, { file });
  // Older exporters list initializers among the inputs; those are weights, not inputs a caller feeds.
  const initializers = new Set((graph.initializer ?? []).map((i) => i.name ?? ''));
  const convert = (role: 'input' | 'output') => (proto: onnxProto.onnx.IValueInfoProto): TensorInfo => {
    const name = proto.name ?? '';
    const tensorType = proto.type?.tensorType;
    if (!name) throw packageError(source, `${file}: a graph ${role} has no name`, { file });
    if (!tensorType) throw packageError(source, `${file}: graph ${role} '${name}' is not a tensor`, { file, tensor: name });
    const element = elementTypeOf(tensorType.elemType ?? 0);
    if (!element) {
      throw packageError(source, `${file}: graph ${role} '${name}' has element type ${onnxTypeName(tensorType.elemType ?? 0)}, which edgerun cannot hold`,
        { file, tensor: name });
    }
    const dims = tensorType.shape
      ? (tensorType.shape.dim ?? []).map((d): Dim => (d.dimParam ? d.dimParam
        : d.dimValue !== null && d.dimValue !== undefined ? protoIntToNumber(d.dimValue) : null))
      : null;
    return { name, dtype: element.dtype, dims };
  };
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name ?? '')).map(convert('input'));
  const outputs = (graph.output ?? []).map(convert('output'));
  if (outputs.length === 0) throw packageError(source, `${file}: the model declares no outputs`, { file });
  return { inputs, outputs };
}
