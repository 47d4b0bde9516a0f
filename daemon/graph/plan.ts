/**
 * Turns the fused, typed node list into an ExecutionPlan: generates every node's programs, assigns each
 * value a GPU buffer (activations reuse buffers whose values are dead — best fit by size, by lifetime),
 * dedupes pipelines by specialisation key and orders the dispatches. Runs on the main thread.
 */
import { EdgerunError } from '../errors.ts';
import { opFor } from '../kernels/registry.ts';
import type { BuildContext, DeviceCaps, Epilogue, KernelProgram } from '../kernels/types.ts';
import type { ExecutionPlan, PlannedBinding, PlannedStep } from '../gpu/plan.ts';
import { contextFor, type AnalyzedGraph } from './analyze.ts';
import { nodeFlops } from './flops.ts';
import { elementCount, type Node, type TensorType, type ValueInfo } from './ir.ts';

export interface PlanStats {
  dispatches: number;
  pipelines: number;
  activationBytes: number;
  constantBytes: number;
  flops: number;
}

export interface PlannedModel {
  plan: ExecutionPlan;
  stats: PlanStats;
  /** Per node: its label, op and FLOPs (for profiles). */
  nodeInfo: { name: string; opType: string; flops: number }[];
}

interface Storage {
  bytes: number;
  buffer: number;
  lastUse: number;
}

function tensorBytes(type: TensorType): number {
  return Math.max(4, elementCount(type.shape) * 4);
}

