/**
 * Direct convolution over up to three spatial axes (z, y, x; lower ranks use extent-1 axes), used for
 * every Conv that is not a plain pointwise GEMM (k×k kernels, strides, padding, groups, depthwise) and for
 * each stride phase of ConvTranspose.
 *
 * The generator is told, per axis, which output positions to produce (`start + step·t`, t < count) and
 * which input coordinates each kernel tap reads (`scale·t + offset + tap.off`). A forward conv has
 * step 1, scale = stride, offset = -padBegin, tap.off = k·dilation; a ConvTranspose phase has
 * step = stride, scale 1 and per-tap offsets worked out on the host, so no work is spent on taps that
 * do not contribute.
 *
 * Each invocation computes tm output channels × ty rows × tx columns. Input rows and columns a tile
 * needs are loaded once per input channel and reused by every tap and output that reads them; the
 * output-channel tile is the workgroup's y index, so its packed weights are uniform (see conv-wgsl.ts).
 */
import type { Binding, Epilogue } from './types.ts';
import type { PackedWeightLayout } from './conv-packing.ts';
import { floatWeightReader, type ConvWeightReader } from './conv-weight-reader.ts';
import { epilogueFunction, epilogueKey, opaqueBound } from './conv-wgsl.ts';

export interface DirectTap {
  /** Kernel index along the axis. */
  k: number;
  /** Input coordinate offset added to scale·t + offset. */
  off: number;
}

export interface DirectAxis {
  count: number;
  start: number;
  step: number;
  scale: number;
  offset: number;
  taps: DirectTap[];
  inSize: number;
  outSize: number;
}

export interface DirectSpec {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
  /** Kernel extents of W (z, y, x) for flat tap offsets. */
  kernel: [number, number, number];
  axes: [DirectAxis, DirectAxis, DirectAxis];
  tm: number;
  ty: number;
  tx: number;
  workgroup: number;
  subgroups: boolean;
  epilogue?: Epilogue;
  /** How weights are read; float weights in the layout of directLayout when absent. */
  weights?: ConvWeightReader;
}

function weightReader(spec: DirectSpec): ConvWeightReader {
  return spec.weights ?? floatWeightReader(directLayout(spec));
}

export function directLayout(spec: DirectSpec): PackedWeightLayout {
  const [, ky, kx] = spec.kernel;
  const taps: number[] = [];
  for (const tz of spec.axes[0].taps) {
    for (const ty of spec.axes[1].taps) {
      for (const tx of spec.axes[2].taps) taps.push((tz.k * ky + ty.k) * kx + tx.k);
    }
  }
  return {
    groups: spec.groups,
    mg: spec.outChannels / spec.groups,
    tm: spec.tm,
    cg: spec.inChannels / spec.groups,
    taps,
  };
}

/**
 * The program's bindings: X, packed weights, Y, and X again as a scalar view when the vec4 path also
 * reads single columns. X is left out when no tap reaches the outputs (bias-only phases).
 */
export function directBindings(spec: DirectSpec, weights: Binding): Binding[] {
  const y: Binding = { kind: 'output', index: 0 };
  if (directLayout(spec).taps.length === 0) return [weights, y];
  const bindings: Binding[] = [{ kind: 'input', index: 0 }, weights, y];
  if (needsScalarView(spec)) bindings.push({ kind: 'input', index: 0 });
  return bindings;
}

/** Whether the vec4 path also reads single columns, through a scalar view of X at binding 3. */
function needsScalarView(spec: DirectSpec): boolean {
  const columns = columnPlan(spec.axes[2], spec.tx, axisReads(spec.axes[2], spec.tx).rel);
  return columns.vector && columns.loads.some((load) => !load.vector);
}

function axisKey(a: DirectAxis): string {
  return `${a.count}/${a.start}/${a.step}/${a.scale}/${a.offset}/${a.inSize}/${a.outSize}/[${a.taps.map((t) => `${t.k}@${t.off}`).join(',')}]`;
}

export function directKey(spec: DirectSpec): string {
  return `conv-direct:n${spec.batch}:c${spec.inChannels}:m${spec.outChannels}:g${spec.groups}:k${spec.kernel.join('x')}`
    + `:z${axisKey(spec.axes[0])}:y${axisKey(spec.axes[1])}:x${axisKey(spec.axes[2])}`
    + `:t${spec.tm}x${spec.ty}x${spec.tx}:wg${spec.workgroup}:sg${spec.subgroups ? 1 : 0}:${epilogueKey(spec.epilogue)}`
    + (spec.weights?.key ? `:${spec.weights.key}` : '');
}

function tileCounts(spec: DirectSpec): { tyc: number; txc: number; total: number } {
  const [az, ay, ax] = spec.axes;
  const tyc = Math.ceil(ay.count / spec.ty);
  const txc = Math.ceil(ax.count / spec.tx);
  return { tyc, txc, total: az.count * tyc * txc };
}

