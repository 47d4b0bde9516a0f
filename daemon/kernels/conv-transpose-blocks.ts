/**
 * ConvTranspose whose kernel equals its stride on every axis (dilation 1, no padding, no extra output):
 * each input pixel owns one disjoint kernel-sized block of the output, e.g. the 2×2 stride-2 upsamplers of
 * detection heads. One invocation loads a row segment of tx input pixels once per input channel and
 * writes all the blocks they own for tm output channels, instead of re-reading the input once per stride
 * phase as the general path does.
 */
import type { Binding, Epilogue } from './types.ts';
import { blockFloats, type PackedWeightLayout } from './conv-packing.ts';
import { epilogueFunction, epilogueKey, opaqueBound, packedComponent, uniformVec4Loads } from './conv-wgsl.ts';

export interface BlockSpec {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
  /** Input extents (z, y, x); the kernel (= stride) per axis. */
  input: [number, number, number];
  kernel: [number, number, number];
  tm: number;
  tx: number;
  workgroup: number;
  subgroups: boolean;
  epilogue?: Epilogue;
}

export function blockLayout(spec: BlockSpec): PackedWeightLayout {
  const taps = spec.kernel[0] * spec.kernel[1] * spec.kernel[2];
  return {
    groups: spec.groups,
    mg: spec.outChannels / spec.groups,
    tm: spec.tm,
    cg: spec.inChannels / spec.groups,
    taps: Array.from({ length: taps }, (_, k) => k),
  };
}

export function blockKey(spec: BlockSpec): string {
  return `convT-block:n${spec.batch}:c${spec.inChannels}:m${spec.outChannels}:g${spec.groups}:in${spec.input.join('x')}`
    + `:k${spec.kernel.join('x')}:t${spec.tm}x${spec.tx}:wg${spec.workgroup}:sg${spec.subgroups ? 1 : 0}:${epilogueKey(spec.epilogue)}`;
}

function tiles(spec: BlockSpec): number {
  const [D, H, W] = spec.input;
  return D * H * Math.ceil(W / spec.tx);
}

export function blockDispatch(spec: BlockSpec): [number, number, number] {
  const layout = blockLayout(spec);
  return [Math.ceil(tiles(spec) / spec.workgroup), spec.groups * Math.ceil(layout.mg / spec.tm), spec.batch];
}

export function blockBindings(weights: Binding): Binding[] {
  return [{ kind: 'input', index: 0 }, weights, { kind: 'output', index: 0 }];
}

