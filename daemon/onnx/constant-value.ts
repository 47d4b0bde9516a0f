/**
 * Constant nodes carry their value in one of seven attributes. The loader keeps Constant nodes as nodes
 * (constant folding turns them into initializers later) but rewrites the value to a single `value` tensor
 * attribute so later stages read one form.
 */
import { EdgerunError } from '../errors.ts';
import type { AttributeValue, Tensor } from '../graph/ir.ts';

const VALUE_ATTRIBUTES = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string',
  'value_strings', 'sparse_value'];

export function normalizeConstantValue(nodeName: string, attributes: Map<string, AttributeValue>,
  source: string): Map<string, AttributeValue> {
  const context = { file: source, node: nodeName, opType: 'Constant' };
  const present = VALUE_ATTRIBUTES.filter((name) => attributes.has(name));
  if (present.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
      `${source}: Constant node '${nodeName}' must have exactly one value attribute, found ` +
      `${present.length === 0 ? 'none' : present.join(', ')}`, context);
  }
  const name = present[0];
  const attribute = attributes.get(name)!;
  const tensor = constantTensor(name, attribute);
  if (tensor === undefined) {
    throw new EdgerunError('EDGERUN_ERR_UNSUPPORTED_OP',
      `${source}: Constant node '${nodeName}' uses ${name} (${attribute.type}), which edgerun does not support`,
      { ...context, attribute: name });
  }
  const normalized = new Map(attributes);
  normalized.delete(name);
  normalized.set('value', { type: 'tensor', value: tensor });
  return normalized;
}

function constantTensor(name: string, attribute: AttributeValue): Tensor | undefined {
  if (name === 'value' && attribute.type === 'tensor') return attribute.value;
  if (name === 'value_float' && attribute.type === 'float') {
    return { dtype: 'float32', dims: [], data: Float32Array.of(attribute.value) };
  }
  // Some exporters write a whole-number value_float as an int attribute.
  if (name === 'value_float' && attribute.type === 'int') {
    return { dtype: 'float32', dims: [], data: Float32Array.of(attribute.value) };
  }
  if (name === 'value_floats' && attribute.type === 'floats') {
    return { dtype: 'float32', dims: [attribute.value.length], data: Float32Array.from(attribute.value) };
  }
  if (name === 'value_int' && attribute.type === 'int') {
    return { dtype: 'int64', dims: [], data: Int32Array.of(attribute.value) };
  }
  if (name === 'value_ints' && attribute.type === 'ints') {
    return { dtype: 'int64', dims: [attribute.value.length], data: Int32Array.from(attribute.value) };
  }
  return undefined;
}
