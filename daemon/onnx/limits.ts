/**
 * Safety caps applied while decoding an ONNX file. Every cap is checked before the memory it guards is
 * allocated, so a hostile file that declares terabytes of tensor data fails fast with a coded error.
 */
export interface OnnxLimits {
  /** Largest model file accepted by loadModelFile (bytes). */
  maxFileBytes: number;
  /** Largest single tensor, counted as the larger of its declared and its decoded (host) size. */
  maxTensorBytes: number;
  /** Sum over all initializers, Constant values and tensor attributes, counted like maxTensorBytes. */
  maxTotalTensorBytes: number;
  /** Largest rank of any tensor or declared value. */
  maxRank: number;
  /** Largest single dimension. */
  maxDim: number;
  /** Node count summed over the main graph and all subgraphs. */
  maxNodes: number;
  /** Deepest nesting of subgraphs (the main graph is depth 0). */
  maxSubgraphDepth: number;
  /** Attributes on one node. */
  maxAttributesPerNode: number;
  /** Elements in one ints/floats/strings attribute. */
  maxAttributeElements: number;
  /** Characters in one string attribute (or one element of a strings attribute). */
  maxStringLength: number;
}

export const DEFAULT_ONNX_LIMITS: Readonly<OnnxLimits> = Object.freeze({
  maxFileBytes: 2 * 1024 ** 3,
  maxTensorBytes: 2 * 1024 ** 3,
  maxTotalTensorBytes: 8 * 1024 ** 3,
  maxRank: 8,
  maxDim: 2 ** 31 - 1,
  maxNodes: 200_000,
  maxSubgraphDepth: 8,
  maxAttributesPerNode: 256,
  maxAttributeElements: 1 << 20,
  maxStringLength: 1 << 20,
});

export function resolveLimits(overrides: Partial<OnnxLimits> = {}): OnnxLimits {
  const limits = { ...DEFAULT_ONNX_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof OnnxLimits, number | undefined][]) {
    if (value !== undefined) limits[key] = value;
  }
  return limits;
}
