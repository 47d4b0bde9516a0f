/**
 * How the conv generators (conv-direct.ts, conv-pointwise.ts) read one output-channel tile's weights.
 * The generators own tiling, input loads, accumulation and stores; a reader owns the weight binding's
 * element type, the statements that fetch a channel's tap × tm weights and the accumulators' first and
 * last values. Float weights (the packed layout of conv-packing.ts) and quantized weights
 * (quant-conv-weights.ts: packed integers dequantized in the loop) are two readers of the same kernels.
 *
 * Statements may use `wt` (the tile's first element in the weight binding `w`) and, in `channel`, the loop
 * counter `c` (input channel within the group). `lane` is the subgroup lane expression when uniform loads
 * are shared by subgroup broadcast (see conv-wgsl.ts), else null.
 */
import { blockFloats, type PackedWeightLayout } from './conv-packing.ts';
import { packedComponent, uniformVec4Loads } from './conv-wgsl.ts';

export interface ConvWeightReader {
  /** Appended to the kernel's specialisation key ('' for float weights). */
  key: string;
  /** WGSL element type of the weight binding. */
  elementType: string;
  /** Elements of the weight binding per output-channel tile (wt = tile index × tileStride). */
  tileStride: number;
  /** Statements before the channel loop. */
  prologue(lane: string | null): string[];
  /** The first value of output i's accumulators (i < tm). */
  initial(i: number): string;
  /** Statements at the top of the channel loop that make the channel's weights available. */
  channel(lane: string | null): string[];
  /** The weight of packed index tap × tm + i in the current channel. */
  weight(index: number): string;
  /** The output value (before the epilogue) of output i from its accumulator. */
  result(i: number, acc: string): string;
}

/** Float weights in the packed layout of conv-packing.ts: per channel a block of vec4s, the bias block last. */
export function floatWeightReader(layout: PackedWeightLayout): ConvWeightReader {
  const block4 = blockFloats(layout) / 4;
  return {
    key: '',
    elementType: 'vec4<f32>',
    tileStride: (layout.cg + 1) * block4,
    prologue: (lane) => uniformVec4Loads('w', `wt + ${layout.cg * block4}u`, block4, 'b', lane),
    initial: (i) => packedComponent('b', i),
    channel: (lane) => uniformVec4Loads('w', `wt + c * ${block4}u`, block4, 'w', lane),
    weight: (index) => packedComponent('w', index),
    result: (_i, acc) => acc,
  };
}
