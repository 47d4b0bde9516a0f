/** Floating-point operation counts per node (multiply-add = 2), for roofline figures. */
import { elementCount, type Node, type TensorType } from './ir.ts';

export function nodeFlops(node: Node, inputs: (TensorType | null)[], outputs: TensorType[]): number {
  const out = outputs[0] ? elementCount(outputs[0].shape) : 0;
  switch (node.opType) {
    case 'Conv': case 'QConv': {
      const weight = inputs[1]?.shape ?? [];
      const perOutput = weight.slice(1).reduce((a, b) => a * b, 1);
      return 2 * out * perOutput;
    }
    case 'ConvTranspose': {
      const input = inputs[0] ? elementCount(inputs[0].shape) : 0;
      const weight = inputs[1]?.shape ?? [];
      return 2 * input * weight.slice(1).reduce((a, b) => a * b, 1);
    }
    case 'MatMul': case 'QMatMul': case 'MatMulNBits': {
      const a = inputs[0]?.shape ?? [];
      const k = a.length ? a[a.length - 1] : 1;
      return 2 * out * k;
    }
    case 'Gemm': {
      const a = inputs[0]?.shape ?? [1, 1];
      const transA = node.attributes.get('transA');
      const k = transA?.type === 'int' && transA.value ? a[0] : a[1];
      return 2 * out * k;
    }
    case 'Reshape': case 'Flatten': case 'Squeeze': case 'Unsqueeze': case 'Identity': case 'Dropout':
      return 0;
    default: {
      const input = inputs.reduce((sum, t) => sum + (t ? elementCount(t.shape) : 0), 0);
      return Math.max(out, input);
    }
  }
}
