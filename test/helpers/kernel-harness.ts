/**
 * Runs one operator's generated WGSL on the real WebGPU adapter (lavapipe here) and, for comparison, the same
 * node in onnxruntime-node. Kernel tests use it so that they need neither the graph compiler nor a full model.
 */
import os from 'node:os';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { create, globals } from 'webgpu';
import type { AttributeValue, DType, Node, Tensor, TensorType } from '../../daemon/graph/ir.ts';
import { elementCount, isFloatDType } from '../../daemon/graph/ir.ts';
import { findOp } from '../../daemon/kernels/registry.ts';
import { seededRandom } from '../../daemon/cli/random-inputs.ts';
import { packInt4, unpackInt4 } from '../../daemon/quant/packing.ts';
import type { BuildContext, DeviceCaps, Epilogue, KernelProgram, OpContext } from '../../daemon/kernels/types.ts';

const { onnx } = onnxProto;

export type AttrInput = number | number[] | string | string[] | { float: number } | { floats: number[] } | { tensor: Tensor };

export interface SingleOpCase {
  opType: string;
  domain?: string;
  opset?: number;
  /** null for an omitted optional input. */
  inputs: (Tensor | null)[];
  /** Indices of inputs that are compile-time constants (initializers in the ONNX model, `constants` for the op). */
  constantInputs?: number[];
  attributes?: Record<string, AttrInput>;
  outputCount?: number;
  epilogue?: Epilogue;
  /** Overrides of the adapter's capabilities seen by `build` (e.g. isCpu: false to run the GPU tiling here). */
  device?: Partial<DeviceCaps>;
}

function toAttribute(value: AttrInput): AttributeValue {
  if (typeof value === 'number') return Number.isInteger(value) ? { type: 'int', value } : { type: 'float', value };
  if (typeof value === 'string') return { type: 'string', value };
  if (Array.isArray(value)) {
    if (value.length && typeof value[0] === 'string') return { type: 'strings', value: value as string[] };
    const numbers = value as number[];
    return numbers.every(Number.isInteger) ? { type: 'ints', value: numbers } : { type: 'floats', value: numbers };
  }
  if ('float' in value) return { type: 'float', value: value.float };
  if ('floats' in value) return { type: 'floats', value: value.floats };
  return { type: 'tensor', value: value.tensor };
}

export function makeNode(c: SingleOpCase): Node {
  const attributes = new Map<string, AttributeValue>();
  for (const [name, value] of Object.entries(c.attributes ?? {})) attributes.set(name, toAttribute(value));
  return {
    name: `${c.opType.toLowerCase()}_under_test`,
    opType: c.opType,
    domain: c.domain ?? '',
    inputs: c.inputs.map((t, i) => (t ? `in${i}` : '')),
    outputs: Array.from({ length: c.outputCount ?? 1 }, (_, i) => `out${i}`),
    attributes,
  };
}

export function opContextFor(c: SingleOpCase): OpContext {
  const constants = new Set(c.constantInputs ?? []);
  return {
    node: makeNode(c),
    opset: c.opset ?? 17,
    inputs: c.inputs.map((t) => (t ? { dtype: t.dtype, shape: t.dims } : null)),
    constants: c.inputs.map((t, i) => (t && constants.has(i) ? t : null)),
  };
}

let devicePromise: Promise<{ device: GPUDevice; caps: DeviceCaps }> | undefined;
/** Held for the life of the process: dawn.node crashes at random later calls once the GPU instance is garbage collected. */
let gpuInstance: GPU | undefined;

