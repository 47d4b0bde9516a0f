/** How far a compressed model's outputs are from the FP32 model's, over a set of samples. */
import type { Tensor } from '../graph/ir.ts';

export interface OutputError {
  /** ‖y − y₃₂‖ / ‖y₃₂‖ over all outputs and samples. */
  relativeL2: number;
  maxAbs: number;
  /** Fraction of rows of the last axis whose argmax matches (for class/character scores). */
  argmaxAgreement: number;
  samples: number;
}

export class OutputErrorMeter {
  private errorSquares = 0;
  private referenceSquares = 0;
  private maxAbs = 0;
  private rows = 0;
  private agreeing = 0;
  private samples = 0;

  add(reference: Record<string, Tensor>, actual: Record<string, Tensor>): void {
    this.samples++;
    for (const [name, ref] of Object.entries(reference)) {
      const got = actual[name];
      if (!got || got.data.length !== ref.data.length) {
        this.maxAbs = Infinity;
        continue;
      }
      for (let i = 0; i < ref.data.length; i++) {
        const d = got.data[i]! - ref.data[i]!;
        this.errorSquares += d * d;
        this.referenceSquares += ref.data[i]! * ref.data[i]!;
        const abs = Math.abs(d);
        if (!(abs <= this.maxAbs)) this.maxAbs = abs;
      }
      const width = ref.dims[ref.dims.length - 1] ?? 1;
      if (width < 2) continue;
      for (let r = 0; r * width < ref.data.length; r++) {
        this.rows++;
        if (argmax(ref.data, r * width, width) === argmax(got.data, r * width, width)) this.agreeing++;
      }
    }
  }

  result(): OutputError {
    return {
      relativeL2: this.referenceSquares > 0 ? Math.sqrt(this.errorSquares / this.referenceSquares) : Math.sqrt(this.errorSquares),
      maxAbs: this.maxAbs,
      argmaxAgreement: this.rows > 0 ? this.agreeing / this.rows : 1,
      samples: this.samples,
    };
  }
}

function argmax(data: ArrayLike<number>, start: number, width: number): number {
  let best = 0;
  for (let i = 1; i < width; i++) if (data[start + i]! > data[start + best]!) best = i;
  return best;
}
