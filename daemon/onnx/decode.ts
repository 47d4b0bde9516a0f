/**
 * The ONNX loader: file → validated graph IR. Decoding is protobufjs (npm onnx-proto); everything read from
 * the file is checked against OnnxLimits before the memory it implies is allocated.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { EdgerunError, isEdgerunError } from '../errors.ts';
import type { Graph, Model } from '../graph/ir.ts';
import type { DecodeContext } from './decode-context.ts';
import { ExternalDataReader } from './external-data.ts';
import { decodeGraph, normalizeDomain } from './graph-decode.ts';
import { topologicalSort, validateGraphStructure } from './graph-structure.ts';
import { resolveLimits, type OnnxLimits } from './limits.ts';
import { protoIntToNumber } from './proto-values.ts';

const { onnx } = onnxProto;

export { DEFAULT_ONNX_LIMITS, type OnnxLimits } from './limits.ts';

export interface DecodeOptions {
  /** Folder external tensor data is read from; without it a model with external data is rejected. */
  baseDir?: string;
  limits?: Partial<OnnxLimits>;
  /** Names the model in error messages (a file path, a package name). */
  source?: string;
}

/** Reads, decodes and validates an ONNX file. External data is read from the file's own folder. */
export async function loadModelFile(filePath: string, limits?: Partial<OnnxLimits>): Promise<Model> {
  const resolved = resolveLimits(limits);
  let bytes: Uint8Array;
  try {
    const stat = await fs.stat(filePath);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > resolved.maxFileBytes) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
        `${filePath}: the file is ${stat.size} bytes, over the cap of ${resolved.maxFileBytes}`, { file: filePath });
    }
    bytes = await fs.readFile(filePath);
  } catch (error) {
    if (isEdgerunError(error)) throw error;
    throw new EdgerunError('EDGERUN_ERR_ONNX_READ', `${filePath}: cannot read the ONNX file (${(error as Error).message})`,
      { file: filePath }, { cause: error });
  }
  return decodeModel(bytes, { baseDir: path.dirname(filePath), limits: resolved, source: filePath });
}

/** Decodes and validates ONNX bytes. Nodes of every graph come back in topological order. */
export function decodeModel(bytes: Uint8Array, options: DecodeOptions = {}): Model {
  const source = options.source ?? '<onnx bytes>';
  const limits = resolveLimits(options.limits);
  if (bytes.length > limits.maxFileBytes) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_LIMIT',
      `${source}: the model is ${bytes.length} bytes, over the cap of ${limits.maxFileBytes}`, { file: source });
  }

  let proto: onnxProto.onnx.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_READ',
      `${source}: not a readable ONNX model (${(error as Error).message}); the file may be truncated or not ONNX`,
      { file: source }, { cause: error });
  }
  if (!proto.graph) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_READ', `${source}: not an ONNX model (no graph found)`, { file: source });
  }

  const opsets = new Map<string, number>();
  for (const opset of proto.opsetImport ?? []) {
    const domain = normalizeDomain(opset.domain);
    if (opsets.has(domain)) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${source}: opset of domain '${domain}' is imported twice`,
        { file: source, domain });
    }
    opsets.set(domain, protoIntToNumber(opset.version));
  }
  if (opsets.size === 0) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `${source}: the model imports no opset`, { file: source });
  }

  const ctx: DecodeContext = {
    limits,
    source,
    externalData: new ExternalDataReader(options.baseDir, source),
    totalTensorBytes: 0,
    nodeCount: 0,
  };
  const graph = decodeGraph(proto.graph, ctx, 0, `graph '${proto.graph.name ?? ''}'`);
  try {
    validateGraphStructure(graph);
  } catch (error) {
    if (!isEdgerunError(error)) throw error;
    throw new EdgerunError(error.code, `${source}: ${error.message}`, { file: source, ...error.context }, { cause: error });
  }
  sortGraphs(graph);
  return {
    irVersion: protoIntToNumber(proto.irVersion),
    producer: [proto.producerName, proto.producerVersion].filter(Boolean).join(' '),
    opsets,
    graph,
  };
}

/** Puts the nodes of the graph and of all its subgraphs in topological order (validated: no cycles). */
function sortGraphs(graph: Graph): void {
  graph.nodes = topologicalSort(graph);
  for (const node of graph.nodes) {
    for (const attribute of node.attributes.values()) if (attribute.type === 'graph') sortGraphs(attribute.value);
  }
}
