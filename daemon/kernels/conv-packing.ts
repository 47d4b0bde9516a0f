/**
 * Weight (and bias) packing for the convolution kernels.
 *
 * The kernels walk input channels one at a time and, for each, need the weights of every kernel tap for
 * a tile of `tm` output channels. The packed layout stores exactly that as one contiguous block per
 * (output-channel tile, input channel), padded to whole vec4s, followed by one block holding the tile's
 * bias:
 *
 *   float offset = ((tile * (cg + 1) + c) * blockFloats) + tap * tm + i      (c = cg is the bias block)
 *
 * The layout is described once as an index map (packed element → source element), so constant weights
 * are packed on the host and non-constant ones by a tiny gather program on the GPU, with the same result.
 */
import type { Binding, BuildContext, KernelProgram } from './types.ts';

/** Map value for a packed element that stays zero (padding, tile overhang, absent bias). */
const ZERO = -1;
/** Map values <= BIAS_BASE encode bias element (BIAS_BASE - value). */
const BIAS_BASE = -2;

export interface PackedWeightLayout {
  groups: number;
  /** Output channels per group and per tile. */
  mg: number;
  tm: number;
  /** Input channels per group. */
  cg: number;
  /** Flat kernel offsets (into one W filter's spatial block) of the taps, in the order the kernel uses them. */
  taps: number[];
}

export function tilesPerGroup(layout: PackedWeightLayout): number {
  return Math.ceil(layout.mg / layout.tm);
}

/** Floats per (tile, channel) block: taps × tm rounded up to whole vec4s (at least tm, for the bias). */
export function blockFloats(layout: PackedWeightLayout): number {
  return Math.ceil((Math.max(1, layout.taps.length) * layout.tm) / 4) * 4;
}

export function packedFloats(layout: PackedWeightLayout): number {
  return layout.groups * tilesPerGroup(layout) * (layout.cg + 1) * blockFloats(layout);
}

/**
 * The source index of every packed element. `weightIndex(g, mInGroup, cInGroup, tapOffset)` gives the
 * flat index into W; the bias of output channel m is encoded separately.
 */
export function packingMap(
  layout: PackedWeightLayout,
  weightIndex: (g: number, mInGroup: number, cInGroup: number, tapOffset: number) => number,
): Int32Array {
  const tpg = tilesPerGroup(layout);
  const block = blockFloats(layout);
  const map = new Int32Array(packedFloats(layout)).fill(ZERO);
  for (let g = 0; g < layout.groups; g++) {
    for (let t = 0; t < tpg; t++) {
      const tileBase = (g * tpg + t) * (layout.cg + 1) * block;
      for (let i = 0; i < layout.tm; i++) {
        const mInGroup = t * layout.tm + i;
        if (mInGroup >= layout.mg) continue;
        for (let c = 0; c < layout.cg; c++) {
          for (let k = 0; k < layout.taps.length; k++) {
            map[tileBase + c * block + k * layout.tm + i] = weightIndex(g, mInGroup, c, layout.taps[k]);
          }
        }
        map[tileBase + layout.cg * block + i] = BIAS_BASE - (g * layout.mg + mInGroup);
      }
    }
  }
  return map;
}

/**
 * The layout of the channel-parallel GEMV kernel (1×1 convs over very few pixels): vec4s of four
 * consecutive input channels, [ceil(C/4)][M], zero-padded, then the bias [M]. Lanes own output channels,
 * so neighbouring lanes read neighbouring vec4s.
 */
export function gemvPackingMap(outChannels: number, inChannels: number, weightIndex: (m: number, c: number) => number): Int32Array {
  const quads = Math.ceil(inChannels / 4);
  const map = new Int32Array(quads * outChannels * 4 + outChannels).fill(ZERO);
  for (let q = 0; q < quads; q++) {
    for (let m = 0; m < outChannels; m++) {
      for (let j = 0; j < 4; j++) {
        const c = q * 4 + j;
        if (c < inChannels) map[(q * outChannels + m) * 4 + j] = weightIndex(m, c);
      }
    }
  }
  for (let m = 0; m < outChannels; m++) map[quads * outChannels * 4 + m] = BIAS_BASE - m;
  return map;
}

/** Packs constant weights (and optional constant bias) on the host. */
export function applyPackingMap(map: Int32Array, weights: Float32Array | Int32Array, bias: Float32Array | Int32Array | null): Float32Array {
  const packed = new Float32Array(map.length);
  for (let i = 0; i < map.length; i++) {
    const source = map[i];
    if (source >= 0) packed[i] = weights[source];
    else if (source <= BIAS_BASE && bias) packed[i] = bias[BIAS_BASE - source];
  }
  return packed;
}

/**
 * A program that packs non-constant weights on the GPU into a scratch buffer, using the same map.
 * Bindings: map (constant), W (input weightInput), bias (input biasInput, when present), packed (scratch).
 */
export function repackProgram(
  label: string,
  map: Int32Array,
  weightInput: number,
  biasInput: number | null,
  scratchId: number,
): KernelProgram {
  const total = map.length;
  const workgroup = 64;
  const groups = Math.ceil(total / workgroup);
  const x = Math.min(groups, 65535);
  const y = Math.ceil(groups / x);
  const bindings: Binding[] = [
    { kind: 'constant', data: map },
    { kind: 'input', index: weightInput },
  ];
  if (biasInput !== null) bindings.push({ kind: 'input', index: biasInput });
  bindings.push({ kind: 'scratch', id: scratchId, bytes: total * 4 });
  const out = biasInput !== null ? 3 : 2;
  const code = `// Conv weight repack: gathers W${biasInput !== null ? ' and the bias' : ''} into the packed conv layout
@group(0) @binding(0) var<storage, read> pack_map: array<i32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
${biasInput !== null ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;\n' : ''}@group(0) @binding(${out}) var<storage, read_write> packed: array<f32>;

@compute @workgroup_size(${workgroup})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x + gid.y * ${x * workgroup}u;
  if (idx >= ${total}u) { return; }
  let source = pack_map[idx];
  var value = 0.0;
  if (source >= 0) {
    value = weights[u32(source)];
  }${biasInput !== null ? ` else if (source <= ${BIAS_BASE}) {
    value = bias[u32(${BIAS_BASE} - source)];
  }` : ''}
  packed[idx] = value;
}
`;
  return {
    label: `${label} weight repack`,
    key: `conv-repack:n${total}:bias${biasInput !== null ? 1 : 0}`,
    code,
    workgroups: [x, y, 1],
    bindings,
  };
}

/**
 * The binding of a node's packed weights: packed on the host when W (input 1) and the optional bias
 * (input 2) are constants, otherwise a scratch buffer filled by a repack program that must run first.
 */
export function packedWeightsBinding(
  ctx: BuildContext,
  map: Int32Array,
  label: string,
  scratchId: number,
): { binding: Binding; prelude: KernelProgram[] } {
  const hasBias = ctx.inputs.length > 2 && ctx.inputs[2] !== null;
  const weights = ctx.constants[1];
  const bias = hasBias ? ctx.constants[2] : null;
  if (weights && (!hasBias || bias)) {
    return { binding: { kind: 'constant', data: applyPackingMap(map, weights.data, bias ? bias.data : null) }, prelude: [] };
  }
  return {
    binding: { kind: 'scratch', id: scratchId, bytes: map.length * 4 },
    prelude: [repackProgram(label, map, 1, hasBias ? 2 : null, scratchId)],
  };
}
