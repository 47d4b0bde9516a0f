import { EdgerunError } from '../errors.ts';
import type { AttributeValue, Graph, Node, Tensor } from './ir.ts';

type ValueOf<T extends AttributeValue['type']> = Extract<AttributeValue, { type: T }>['value'];

/** Typed attribute access that names the node and attribute in every error. */
export class Attributes {
  constructor(private readonly node: Node) {}

  has(name: string): boolean {
    return this.node.attributes.has(name);
  }

  int(name: string, fallback?: number): number {
    return this.read(name, 'int', fallback);
  }

  float(name: string, fallback?: number): number {
    const value = this.node.attributes.get(name);
    // Some exporters write float attributes as ints (e.g. alpha=1).
    if (value?.type === 'int') return value.value;
    return this.read(name, 'float', fallback);
  }

  string(name: string, fallback?: string): string {
    return this.read(name, 'string', fallback);
  }

  ints(name: string, fallback?: number[]): number[] {
    return this.read(name, 'ints', fallback);
  }

  floats(name: string, fallback?: number[]): number[] {
    return this.read(name, 'floats', fallback);
  }

  tensor(name: string, fallback?: Tensor): Tensor {
    return this.read(name, 'tensor', fallback);
  }

  graph(name: string): Graph {
    return this.read<'graph', Graph>(name, 'graph', undefined);
  }

  private read<T extends AttributeValue['type'], V = ValueOf<T>>(name: string, type: T, fallback: V | undefined): V {
    const value = this.node.attributes.get(name);
    if (value === undefined) {
      if (fallback !== undefined) return fallback;
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
        `node '${this.node.name}' (${this.node.opType}) is missing required attribute '${name}'`,
        { node: this.node.name, opType: this.node.opType, attribute: name });
    }
    if (value.type !== type) {
      throw new EdgerunError('EDGERUN_ERR_ONNX_INVALID',
        `node '${this.node.name}' (${this.node.opType}) attribute '${name}' is ${value.type}, expected ${type}`,
        { node: this.node.name, opType: this.node.opType, attribute: name });
    }
    return value.value as V;
  }
}
