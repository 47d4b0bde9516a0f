/**
 * Checks on the main thread, before anything crosses to the GPU thread: a plan that breaks the adapter's
 * limits fails with EDGERUN_ERR_GPU_LIMIT naming the buffer or node, a malformed plan (a compiler bug) with
 * EDGERUN_ERR_GPU_VALIDATION, and run inputs with EDGERUN_ERR_INPUT. The GPU thread then trusts them.
 */
import { EdgerunError } from '../errors.ts';
import type { DeviceCaps } from '../kernels/types.ts';
import type { ExecutionPlan, PlannedIO } from './plan.ts';

const malformed = (message: string, context: Record<string, unknown> = {}): EdgerunError =>
  new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `invalid execution plan: ${message}`, context);

const isMultipleOf4 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n % 4 === 0;

export function checkPlan(plan: ExecutionPlan, caps: DeviceCaps, minStorageBufferOffsetAlignment: number): void {
  const sizes = new Map<number, number>();
  for (const buffer of plan.buffers) {
    if (sizes.has(buffer.id)) throw malformed(`buffer ${buffer.id} is declared twice`, { buffer: buffer.id });
    if (!isMultipleOf4(buffer.bytes) || buffer.bytes < 4) throw malformed(`buffer ${buffer.id} has ${buffer.bytes} bytes (need a multiple of 4, at least 4)`, { buffer: buffer.id });
    if (buffer.bytes > caps.limits.maxBufferSize) {
      throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT', `buffer ${buffer.id} needs ${buffer.bytes} bytes, over the adapter's maxBufferSize ${caps.limits.maxBufferSize}`,
        { buffer: buffer.id, bytes: buffer.bytes, limit: caps.limits.maxBufferSize });
    }
    sizes.set(buffer.id, buffer.bytes);
  }
  const within = (what: string, buffer: number, offset: number, bytes: number, context: Record<string, unknown>): void => {
    const size = sizes.get(buffer);
    if (size === undefined) throw malformed(`${what} refers to unknown buffer ${buffer}`, context);
    if (!isMultipleOf4(offset) || !isMultipleOf4(bytes) || bytes === 0) throw malformed(`${what} has offset ${offset} / size ${bytes} not multiples of 4`, context);
    if (offset + bytes > size) throw malformed(`${what} (offset ${offset}, ${bytes} bytes) overruns buffer ${buffer} of ${size} bytes`, context);
  };

  plan.pipelines.forEach((p, i) => {
    if (!p.key || !p.label || !p.code) throw malformed(`pipeline ${i} lacks a key, label or code`, { pipeline: i, label: p.label });
  });
  plan.constants.forEach((c, i) => {
    if (!(c.data instanceof ArrayBuffer)) throw malformed(`constant ${i} data is not an ArrayBuffer`, { constant: i });
    within(`constant ${i}`, c.buffer, c.offset, c.data.byteLength, { constant: i });
  });
  const { limits } = caps;
  for (const step of plan.steps) {
    const context = { node: step.node };
    const pipeline = plan.pipelines[step.pipeline];
    if (!pipeline) throw malformed(`node ${step.node} uses unknown pipeline ${step.pipeline}`, context);
    if (step.bindings.length > limits.maxStorageBuffersPerShaderStage) {
      throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
        `node ${step.node} (${pipeline.label}) binds ${step.bindings.length} storage buffers, over the adapter's ${limits.maxStorageBuffersPerShaderStage}`,
        { ...context, program: pipeline.label });
    }
    for (const count of step.workgroups) {
      if (!Number.isInteger(count) || count < 0) throw malformed(`node ${step.node} dispatches ${step.workgroups.join('×')} workgroups`, context);
      if (count > limits.maxComputeWorkgroupsPerDimension) {
        throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
          `node ${step.node} (${pipeline.label}) dispatches ${step.workgroups.join('×')} workgroups, over the adapter's ${limits.maxComputeWorkgroupsPerDimension} per dimension`,
          { ...context, program: pipeline.label });
      }
    }
    step.bindings.forEach((binding, i) => {
      within(`node ${step.node} binding ${i}`, binding.buffer, binding.offset, binding.size, context);
      if (binding.offset % minStorageBufferOffsetAlignment !== 0) {
        throw malformed(`node ${step.node} binding ${i} offset ${binding.offset} is not a multiple of minStorageBufferOffsetAlignment ${minStorageBufferOffsetAlignment}`, context);
      }
      if (binding.size > limits.maxStorageBufferBindingSize) {
        throw new EdgerunError('EDGERUN_ERR_GPU_LIMIT',
          `node ${step.node} (${pipeline.label}) binds ${binding.size} bytes, over the adapter's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`,
          { ...context, program: pipeline.label, bytes: binding.size });
      }
    });
  }
  for (const [kind, list] of [['input', plan.inputs], ['output', plan.outputs]] as const) {
    const names = new Set<string>();
    for (const io of list) {
      if (names.has(io.name)) throw malformed(`${kind} "${io.name}" is declared twice`, { [kind]: io.name });
      names.add(io.name);
      within(`${kind} "${io.name}"`, io.buffer, io.offset, io.bytes, { [kind]: io.name });
    }
  }
}

/** Every planned input present, as an ArrayBuffer of exactly the planned size; nothing else. */
export function checkInputs(planned: readonly PlannedIO[], inputs: Map<string, ArrayBuffer>): void {
  for (const io of planned) {
    const data = inputs.get(io.name);
    if (data === undefined) throw new EdgerunError('EDGERUN_ERR_INPUT', `input "${io.name}" is missing`, { input: io.name });
    if (!(data instanceof ArrayBuffer)) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input "${io.name}" must be an ArrayBuffer (not a view or SharedArrayBuffer)`, { input: io.name });
    }
    if (data.byteLength !== io.bytes) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `input "${io.name}" has ${data.byteLength} bytes, expected ${io.bytes}`,
        { input: io.name, bytes: data.byteLength, expected: io.bytes });
    }
  }
  if (inputs.size !== planned.length) {
    const known = new Set(planned.map((io) => io.name));
    const unknown = [...inputs.keys()].find((name) => !known.has(name));
    throw new EdgerunError('EDGERUN_ERR_INPUT', `unknown input "${unknown}" (expected ${[...known].join(', ') || 'none'})`, { input: unknown });
  }
}
