/**
 * The graph compiler: model + concrete input shapes + device capabilities → ExecutionPlan.
 * fuse quantized weights (DequantizeLinear/MatMulNBits into packed-weight kernels, before folding could
 * dequantize them) → analyze (shape inference, constant folding) → fuse (BatchNorm into Conv, layer norm,
 * elementwise chains, epilogues) → plan (WGSL per node, buffer reuse, pipeline dedupe).
 */
import { logger } from '../log.ts';
import type { DeviceCaps } from '../kernels/types.ts';
import type { ExecutionPlan } from '../gpu/plan.ts';
import { analyzeGraph } from './analyze.ts';
import { fuseDequantize } from './fuse-dequant.ts';
import { fuseElementwise } from './fuse-elementwise.ts';
import { foldBatchNormIntoConv } from './fuse-batchnorm.ts';
import { fuseLayerNorm } from './fuse-layernorm.ts';
import type { DType, Model, Tensor } from './ir.ts';
import { planGraph, type PlanStats } from './plan.ts';

export interface CompileOptions {
  inputShapes: Map<string, number[]>;
  caps: DeviceCaps;
  /** Fusion passes on (default). Off only to test the passes themselves. */
  fuse?: boolean;
}

export interface CompiledTensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

export interface CompiledModel {
  plan: ExecutionPlan;
  inputs: CompiledTensorInfo[];
  /** Outputs in graph order; `constant` is set for outputs folded at compile time (not computed on the GPU). */
  outputs: (CompiledTensorInfo & { constant?: Tensor })[];
  stats: PlanStats & {
    nodes: number;
    foldedNodes: number;
    batchNormsFolded: number;
    layerNormsFused: number;
    fusedElementwiseGroups: number;
    fusedEpilogues: number;
    /** MatMul/Gemm/MatMulNBits and Conv nodes that run on packed quantized weights. */
    quantizedMatMuls: number;
    quantizedConvs: number;
    /** QuantizeLinear → DequantizeLinear activation pairs run as fused elementwise arithmetic. */
    activationQdqPairs: number;
    compileMs: number;
  };
  nodeInfo: { name: string; opType: string; flops: number }[];
}

const log = logger.child({ component: 'compiler' });

export function compileModel(model: Model, options: CompileOptions): CompiledModel {
  const started = performance.now();
  const { graph } = model;
  const fuse = options.fuse ?? true;
  const dequant = fuse ? fuseDequantize(graph, model.opsets) : { graph, quantizedMatMuls: 0, quantizedConvs: 0, activationQdqPairs: 0 };
  const analyzed = analyzeGraph(dequant.graph, model.opsets, options.inputShapes);
  const graphOutputs = new Set(graph.outputs.map((o) => o.name));
  let batchNormsFolded = 0;
  let layerNormsFused = 0;
  let fusedElementwiseGroups = 0;
  let fusedEpilogues = 0;
  let epilogues = new Map();
  if (fuse) {
    const bn = foldBatchNormIntoConv(analyzed, graphOutputs);
    analyzed.nodes = bn.nodes;
    batchNormsFolded = bn.folded;
    const ln = fuseLayerNorm(analyzed, graphOutputs);
    analyzed.nodes = ln.nodes;
    layerNormsFused = ln.fused;
    const maxTensorInputs = Math.max(1, Math.min(8, options.caps.limits.maxStorageBuffersPerShaderStage) - 1);
    const ew = fuseElementwise(analyzed, graphOutputs, maxTensorInputs);
    analyzed.nodes = ew.nodes;
    epilogues = ew.epilogues;
    fusedElementwiseGroups = ew.fusedGroups;
    fusedEpilogues = ew.fusedEpilogues;
  }
  const planned = planGraph(analyzed, analyzed.nodes, epilogues, graph.inputs, graph.outputs, options.caps);
  const dump = process.env.EDGERUN_DUMP_WGSL;
  if (dump === '1' || dump === 'true') {
    for (const pipeline of planned.plan.pipelines) process.stderr.write(`// ---- ${pipeline.label} [${pipeline.key}]\n${pipeline.code}\n`);
  }
  const compiled: CompiledModel = {
    plan: planned.plan,
    inputs: graph.inputs.map((input) => ({ name: input.name, dtype: input.dtype, shape: analyzed.types.get(input.name)!.shape })),
    outputs: graph.outputs.map((output) => {
      const type = analyzed.types.get(output.name)!;
      const constant = planned.plan.outputs.some((o) => o.name === output.name) ? undefined : analyzed.constants.get(output.name);
      return { name: output.name, dtype: type.dtype, shape: type.shape, ...(constant ? { constant } : {}) };
    }),
    stats: {
      ...planned.stats,
      nodes: graph.nodes.length,
      foldedNodes: analyzed.foldedNodes,
      batchNormsFolded,
      layerNormsFused,
      fusedElementwiseGroups,
      fusedEpilogues,
      quantizedMatMuls: dequant.quantizedMatMuls,
      quantizedConvs: dequant.quantizedConvs,
      activationQdqPairs: dequant.activationQdqPairs,
      compileMs: performance.now() - started,
    },
    nodeInfo: planned.nodeInfo,
  };
  log.debug({ stats: compiled.stats }, 'compiled graph');
  return compiled;
}
