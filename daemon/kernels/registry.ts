/** Every operator the runtime implements, by domain and opType. */
import { EdgerunError } from '../errors.ts';
import type { Node } from '../graph/ir.ts';
import type { OpDefinition } from './types.ts';
import { ops as batchNormOps } from './batch-norm.ts';
import { ops as convOps } from './conv.ts';
import { ops as convTransposeOps } from './conv-transpose.ts';
import { ops as dataMovementOps } from './data-movement.ts';
import { ops as elementwiseOps } from './elementwise.ts';
import { ops as matmulOps } from './matmul.ts';
import { ops as normalizationOps } from './normalization.ts';
import { ops as poolOps } from './pool.ts';
import { ops as quantConvOps } from './quant-conv.ts';
import { ops as quantMatmulOps } from './quant-matmul.ts';
import { ops as reduceOps } from './reduce.ts';
import { ops as resizeOps } from './resize.ts';
import { ops as shapeOps } from './shape-ops.ts';
import { ops as softmaxOps } from './softmax.ts';

const ALL_OPS: OpDefinition[] = [
  ...batchNormOps, ...convOps, ...convTransposeOps, ...dataMovementOps, ...elementwiseOps, ...matmulOps,
  ...normalizationOps, ...poolOps, ...quantConvOps, ...quantMatmulOps, ...reduceOps, ...resizeOps, ...shapeOps, ...softmaxOps,
];

function keyOf(domain: string, opType: string): string {
  return `${domain === 'ai.onnx' ? '' : domain}::${opType}`;
}

const REGISTRY = new Map<string, OpDefinition>();
for (const op of ALL_OPS) {
  const key = keyOf(op.domain ?? '', op.opType);
  if (REGISTRY.has(key)) throw new Error(`operator ${key} is registered twice`);
  REGISTRY.set(key, op);
}

export function findOp(domain: string, opType: string): OpDefinition | undefined {
  return REGISTRY.get(keyOf(domain, opType));
}

/** The definition for a node, or EDGERUN_ERR_UNSUPPORTED_OP naming the node and op. */
export function opFor(node: Node, opset: number): OpDefinition {
  // Nodes synthesised by fusion passes (domain 'edgerun') may name a standard op, with its latest semantics.
  const op = findOp(node.domain, node.opType) ?? (node.domain === 'edgerun' ? findOp('', node.opType) : undefined);
  if (!op) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `unsupported operator '${node.domain ? `${node.domain}.` : ''}${node.opType}' at node '${node.name}'`,
      { node: node.name, opType: node.opType, domain: node.domain });
  }
  if (op.sinceVersion !== undefined && opset < op.sinceVersion && node.domain !== 'edgerun') {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `operator '${node.opType}' at node '${node.name}' needs opset >= ${op.sinceVersion}, model uses ${opset}`,
      { node: node.name, opType: node.opType, opset });
  }
  return op;
}

export function supportedOps(): string[] {
  return [...REGISTRY.keys()].sort();
}