/**
 * Single-channel tiles (depthwise: one input and one output channel per group) load their few weights
 * per lane, so a workgroup may span several channels: small maps then keep every lane busy.
 */
function lanesSpanChannels(spec: DirectSpec): boolean {
  const layout = directLayout(spec);
  return layout.cg === 1 && spec.tm === 1;
}

/** Workgroups along x and y for the channel-spanning layout (y only when x would exceed 65535). */
function spanningGrid(spec: DirectSpec): [number, number] {
  const layout = directLayout(spec);
  const groups = Math.ceil((tileCounts(spec).total * spec.groups * Math.ceil(layout.mg / spec.tm)) / spec.workgroup);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}

export function directDispatch(spec: DirectSpec): [number, number, number] {
  const layout = directLayout(spec);
  const channelTiles = spec.groups * Math.ceil(layout.mg / spec.tm);
  const tiles = tileCounts(spec).total;
  if (lanesSpanChannels(spec)) return [...spanningGrid(spec), spec.batch];
  return [Math.ceil(tiles / spec.workgroup), channelTiles, spec.batch];
}

/** Distinct input offsets (relative to the tile's base coordinate) an axis reads, with the taps using each. */
function axisReads(axis: DirectAxis, tile: number): { rel: number[]; uses: { pos: number; tap: number; rel: number }[] } {
  const uses: { pos: number; tap: number; rel: number }[] = [];
  for (let pos = 0; pos < tile; pos++) {
    axis.taps.forEach((tap, index) => uses.push({ pos, tap: index, rel: pos * axis.scale + tap.off }));
  }
  const rel = [...new Set(uses.map((u) => u.rel))].sort((a, b) => a - b);
  return { rel, uses };
}

/** Whether input coordinate base + rel is inside the axis for every tile the dispatch covers. */
function alwaysInside(axis: DirectAxis, tile: number, rel: number): boolean {
  const tiles = Math.ceil(axis.count / tile);
  const first = axis.offset + rel;
  const last = (tiles - 1) * tile * axis.scale + axis.offset + rel;
  return first >= 0 && last < axis.inSize;
}

/**
 * How a tile reads its input columns. Scalar: one load per distinct column offset. Vector (input rows a
 * multiple of 4 wide and tiles starting on a known residue mod 4): aligned vec4 loads covering the
 * offsets, each either wholly inside or wholly outside the row, so one bounds check serves 4 elements;
 * an aligned group the tile uses only one element of is read as a scalar instead (through a second,
 * scalar view of X), which costs lavapipe about half a vec4 load.
 */
interface ColumnLoad {
  vector: boolean;
  /** Relative start (vector) or offset (scalar). */
  start: number;
}

interface ColumnPlan {
  /** Whether X is also bound as vec4 (binding 0 is then the vec4 view, binding 3 the scalar view). */
  vector: boolean;
  loads: ColumnLoad[];
  /** Where a column offset lives: its load and, for vector loads, the component. */
  locate(q: number): { load: number; component: number | null };
}

function columnPlan(axis: DirectAxis, tile: number, offsets: number[]): ColumnPlan {
  const vector = axis.inSize % 4 === 0 && (tile * axis.scale) % 4 === 0 && offsets.length > 0;
  if (!vector) {
    return { vector, loads: offsets.map((start) => ({ vector: false, start })), locate: (q) => ({ load: offsets.indexOf(q), component: null }) };
  }
  // bx = gx0·scale + offset ≡ offset (mod 4) for every tile
  const residue = ((axis.offset % 4) + 4) % 4;
  const groups = new Map<number, number[]>();
  for (const q of offsets) {
    const start = Math.floor((residue + q) / 4) * 4 - residue;
    groups.set(start, [...(groups.get(start) ?? []), q]);
  }
  const loads: ColumnLoad[] = [];
  const where = new Map<number, { load: number; component: number | null }>();
  for (const [start, members] of [...groups].sort((a, b) => a[0] - b[0])) {
    if (members.length === 1) {
      where.set(members[0], { load: loads.length, component: null });
      loads.push({ vector: false, start: members[0] });
    } else {
      for (const q of members) where.set(q, { load: loads.length, component: q - start });
      loads.push({ vector: true, start });
    }
  }
  const usesVector = loads.some((l) => l.vector);
  return { vector: usesVector, loads, locate: (q) => where.get(q)! };
}

