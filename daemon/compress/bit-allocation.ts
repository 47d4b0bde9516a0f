/**
 * Chooses one precision per layer from measured costs. Every layer starts at its cheapest option; upgrades are
 * then taken greedily by error removed per extra byte — while they fit the size budget, or until the combined
 * error meets the accuracy budget. Layer errors are treated as independent, so the combined relative error is
 * √(Σ eᵢ²).
 */
export interface LayerOption {
  bits: 4 | 8 | 16;
  bytes: number;
  /** Relative output error with only this layer at this precision. */
  error: number;
}

export interface AllocationInput {
  /** Per layer, its options (any order). */
  options: LayerOption[][];
  /** Bytes outside the layers' weights (graph, biases, other tensors). */
  fixedBytes: number;
  sizeBudget?: number;
  accuracyBudget?: number;
}

export interface Allocation {
  /** Index into each layer's options, sorted by bytes. */
  chosen: LayerOption[];
  totalBytes: number;
  /** √(Σ eᵢ²) of the chosen options. */
  combinedError: number;
  /** Whether the budget could be met. */
  met: boolean;
}

export function combinedError(options: readonly LayerOption[]): number {
  return Math.sqrt(options.reduce((sum, o) => sum + o.error * o.error, 0));
}

export function allocateBits(input: AllocationInput): Allocation {
  const sorted = input.options.map((list) => [...list].sort((a, b) => a.bytes - b.bytes));
  const level = sorted.map(() => 0);
  const chosen = (): LayerOption[] => sorted.map((list, i) => list[level[i]!]!);
  let total = input.fixedBytes + sorted.reduce((sum, list) => sum + list[0]!.bytes, 0);

  /** The best next upgrade (to any costlier option of a layer) by error² removed per byte, among those allowed. */
  const bestUpgrade = (allowed: (extraBytes: number) => boolean): { layer: number; to: number } | undefined => {
    let best: { layer: number; to: number; gain: number } | undefined;
    sorted.forEach((list, i) => {
      const current = list[level[i]!]!;
      for (let to = level[i]! + 1; to < list.length; to++) {
        const option = list[to]!;
        const extra = option.bytes - current.bytes;
        const removed = current.error * current.error - option.error * option.error;
        if (removed <= 0 || !allowed(extra)) continue;
        const gain = removed / Math.max(extra, 1);
        if (!best || gain > best.gain) best = { layer: i, to, gain };
      }
    });
    return best;
  };
  const apply = (upgrade: { layer: number; to: number }): void => {
    total += sorted[upgrade.layer]![upgrade.to]!.bytes - sorted[upgrade.layer]![level[upgrade.layer]!]!.bytes;
    level[upgrade.layer] = upgrade.to;
  };

  if (input.accuracyBudget !== undefined) {
    const budget = input.accuracyBudget;
    const sizeCap = input.sizeBudget;
    for (;;) {
      if (combinedError(chosen()) <= budget) break;
      const upgrade = bestUpgrade((extra) => sizeCap === undefined || total + extra <= sizeCap);
      if (!upgrade) break;
      apply(upgrade);
    }
    const error = combinedError(chosen());
    return { chosen: chosen(), totalBytes: total, combinedError: error, met: error <= budget && (sizeCap === undefined || total <= sizeCap) };
  }
  const budget = input.sizeBudget ?? Infinity;
  for (;;) {
    const upgrade = bestUpgrade((extra) => total + extra <= budget);
    if (!upgrade) break;
    apply(upgrade);
  }
  return { chosen: chosen(), totalBytes: total, combinedError: combinedError(chosen()), met: total <= budget };
}