export function planGraph(
  graph: AnalyzedGraph,
  nodes: Node[],
  epilogues: Map<Node, Epilogue>,
  inputs: ValueInfo[],
  outputs: ValueInfo[],
  caps: DeviceCaps,
): PlannedModel {
  const plan: ExecutionPlan = { pipelines: [], buffers: [], constants: [], steps: [], inputs: [], outputs: [] };
  const pipelineIndex = new Map<string, number>();
  const storageOf = new Map<string, Storage>();
  const freeBuffers: number[] = [];
  let constantBytes = 0;
  let flops = 0;
  const nodeInfo: PlannedModel['nodeInfo'] = [];

  const newBuffer = (bytes: number): number => {
    const id = plan.buffers.length;
    plan.buffers.push({ id, bytes: align4(bytes) });
    return id;
  };
  const acquire = (bytes: number): number => {
    let best = -1;
    for (let i = 0; i < freeBuffers.length; i++) {
      const size = plan.buffers[freeBuffers[i]].bytes;
      if (size >= bytes && (best < 0 || size < plan.buffers[freeBuffers[best]].bytes)) best = i;
    }
    if (best < 0 && freeBuffers.length) {
      best = 0;
      for (let i = 1; i < freeBuffers.length; i++) {
        if (plan.buffers[freeBuffers[i]].bytes > plan.buffers[freeBuffers[best]].bytes) best = i;
      }
      plan.buffers[freeBuffers[best]].bytes = align4(bytes);
    }
    if (best >= 0) return freeBuffers.splice(best, 1)[0];
    return newBuffer(bytes);
  };
  const constantBuffer = (data: Float32Array | Int32Array | Uint32Array): number => {
    const id = newBuffer(data.byteLength);
    plan.constants.push({ buffer: id, offset: 0, data: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer });
    constantBytes += data.byteLength;
    return id;
  };

  // Last use of every value: graph outputs live to the end.
  const lastUse = new Map<string, number>();
  nodes.forEach((node, index) => {
    for (const input of node.inputs) if (input !== '') lastUse.set(input, index);
  });
  const aliasSource = new Map<string, string>();
  nodes.forEach((node) => {
    const op = opFor(node, contextFor(node, graph.opsets, graph.types, graph.constants).opset);
    if (op.aliasesInput0) aliasSource.set(node.outputs[0], node.inputs[0]);
  });
  // A view keeps its source alive for as long as the view is used.
  for (let i = nodes.length - 1; i >= 0; i--) {
    const source = aliasSource.get(nodes[i].outputs[0]);
    if (source === undefined) continue;
    const viewUse = lastUse.get(nodes[i].outputs[0]) ?? i;
    lastUse.set(source, Math.max(lastUse.get(source) ?? i, viewUse));
  }
  const outputNames = new Set(outputs.map((o) => o.name));
  for (const name of outputNames) {
    lastUse.set(name, Infinity);
    let source = aliasSource.get(name);
    while (source !== undefined) {
      lastUse.set(source, Infinity);
      source = aliasSource.get(source);
    }
  }

  for (const input of inputs) {
    const type = graph.types.get(input.name)!;
    const bytes = tensorBytes(type);
    const storage: Storage = { bytes, buffer: newBuffer(bytes), lastUse: Infinity };
    storageOf.set(input.name, storage);
    plan.inputs.push({ name: input.name, buffer: storage.buffer, offset: 0, bytes: elementCount(type.shape) * 4 });
  }

  const storageForInput = (name: string): Storage => {
    const existing = storageOf.get(name);
    if (existing) return existing;
    const constant = graph.constants.get(name);
    if (!constant) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `value '${name}' is used before it is produced`, { value: name });
    const storage: Storage = { bytes: tensorBytes({ dtype: constant.dtype, shape: constant.dims }), buffer: constantBuffer(constant.data), lastUse: Infinity };
    storageOf.set(name, storage);
    return storage;
  };

  nodes.forEach((node, index) => {
    const ctx = contextFor(node, graph.opsets, graph.types, graph.constants);
    const op = opFor(node, ctx.opset);
    const outputTypes = node.outputs.map((name) => graph.types.get(name)!);
    const nodeFlopCount = nodeFlops(node, ctx.inputs, outputTypes);
    flops += nodeFlopCount;
    nodeInfo.push({ name: node.name, opType: node.opType, flops: nodeFlopCount });

    if (op.aliasesInput0) {
      const source = graph.constants.has(node.inputs[0]) ? storageForInput(node.inputs[0]) : storageOf.get(node.inputs[0])!;
      storageOf.set(node.outputs[0], source);
      return;
    }
    node.outputs.forEach((name, i) => {
      if (name === '') return;
      const bytes = tensorBytes(outputTypes[i]);
      storageOf.set(name, { bytes, buffer: acquire(bytes), lastUse: lastUse.get(name) ?? index });
    });
    const epilogue = epilogues.get(node);
    const buildCtx: BuildContext = { ...ctx, outputs: outputTypes, device: caps, ...(epilogue ? { epilogue } : {}) };
    let programs: KernelProgram[];
    try {
      programs = op.build!(buildCtx);
    } catch (error) {
      if (error instanceof EdgerunError) throw error;
      throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP', `building kernels for node '${node.name}' (${node.opType}) failed: ${(error as Error).message}`, { node: node.name }, { cause: error });
    }
    const scratch = new Map<number, number>();
    for (const program of programs) {
      const bindings: PlannedBinding[] = program.bindings.map((binding) => {
        switch (binding.kind) {
          case 'input': {
            const name = node.inputs[binding.index];
            if (!name) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `program '${program.label}' binds omitted input ${binding.index} of node '${node.name}'`, { node: node.name });
            const storage = storageForInput(name);
            return { buffer: storage.buffer, offset: 0, size: tensorBytes(graph.types.get(name)!) };
          }
          case 'output': {
            const storage = storageOf.get(node.outputs[binding.index])!;
            return { buffer: storage.buffer, offset: 0, size: tensorBytes(outputTypes[binding.index]) };
          }
          case 'scratch': {
            let buffer = scratch.get(binding.id);
            if (buffer === undefined) {
              buffer = acquire(binding.bytes);
              scratch.set(binding.id, buffer);
            }
            return { buffer, offset: 0, size: align4(Math.max(4, binding.bytes)) };
          }
          case 'constant':
            return { buffer: constantBuffer(binding.data), offset: 0, size: align4(Math.max(4, binding.data.byteLength)) };
        }
      });
      if (program.workgroups.some((count) => count === 0)) continue;
      let pipeline = pipelineIndex.get(program.key);
      if (pipeline === undefined) {
        pipeline = plan.pipelines.length;
        pipelineIndex.set(program.key, pipeline);
        plan.pipelines.push({ key: program.key, label: program.label, code: program.code });
      } else if (plan.pipelines[pipeline].code !== program.code) {
        throw new EdgerunError('EDGERUN_ERR_GPU_VALIDATION', `specialisation key '${program.key}' maps to two different programs (node '${node.name}')`, { node: node.name, key: program.key });
      }
      const step: PlannedStep = { pipeline, bindings, workgroups: program.workgroups, node: node.name };
      plan.steps.push(step);
    }
    // Scratch and values whose last reader was this node return to the pool.
    for (const buffer of scratch.values()) freeBuffers.push(buffer);
    const released = new Set<number>();
    for (const name of [...node.inputs, ...node.outputs]) {
      if (name === '' || aliasSource.has(name)) continue;
      const storage = storageOf.get(name);
      if (!storage || storage.lastUse > index || storage.lastUse === Infinity) continue;
      if (graph.constants.has(name) || inputs.some((i) => i.name === name)) continue;
      if (!released.has(storage.buffer)) {
        released.add(storage.buffer);
        freeBuffers.push(storage.buffer);
      }
    }
    // Values whose last use came through a view are released when the view's last reader runs.
    for (const name of node.inputs) {
      let source = aliasSource.get(name);
      while (source !== undefined) {
        const storage = storageOf.get(source);
        if (storage && storage.lastUse === index && !released.has(storage.buffer) && !graph.constants.has(source) && !inputs.some((i) => i.name === source)) {
          released.add(storage.buffer);
          freeBuffers.push(storage.buffer);
        }
        source = aliasSource.get(source);
      }
    }
  });

  for (const output of outputs) {
    if (graph.constants.has(output.name) && !storageOf.has(output.name)) continue;
    const storage = storageOf.get(output.name);
    if (!storage) throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID', `graph output '${output.name}' is never produced`, { output: output.name });
    const type = graph.types.get(output.name)!;
    plan.outputs.push({ name: output.name, buffer: storage.buffer, offset: 0, bytes: elementCount(type.shape) * 4 });
  }

  const constantIds = new Set(plan.constants.map((c) => c.buffer));
  const activationBytes = plan.buffers.filter((b) => !constantIds.has(b.id)).reduce((sum, b) => sum + b.bytes, 0);
  return {
    plan,
    stats: { dispatches: plan.steps.length, pipelines: plan.pipelines.length, activationBytes, constantBytes, flops },
    nodeInfo,
  };
}

function align4(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