export function directCode(spec: DirectSpec, label: string): string {
  const { tm, ty, tx } = spec;
  const [az, ay, ax] = spec.axes;
  const layout = directLayout(spec);
  const cg = layout.cg;
  const mg = layout.mg;
  const tpg = Math.ceil(mg / tm);
  const reader = weightReader(spec);
  const { tyc, txc, total } = tileCounts(spec);
  const spanChannels = lanesSpanChannels(spec);
  const invocations = spanChannels ? total * spec.groups * tpg : total;
  const [gridX, gridY] = spanChannels ? spanningGrid(spec) : [Math.ceil(invocations / spec.workgroup), 1];
  const overshoot = gridX * gridY * spec.workgroup !== invocations;
  const flat = gridY > 1 ? `(gid.x + gid.y * ${gridX * spec.workgroup}u)` : 'gid.x';
  const [D, H, W] = [az.inSize, ay.inSize, ax.inSize];
  const [OD, OH, OW] = [az.outSize, ay.outSize, ax.outSize];
  const lane = spec.subgroups && !spanChannels ? 'sg_lane' : null;
  const acc = (i: number, y: number, x: number) => `acc${i}_${y}_${x}`;
  const zReads = axisReads(az, 1);
  const yReads = axisReads(ay, ty);
  const xReads = axisReads(ax, tx);
  const columns = columnPlan(ax, tx, xReads.rel);
  const vecStores = ax.step === 1 && ax.start === 0 && OW % 4 === 0 && tx % 4 === 0;
  const name = (v: number) => (v < 0 ? `m${-v}` : `${v}`);
  const hasTaps = layout.taps.length > 0;

  const pre: string[] = [];
  pre.push(`let bz = i32(gz * ${az.scale}u) + ${az.offset};`);
  pre.push(`let by = i32(gy0 * ${ay.scale}u) + ${ay.offset};`);
  pre.push(`let bx = i32(gx0 * ${ax.scale}u) + ${ax.offset};`);
  const rowValid = new Map<string, string | null>();
  for (const rz of zReads.rel) {
    const zInside = alwaysInside(az, 1, rz);
    pre.push(`let iz${name(rz)} = bz + ${rz};`);
    for (const ry of yReads.rel) {
      const yInside = alwaysInside(ay, ty, ry);
      const key = `${name(rz)}_${name(ry)}`;
      pre.push(`let iy${key} = by + ${ry};`);
      const conditions: string[] = [];
      if (!zInside) conditions.push(`u32(iz${name(rz)}) < ${D}u`);
      if (!yInside) conditions.push(`u32(iy${key}) < ${H}u`);
      const valid = conditions.length ? conditions.join(' && ') : null;
      rowValid.set(key, valid ? `rv${key}` : null);
      if (valid) pre.push(`let rv${key} = ${valid};`);
      const zTerm = D > 1 ? `u32(iz${name(rz)}) * ${H * W}u + ` : '';
      pre.push(`let ro${key} = ${valid ? `select(0u, ${zTerm}u32(iy${key}) * ${W}u, rv${key})` : `${zTerm}u32(iy${key}) * ${W}u`};`);
    }
  }
  const colValid: (string | null)[] = [];
  columns.loads.forEach(({ vector, start }, j) => {
    const inside = alwaysInside(ax, tx, start) && alwaysInside(ax, tx, start + (vector ? 3 : 0));
    pre.push(`let ix${j} = bx + ${start};`);
    if (!inside) pre.push(`let cv${j} = u32(ix${j}) < ${W}u;`);
    colValid.push(inside ? null : `cv${j}`);
    pre.push(`let co${j} = ${inside ? `u32(ix${j})` : `select(0u, u32(ix${j}), cv${j})`};`);
  });

  const init: string[] = [];
  init.push(...reader.prologue(lane));
  for (let i = 0; i < tm; i++) {
    for (let y = 0; y < ty; y++) for (let x = 0; x < tx; x++) init.push(`var ${acc(i, y, x)} = ${reader.initial(i)};`);
  }

  const ntx = ax.taps.length;
  const nty = ay.taps.length;
  const body: string[] = [];
  if (hasTaps) {
    body.push(...reader.channel(lane));
    body.push(`let xc = xg + c * ${D * H * W}u;`);
    for (const zu of zReads.uses) {
      for (const ry of yReads.rel) {
        const key = `${name(zu.rel)}_${name(ry)}`;
        const yUses = yReads.uses.filter((u) => u.rel === ry);
        columns.loads.forEach(({ vector }, j) => {
          const conditions = [rowValid.get(key), colValid[j]].filter((v): v is string => !!v);
          const load = vector ? `x[(xc + ro${key} + co${j}) >> 2u]` : `${columns.vector ? 'xs' : 'x'}[xc + ro${key} + co${j}]`;
          const zero = vector ? 'vec4<f32>(0.0)' : '0.0';
          body.push(`let x${key}_${j} = ${conditions.length ? `select(${zero}, ${load}, ${conditions.join(' && ')})` : load};`);
        });
        for (const yu of yUses) {
          for (const xu of xReads.uses) {
            const tap = (zu.tap * nty + yu.tap) * ntx + xu.tap;
            const where = columns.locate(xu.rel);
            const value = where.component === null ? `x${key}_${where.load}` : `x${key}_${where.load}.${'xyzw'[where.component]}`;
            for (let i = 0; i < tm; i++) {
              const a = acc(i, yu.pos, xu.pos);
              body.push(`${a} = fma(${reader.weight(tap * tm + i)}, ${value}, ${a});`);
            }
          }
        }
      }
    }
  }

  const stores: string[] = [];
  stores.push(`let oz = ${az.start}u + gz * ${az.step}u;`);
  stores.push(`let ob = (n * ${spec.outChannels}u + g * ${mg}u + m0) * ${OD * OH * OW}u + oz * ${OH * OW}u;`);
  const xGroups = vecStores ? tx / 4 : tx;
  for (let y = 0; y < ty; y++) {
    for (let v = 0; v < xGroups; v++) {
      const x0 = vecStores ? v * 4 : v;
      const guards: string[] = [];
      if (overshoot) guards.push(`${flat} < ${invocations}u`);
      if (ay.count % ty !== 0) guards.push(`gy0 + ${y}u < ${ay.count}u`);
      if (ax.count % tx !== 0) guards.push(`gx0 + ${x0}u < ${ax.count}u`);
      const pixel = `(${ay.start}u + (gy0 + ${y}u) * ${ay.step}u) * ${OW}u + ${ax.start}u + (gx0 + ${x0}u) * ${ax.step}u`;
      const lines: string[] = [`let op${y}_${v} = ob + ${pixel};`];
      for (let i = 0; i < tm; i++) {
        const store = vecStores
          ? `y[(op${y}_${v} + ${i * OD * OH * OW}u) >> 2u] = vec4<f32>(${[0, 1, 2, 3].map((k) => `epilogue(${reader.result(i, acc(i, y, x0 + k))})`).join(', ')});`
          : `y[op${y}_${v} + ${i * OD * OH * OW}u] = epilogue(${reader.result(i, acc(i, y, x0))});`;
        lines.push(mg % tm !== 0 ? `if (m0 + ${i}u < ${mg}u) { ${store} }` : store);
      }
      stores.push(guards.length ? `if (${guards.join(' && ')}) {\n    ${lines.join('\n    ')}\n  }` : lines.join('\n  '));
    }
  }

  const params = ['@builtin(global_invocation_id) gid: vec3<u32>', '@builtin(workgroup_id) wid: vec3<u32>'];
  if (lane) params.push('@builtin(subgroup_invocation_id) sg_lane: u32');
  const loop = hasTaps
    ? `for (var c = 0u; c < ${opaqueBound(cg, 'n')}; c++) {\n    ${body.join('\n    ')}\n  }`
    : '// no kernel tap reaches these outputs: they hold the bias';
  const xType = columns.vector ? 'vec4<f32>' : 'f32';
  const yType = vecStores ? 'vec4<f32>' : 'f32';
  return `${lane ? 'enable subgroups;\n' : ''}// ${label}: direct conv, ${tm} channels x ${ty}x${tx} outputs per invocation
${hasTaps ? `@group(0) @binding(0) var<storage, read> x: array<${xType}>;\n` : ''}@group(0) @binding(${hasTaps ? 1 : 0}) var<storage, read> w: array<${reader.elementType}>;
@group(0) @binding(${hasTaps ? 2 : 1}) var<storage, read_write> y: array<${yType}>;
${hasTaps && needsScalarView(spec) ? '@group(0) @binding(3) var<storage, read> xs: array<f32>;\n' : ''}
${epilogueFunction(spec.epilogue)}

@compute @workgroup_size(${spec.workgroup})
fn main(${params.join(', ')}) {
  let n = wid.z;
  let slot = ${overshoot ? `min(${flat}, ${invocations - 1}u)` : flat};
  let mt = ${spanChannels ? `slot / ${total}u` : 'wid.y'};
  let tile = ${spanChannels ? `slot % ${total}u` : 'slot'};
  let g = mt / ${tpg}u;
  let m0 = (mt % ${tpg}u) * ${tm}u;
  let wt = mt * ${reader.tileStride}u;
  let gz = tile / ${tyc * txc}u;
  let gr = tile % ${tyc * txc}u;
  let gy0 = (gr / ${txc}u) * ${ty}u;
  let gx0 = (gr % ${txc}u) * ${tx}u;
  ${pre.join('\n  ')}
  let xg = (n * ${spec.inChannels}u + g * ${cg}u) * ${D * H * W}u;
  ${init.join('\n  ')}
  ${loop}
  ${stores.join('\n  ')}
}
`;
}