export async function testDevice(): Promise<{ device: GPUDevice; caps: DeviceCaps }> {
  devicePromise ??= (async () => {
    process.env.XDG_RUNTIME_DIR ??= os.tmpdir();
    Object.assign(globalThis, globals);
    const gpu = create(['enable-dawn-features=allow_unsafe_apis,disable_robustness']);
    gpuInstance = gpu;
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter: install mesa-vulkan-drivers >= 25 (see .ci/install-system.sh)');
    const features = [...adapter.features].filter((f) => ['shader-f16', 'subgroups', 'timestamp-query'].includes(f)) as GPUFeatureName[];
    const l = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
        maxBufferSize: l.maxBufferSize,
        maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
        maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const info = adapter.info;
    const caps: DeviceCaps = {
      vendor: info.vendor,
      architecture: info.architecture,
      isCpu: /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description} ${info.architecture}`) || (info as { isFallbackAdapter?: boolean }).isFallbackAdapter === true,
      features: new Set([...device.features, ...[...(gpu.wgslLanguageFeatures ?? [])].map((f) => `wgsl:${f}`)]),
      limits: {
        maxComputeWorkgroupSizeX: device.limits.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: device.limits.maxComputeWorkgroupSizeY,
        maxComputeInvocationsPerWorkgroup: device.limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupStorageSize: device.limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
        maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
        maxBufferSize: device.limits.maxBufferSize,
      },
    };
    return { device, caps };
  })();
  return devicePromise;
}

/** Builds the op's programs (through the registry) without running them. */
export async function buildSingleOp(c: SingleOpCase): Promise<{ programs: KernelProgram[]; outputs: TensorType[] }> {
  const op = findOp(c.domain ?? '', c.opType);
  if (!op) throw new Error(`op ${c.opType} is not registered`);
  const ctx = opContextFor(c);
  const outputs = op.infer(ctx);
  const { caps } = await testDevice();
  const buildCtx: BuildContext = { ...ctx, outputs, device: { ...caps, ...c.device }, ...(c.epilogue ? { epilogue: c.epilogue } : {}) };
  return { programs: op.aliasesInput0 ? [] : op.build!(buildCtx), outputs };
}

async function checkedCreate<T>(device: GPUDevice, label: string, make: () => T): Promise<T> {
  device.pushErrorScope('validation');
  const value = make();
  const error = await device.popErrorScope();
  if (error) throw new Error(`${label}: ${error.message}`);
  return value;
}

/** Runs the op on the GPU and returns its outputs as host tensors. */
export async function runSingleOpOnGpu(c: SingleOpCase): Promise<Tensor[]> {
  const op = findOp(c.domain ?? '', c.opType);
  if (!op) throw new Error(`op ${c.opType} is not registered`);
  const { programs, outputs } = await buildSingleOp(c);
  if (op.aliasesInput0) {
    const source = c.inputs[0]!;
    return [{ dtype: outputs[0].dtype, dims: outputs[0].shape, data: source.data.slice() }];
  }
  const { device } = await testDevice();
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const created: GPUBuffer[] = [];
  const makeBuffer = (bytes: number): GPUBuffer => {
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    created.push(buffer);
    return buffer;
  };
  const inputBuffers = c.inputs.map((t) => {
    if (!t) return null;
    const buffer = makeBuffer(t.data.byteLength);
    device.queue.writeBuffer(buffer, 0, t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return buffer;
  });
  const outputBuffers = outputs.map((o) => makeBuffer(Math.max(4, elementCount(o.shape) * 4)));
  const scratch = new Map<number, GPUBuffer>();
  const encoder = device.createCommandEncoder();
  for (const program of programs) {
    const module = await checkedCreate(device, program.label, () => device.createShaderModule({ code: program.code, label: program.label }));
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) throw new Error(`${program.label}: ${errors.map((e) => `line ${e.lineNum}: ${e.message}`).join('; ')}\n${program.code}`);
    const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: program.label });
    const entries = program.bindings.map((binding, index) => {
      let buffer: GPUBuffer;
      if (binding.kind === 'input') {
        const b = inputBuffers[binding.index];
        if (!b) throw new Error(`${program.label}: binding ${index} refers to omitted input ${binding.index}`);
        buffer = b;
      } else if (binding.kind === 'output') {
        buffer = outputBuffers[binding.index];
      } else if (binding.kind === 'scratch') {
        let b = scratch.get(binding.id);
        if (!b) { b = makeBuffer(binding.bytes); scratch.set(binding.id, b); }
        buffer = b;
      } else {
        buffer = makeBuffer(binding.data.byteLength);
        device.queue.writeBuffer(buffer, 0, binding.data.buffer, binding.data.byteOffset, binding.data.byteLength);
      }
      return { binding: index, resource: { buffer } };
    });
    const bindGroup = await checkedCreate(device, program.label, () => device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...program.workgroups);
    pass.end();
  }
  const staging = outputs.map((o, i) => {
    const bytes = outputBuffers[i].size;
    const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    created.push(read);
    encoder.copyBufferToBuffer(outputBuffers[i], 0, read, 0, bytes);
    return read;
  });
  device.pushErrorScope('validation');
  device.queue.submit([encoder.finish()]);
  const submitError = await device.popErrorScope();
  if (submitError) throw new Error(`${c.opType}: ${submitError.message}`);
  const results: Tensor[] = [];
  for (let i = 0; i < outputs.length; i++) {
    await staging[i].mapAsync(GPUMapMode.READ);
    const count = elementCount(outputs[i].shape);
    const bytes = staging[i].getMappedRange().slice(0, count * 4);
    staging[i].unmap();
    const data = isFloatDType(outputs[i].dtype) ? new Float32Array(bytes) : new Int32Array(bytes);
    results.push({ dtype: outputs[i].dtype, dims: outputs[i].shape, data });
  }
  for (const buffer of created) buffer.destroy();
  return results;
}

const ONNX_TYPE: Record<DType, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11,
  uint32: 12, uint64: 13, bfloat16: 16, uint4: 21, int4: 22,
};

function tensorProto(name: string, t: Tensor): onnxProto.onnx.ITensorProto {
  const proto: onnxProto.onnx.ITensorProto = { name, dims: t.dims, dataType: ONNX_TYPE[t.dtype] };
  proto.rawData = t.dtype === 'int4' || t.dtype === 'uint4' ? packInt4(t.data, t.dtype === 'int4') : hostToOrtData(t).bytes;
  return proto;
}

function hostToOrtData(t: Tensor): { bytes: Uint8Array; typed: ort.Tensor['data'] } {
  let typed: Float32Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array;
  switch (t.dtype) {
    case 'float32': typed = Float32Array.from(t.data); break;
    case 'float64': typed = Float64Array.from(t.data); break;
    case 'int64': typed = BigInt64Array.from(Array.from(t.data, (v) => BigInt(Math.trunc(v)))); break;
    case 'int32': typed = Int32Array.from(t.data); break;
    case 'bool': case 'uint8': typed = Uint8Array.from(t.data); break;
    case 'int8': typed = Int8Array.from(t.data); break;
    default: throw new Error(`harness: dtype ${t.dtype} not supported for onnxruntime inputs`);
  }
  return { bytes: new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength), typed };
}

/** Builds a one-node ONNX model of the case: constant inputs become initializers. */
export function singleNodeModel(c: SingleOpCase, outputDTypes: DType[]): Uint8Array {
  const node = makeNode(c);
  const constants = new Set(c.constantInputs ?? []);
  const attribute = [...node.attributes].map(([name, value]): onnxProto.onnx.IAttributeProto => {
    switch (value.type) {
      case 'int': return { name, type: onnx.AttributeProto.AttributeType.INT, i: value.value };
      case 'float': return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value.value };
      case 'string': return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(value.value) };
      case 'ints': return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value.value };
      case 'floats': return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: value.value };
      case 'strings': return { name, type: onnx.AttributeProto.AttributeType.STRINGS, strings: value.value.map((s) => new TextEncoder().encode(s)) };
      case 'tensor': return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t: tensorProto('', value.value) };
      default: throw new Error('harness: graph attributes are not supported');
    }
  });
  const valueInfo = (name: string, dtype: DType) => ({ name, type: { tensorType: { elemType: ONNX_TYPE[dtype] } } });
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'single_op',
    node: [{ name: node.name, opType: node.opType, domain: node.domain, input: node.inputs, output: node.outputs, attribute }],
    initializer: c.inputs.flatMap((t, i) => (t && constants.has(i) ? [tensorProto(`in${i}`, t)] : [])),
    input: c.inputs.flatMap((t, i) => (t && !constants.has(i) ? [valueInfo(`in${i}`, t.dtype)] : [])),
    output: node.outputs.map((name, i) => valueInfo(name, outputDTypes[i])),
  };
  const opsetImport = [{ domain: '', version: c.opset ?? 17 }];
  if (c.domain) opsetImport.push({ domain: c.domain, version: 1 });
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'edgerun-test', opsetImport, graph });
  return onnx.ModelProto.encode(model).finish();
}

function ortToHost(t: ort.Tensor): Tensor {
  const dims = [...t.dims];
  if ((t.type as string) === 'int4' || (t.type as string) === 'uint4') {
    const packed = t.data as Int8Array | Uint8Array;
    const bytes = new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
    return { dtype: t.type as DType, dims, data: Int32Array.from(unpackInt4(bytes, elementCount(dims), t.type === 'int4')) };
  }
  const dtype: DType = t.type === 'float32' ? 'float32' : t.type === 'int64' ? 'int64' : t.type === 'bool' ? 'bool' : t.type === 'int32' ? 'int32' : t.type === 'uint8' ? 'uint8' : t.type === 'int8' ? 'int8' : 'float32';
  const source = t.data as ArrayLike<number | bigint | boolean>;
  const data = dtype === 'float32'
    ? Float32Array.from(source as ArrayLike<number>)
    : Int32Array.from(Array.from(source, (v) => Number(v)));
  return { dtype, dims, data };
}

/** Runs the single-node model in onnxruntime-node (the oracle). */
export async function runSingleOpOnOrt(c: SingleOpCase, outputDTypes: DType[]): Promise<Tensor[]> {
  const bytes = singleNodeModel(c, outputDTypes);
  const session = await ort.InferenceSession.create(bytes);
  const constants = new Set(c.constantInputs ?? []);
  const feeds: Record<string, ort.Tensor> = {};
  c.inputs.forEach((t, i) => {
    if (!t || constants.has(i)) return;
    const ortType = t.dtype === 'float32' ? 'float32' : t.dtype === 'int64' ? 'int64' : t.dtype === 'int32' ? 'int32' : t.dtype === 'bool' ? 'bool' : t.dtype === 'uint8' ? 'uint8' : t.dtype === 'int8' ? 'int8' : 'float64';
    feeds[`in${i}`] = new ort.Tensor(ortType as 'float32', hostToOrtData(t).typed as Float32Array, t.dims);
  });
  const result = await session.run(feeds);
  await session.release();
  return makeNode(c).outputs.map((name) => ortToHost(result[name]));
}

/** Runs the case on both and returns the pair for comparison. */
export async function runBoth(c: SingleOpCase): Promise<{ gpu: Tensor[]; ort: Tensor[] }> {
  const gpu = await runSingleOpOnGpu(c);
  const ortOut = await runSingleOpOnOrt(c, gpu.map((t) => t.dtype));
  return { gpu, ort: ortOut };
}

/** Max |a-b| and the worst relative error, with shape and dtype checked. */
export function compareTensors(actual: Tensor, expected: Tensor): { maxAbs: number; maxRel: number; mismatch?: string } {
  if (actual.dims.join(',') !== expected.dims.join(',')) return { maxAbs: Infinity, maxRel: Infinity, mismatch: `shape [${actual.dims}] vs [${expected.dims}]` };
  let maxAbs = 0;
  let maxRel = 0;
  for (let i = 0; i < actual.data.length; i++) {
    const a = actual.data[i];
    const e = expected.data[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (Number.isNaN(a) !== Number.isNaN(e)) return { maxAbs: Infinity, maxRel: Infinity, mismatch: `NaN at ${i}` };
    if (a === e) continue;
    const diff = Math.abs(a - e);
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, diff / Math.max(Math.abs(e), 1e-6));
  }
  return { maxAbs, maxRel };
}

/** A seeded PRNG (mulberry32) for reproducible test data: the CLI's own. */
export { seededRandom };

export function randomTensor(dims: number[], seed: number, lo = -1, hi = 1): Tensor {
  const rand = seededRandom(seed);
  const data = new Float32Array(elementCount(dims));
  for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * rand();
  return { dtype: 'float32', dims, data };
}

export function intTensor(dtype: DType, dims: number[], values: number[]): Tensor {
  return { dtype, dims, data: Int32Array.from(values) };
}

export function floatTensor(dims: number[], values: number[]): Tensor {
  return { dtype: 'float32', dims, data: Float32Array.from(values) };
}
