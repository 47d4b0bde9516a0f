/**
 * The quantization contract: how a weight tensor is quantized (QuantSpec) and what comes out (QuantizedTensor).
 * Quantizers (round-to-nearest, GPTQ, AWQ scaling, clipping search, bias correction) live in daemon/quant/;
 * daemon/compress/ decides which tensors get which spec and writes the ONNX model.
 */

export type QuantBits = 4 | 8;
export type QuantScheme = 'symmetric' | 'asymmetric';

export type QuantGranularity =
  /** One scale (and zero point) per slice along `axis` (per output channel: axis 0 for Conv [M,C,kh,kw], axis 1 for MatMul B [K,N]). */
  | { kind: 'channel'; axis: number }
  /** Blocks of `blockSize` consecutive elements along `axis`, one scale per block (ONNX DequantizeLinear-21 block_size semantics). */
  | { kind: 'block'; axis: number; blockSize: 32 | 64 | 128 };

export interface QuantSpec {
  bits: QuantBits;
  scheme: QuantScheme;
  granularity: QuantGranularity;
  /**
   * 'float16': each scale is rounded to the nearest normal float16 before the weights are quantized with it, so
   * a model that stores scales as float16 stores exactly the scale the values were chosen for (scales outside
   * float16's normal range stay float32). Default: float32.
   */
  scaleFormat?: 'float32' | 'float16';
}

/**
 * A quantized weight in ONNX DequantizeLinear terms: x = (q - zeroPoint) * scale, with the scale and zero point
 * broadcast per channel (shape [dims[axis]]) or per block (the weight's shape with dims[axis] → ceil(dims[axis]/blockSize)).
 * Symmetric: signed values (int8 [-127,127] — -128 unused so that scales are symmetric — or int4 [-8,7]), no zero point.
 * Asymmetric: unsigned values (uint8 [0,255], uint4 [0,15]) with a zero point.
 */
export interface QuantizedTensor {
  spec: QuantSpec;
  dims: number[];
  /** One value per element, row-major, in the range the spec allows (not packed: see packing.ts). */
  values: Int16Array;
  scale: Float32Array;
  zeroPoint: Uint8Array | null;
  scaleDims: number[];
}

/**
 * Calibration statistics for one weight's input activations, gathered by running the FP32 model on calibration
 * data. For MatMul B [K,N] the rows of `x` are K-vectors; for Conv they are im2col patches (C/group·kh·kw per row,
 * per group).
 */
export interface LayerCalibration {
  /** Number of activation rows accumulated. */
  rows: number;
  /** H = Σ xᵀx over the rows ([K×K] row-major, float64): GPTQ's Hessian proxy. */
  hessian: Float64Array;
  /** Mean |x| per input feature (length K): AWQ's activation salience. */
  meanAbs: Float64Array;
  /** Mean x per input feature (length K): bias correction. */
  mean: Float64Array;
  /** Width K. */
  features: number;
}