export function blockCode(spec: BlockSpec, label: string): string {
  const { tm, tx } = spec;
  const [D, H, W] = spec.input;
  const [KD, KH, KW] = spec.kernel;
  const [OD, OH, OW] = [D * KD, H * KH, W * KW];
  const layout = blockLayout(spec);
  const { cg, mg } = layout;
  const taps = layout.taps.length;
  const tpg = Math.ceil(mg / tm);
  const block4 = blockFloats(layout) / 4;
  const total = tiles(spec);
  const txc = Math.ceil(W / tx);
  const overshoot = Math.ceil(total / spec.workgroup) * spec.workgroup !== total;
  const partialX = W % tx !== 0;
  const vecIn = !partialX && W % 4 === 0 && tx % 4 === 0;
  const vecOut = !partialX && (tx * KW) % 4 === 0 && OW % 4 === 0;
  const lane = spec.subgroups ? 'sg_lane' : null;
  const acc = (i: number, k: number, j: number) => `acc${i}_${k}_${j}`;

  const init: string[] = [...uniformVec4Loads('w', `wt + ${cg * block4}u`, block4, 'b', lane)];
  for (let i = 0; i < tm; i++) {
    for (let k = 0; k < taps; k++) for (let j = 0; j < tx; j++) init.push(`var ${acc(i, k, j)} = ${packedComponent('b', i)};`);
  }
  const body: string[] = [...uniformVec4Loads('w', `wt + c * ${block4}u`, block4, 'w', lane)];
  body.push(`let xc = xb + c * ${D * H * W}u;`);
  const xs: string[] = [];
  if (vecIn) {
    for (let v = 0; v < tx / 4; v++) {
      body.push(`let iv${v} = x[(xc >> 2u) + ${v}u];`);
      for (let q = 0; q < 4; q++) xs.push(`iv${v}.${'xyzw'[q]}`);
    }
  } else {
    for (let j = 0; j < tx; j++) {
      body.push(`let in${j} = x[xc + ${partialX ? `min(${j}u, ${W - 1}u - x0)` : `${j}u`}];`);
      xs.push(`in${j}`);
    }
  }
  for (let k = 0; k < taps; k++) {
    for (let i = 0; i < tm; i++) {
      for (let j = 0; j < tx; j++) body.push(`${acc(i, k, j)} = fma(${packedComponent('w', k * tm + i)}, ${xs[j]}, ${acc(i, k, j)});`);
    }
  }

  const stores: string[] = [];
  for (let i = 0; i < tm; i++) {
    const channel = mg % tm !== 0 ? `m0 + ${i}u < ${mg}u` : '';
    for (let kz = 0; kz < KD; kz++) {
      for (let ky = 0; ky < KH; ky++) {
        const row = `ob + ${i * OD * OH * OW}u + ${kz * OH * OW + ky * OW}u`;
        // output columns x0·KW … (x0 + tx)·KW − 1 of this row, in order: input pixel j, kernel column kx
        const values: string[] = [];
        for (let j = 0; j < tx; j++) for (let kx = 0; kx < KW; kx++) values.push(`epilogue(${acc(i, (kz * KH + ky) * KW + kx, j)})`);
        const lines: string[] = [];
        if (vecOut) {
          for (let v = 0; v < values.length / 4; v++) lines.push(`y[((${row}) >> 2u) + ${v}u] = vec4<f32>(${values.slice(v * 4, v * 4 + 4).join(', ')});`);
        } else {
          values.forEach((value, e) => {
            const guard = partialX ? `if (x0 + ${Math.floor(e / KW)}u < ${W}u) ` : '';
            lines.push(`${guard}{ y[${row} + ${e}u] = ${value}; }`);
          });
        }
        const guards = [overshoot ? `gid.x < ${total}u` : '', channel].filter(Boolean);
        stores.push(guards.length ? `if (${guards.join(' && ')}) {\n    ${lines.join('\n    ')}\n  }` : lines.join('\n  '));
      }
    }
  }

  const params = ['@builtin(global_invocation_id) gid: vec3<u32>', '@builtin(workgroup_id) wid: vec3<u32>'];
  if (lane) params.push('@builtin(subgroup_invocation_id) sg_lane: u32');
  return `${lane ? 'enable subgroups;\n' : ''}// ${label}: kernel = stride, ${tm} channels x ${tx} input pixels per invocation
@group(0) @binding(0) var<storage, read> x: array<${vecIn ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<${vecOut ? 'vec4<f32>' : 'f32'}>;

${epilogueFunction(spec.epilogue)}

@compute @workgroup_size(${spec.workgroup})
fn main(${params.join(', ')}) {
  let n = wid.z;
  let g = wid.y / ${tpg}u;
  let m0 = (wid.y % ${tpg}u) * ${tm}u;
  let wt = wid.y * ${(cg + 1) * block4}u;
  let tile = ${overshoot ? `min(gid.x, ${total - 1}u)` : 'gid.x'};
  let row = tile / ${txc}u;
  let x0 = (tile % ${txc}u) * ${tx}u;
  let z = row / ${H}u;
  let yy = row % ${H}u;
  let xb = (n * ${spec.inChannels}u + g * ${cg}u) * ${D * H * W}u + row * ${W}u + x0;
  let ob = (n * ${spec.outChannels}u + g * ${mg}u + m0) * ${OD * OH * OW}u + z * ${KD * OH * OW}u + yy * ${KH * OW}u + x0 * ${KW}u;
  ${init.join('\n  ')}
  for (var c = 0u; c < ${opaqueBound(cg, 'n')}; c++) {
    ${body.join('\n    ')}
  }
  ${stores.join('\n  ')}
}
`;
}
