/**
 * Calibration: runs the FP32 model in onnxruntime-node on every calibration sample with the input of every
 * quantizable layer exposed as an extra graph output, and streams those activations into the quantizers'
 * statistics (daemon/quant/calibration-stats.ts): rows of K features for MatMul/Gemm, im2col patches per group
 * for Conv. Each call records only a bounded number of rows per sample so memory stays flat.
 */
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import { im2colRows, LayerStatsAccumulator, type ConvGeometry } from '../quant/calibration-stats.ts';
import type { LayerCalibration } from '../quant/types.ts';
import type { QuantLayer } from './layers.ts';
import { intAttribute, intsAttribute, stringAttribute, type ModelProto } from './model-proto.ts';
import { OrtModel, withExtraOutputs } from './ort-runner.ts';
import type { Progress } from './progress.ts';
import type { Sample } from './sample-folder.ts';

/**
 * im2col rows taken per sample and group (evenly spaced): bounds memory and time on large feature maps (the det
 * model's early convs see about 10^5 positions per 640×640 page).
 */
const MAX_IM2COL_ROWS = 2048;

export interface LayerStatistics {
  /** One per conv group; one for MatMul/Gemm. */
  calib: LayerCalibration[];
}

export async function collectLayerStatistics(model: ModelProto, layers: readonly QuantLayer[], samples: readonly Sample[],
  progress: Progress): Promise<Map<string, LayerStatistics>> {
  const calibratable = layers.filter((l) => l.kind !== 'conv-transpose');
  const inputNames = [...new Set(calibratable.map((l) => l.inputName))];
  const session = await OrtModel.open(withExtraOutputs(model, inputNames), 'calibration');
  const accumulators = new Map<string, LayerStatsAccumulator[]>();
  try {
    const task = progress.start('calibration', samples.length);
    for (const sample of samples) {
      const outputs = await session.run(sample.feeds, inputNames);
      for (const layer of calibratable) {
        const activation = outputs[layer.inputName]!;
        checkFinite(activation, layer, sample);
        addLayerRows(layer, activation, accumulators);
      }
      task.tick();
    }
    task.done();
  } finally {
    await session.close();
  }
  return new Map([...accumulators].map(([name, list]) => [name, { calib: list.map((a) => a.result()) }]));
}

function checkFinite(activation: Tensor, layer: QuantLayer, sample: Sample): void {
  const bad = activation.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new EdgerunError('EDGERUN_ERR_CALIBRATION',
      `calibration ${sample.source}: the FP32 model computes ${activation.data[bad]} at the input of layer '${layer.name}'`,
      { file: sample.source, node: layer.name });
  }
}

function accumulatorsFor(layer: QuantLayer, features: number, count: number, map: Map<string, LayerStatsAccumulator[]>): LayerStatsAccumulator[] {
  let list = map.get(layer.name);
  if (!list) {
    list = Array.from({ length: count }, (_, g) => new LayerStatsAccumulator(features, { name: count > 1 ? `${layer.name} (group ${g})` : layer.name }));
    map.set(layer.name, list);
  }
  return list;
}

function addLayerRows(layer: QuantLayer, activation: Tensor, map: Map<string, LayerStatsAccumulator[]>): void {
  const x = activation.data as Float32Array;
  if (layer.kind === 'matmul' || layer.kind === 'gemm') {
    const k = layer.dims[0]!;
    accumulatorsFor(layer, k, 1, map)[0]!.addRows(x, x.length / k);
    return;
  }
  const { dims, geometry } = convInput(layer, activation.dims);
  const list = accumulatorsFor(layer, layer.dims.slice(1).reduce((a, b) => a * b, 1), layer.group, map);
  for (let g = 0; g < layer.group; g++) {
    const rows = im2colRows(x, dims, geometry, g, { maxRows: MAX_IM2COL_ROWS, name: layer.name });
    list[g]!.addRows(rows.rows, rows.rowCount);
  }
}

/** The conv's geometry as 2-D (a 1-D conv becomes H = 1), with auto_pad resolved to explicit pads. */
function convInput(layer: QuantLayer, inputDims: readonly number[]): { dims: number[]; geometry: ConvGeometry } {
  const node = layer.node;
  const spatial = layer.dims.length - 2;
  if (spatial !== 1 && spatial !== 2) {
    throw new EdgerunError('EDGERUN_ERR_COMPRESS', `calibration: conv '${layer.name}' is ${spatial}-D; only 1-D and 2-D convs are calibrated`, { step: 'calibration', node: layer.name });
  }
  const lift = (values: number[]): number[] => (spatial === 1 ? [1, ...values] : values);
  const kernel = lift(layer.dims.slice(2));
  const strides = lift(intsAttribute(node, 'strides') ?? Array(spatial).fill(1));
  const dilations = lift(intsAttribute(node, 'dilations') ?? Array(spatial).fill(1));
  const dims = spatial === 1 ? [inputDims[0]!, inputDims[1]!, 1, inputDims[2]!] : [...inputDims];
  let pads = intsAttribute(node, 'pads') ?? Array(spatial * 2).fill(0);
  if (spatial === 1) pads = [0, pads[0]!, 0, pads[1]!];
  const autoPad = stringAttribute(node, 'auto_pad') ?? 'NOTSET';
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = [0, 0, 0, 0];
    for (let i = 0; i < 2; i++) {
      const size = dims[2 + i]!;
      const total = Math.max(0, (Math.ceil(size / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + 2] = total - pads[i]!;
    }
  }
  return {
    dims,
    geometry: {
      kernelShape: kernel as [number, number],
      strides: strides as [number, number],
      dilations: dilations as [number, number],
      pads: pads as [number, number, number, number],
      group: intAttribute(node, 'group', 1),
    },
  };
}
