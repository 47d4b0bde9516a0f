/** `edgerun run MODEL --input NAME=FILE.npy … [--random] [--shape NAME=DIMS] [--save DIR] [--runs N] [--json]` */
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import type { Tensor } from '../graph/ir.ts';
import { WebGpuEngine } from '../engine/webgpu-engine.ts';
import { loadModelFile } from '../onnx/decode.ts';
import { readNpyFile, writeNpyFileAtomic } from '../util/npy.ts';
import { parseCommandArgs, parseNamedValues, parsePositiveInt, parseShape } from './args.ts';
import type { CliIO } from './main.ts';
import { randomTensor, resolveShape, seededRandom } from './random-inputs.ts';
import { formatSummary, percentile, safeFileStem, summarize } from './tensor-summary.ts';

const HELP = `usage: edgerun run MODEL.onnx [--input NAME=FILE.npy …] [--random] [--shape NAME=1x3x48x320 …]
                  [--seed N] [--runs N] [--save DIR] [--json]

Runs the model on the WebGPU engine. Inputs come from .npy files (--input, one per model input) or are
generated (--random; dynamic dims need --shape). Prints each output's summary and the timings: model load,
graph compile, GPU pipeline creation, first run, and the steady median/p95 over --runs runs (default 10).
--save DIR writes every output as DIR/<output name>.npy (names made filesystem-safe).
`;

export async function runCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('run', args, {
    input: { type: 'string', multiple: true },
    shape: { type: 'string', multiple: true },
    random: { type: 'boolean' },
    seed: { type: 'string' },
    runs: { type: 'string' },
    save: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun run: expected one MODEL argument, got ${positionals.length}`, { command: 'run' });
  }
  const modelPath = positionals[0];
  const inputFiles = parseNamedValues('run', 'input', values.input);
  const shapeOverrides = new Map([...parseNamedValues('run', 'shape', values.shape)].map(([name, text]) => [name, parseShape('run', text, `--shape ${name}`)]));
  const runs = parsePositiveInt('run', 'runs', values.runs, 10);
  const seed = values.seed === undefined ? 1 : parsePositiveInt('run', 'seed', values.seed, 1);

  const loadStarted = performance.now();
  const model = await loadModelFile(modelPath);
  const loadMs = performance.now() - loadStarted;
  const declared = model.graph.inputs;
  for (const name of [...inputFiles.keys(), ...shapeOverrides.keys()]) {
    if (!declared.some((input) => input.name === name)) {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `'${name}' is not an input of ${path.basename(modelPath)} (inputs: ${declared.map((i) => i.name).join(', ')})`, { input: name });
    }
  }

  const feeds = new Map<string, Tensor>();
  const random = seededRandom(seed);
  for (const input of declared) {
    const file = inputFiles.get(input.name);
    if (file) {
      feeds.set(input.name, await readNpyFile(file));
    } else if (values.random) {
      feeds.set(input.name, randomTensor(input, resolveShape(input, shapeOverrides.get(input.name)), random));
    } else {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `missing input '${input.name}': give --input ${input.name}=FILE.npy or --random`, { input: input.name });
    }
  }
  const shapes = new Map([...feeds].map(([name, tensor]) => [name, tensor.dims]));

  const engine = await WebGpuEngine.create();
  try {
    const session = await engine.loadModel(model, { inputShapes: shapes });
    const report = await session.prepare(shapes);
    const first = await session.run(feeds);
    const times: number[] = [];
    let last = first;
    for (let i = 0; i < runs; i++) {
      last = await session.run(feeds);
      times.push(last.timings.totalMs);
    }
    times.sort((a, b) => a - b);
    const saved: Record<string, string> = {};
    if (values.save) {
      await fs.mkdir(values.save, { recursive: true });
      const taken = new Set<string>();
      for (const [name, tensor] of last.outputs) {
        const file = path.join(values.save, `${safeFileStem(name, taken)}.npy`);
        await writeNpyFileAtomic(file, tensor, tensor.dtype);
        saved[name] = file;
      }
    }
    const timings = {
      loadMs: loadMs,
      compileMs: report.compileMs,
      gpuLoadMs: report.gpuLoadMs,
      firstRunMs: first.timings.totalMs,
      steadyMedianMs: percentile(times, 50),
      steadyP95Ms: percentile(times, 95),
      runs,
    };
    const outputs = Object.fromEntries([...last.outputs].map(([name, tensor]) => [name, summarize(tensor)]));
    if (values.json) {
      io.stdout.write(`${JSON.stringify({ model: modelPath, adapter: engine.runtime.info.adapter.name, timings, plan: report, outputs, saved }, null, 2)}\n`);
    } else {
      for (const [name, summary] of Object.entries(outputs)) io.stdout.write(`${formatSummary(name, summary)}\n`);
      for (const [name, file] of Object.entries(saved)) io.stdout.write(`saved ${name} → ${file}\n`);
      const ms = (v: number) => `${v.toFixed(1)} ms`;
      io.stdout.write(`adapter ${engine.runtime.info.adapter.name}: ${report.pipelines} pipelines, ${report.dispatches} dispatches, ${(report.flops / 1e9).toFixed(3)} GFLOP\n`);
      io.stdout.write(`load ${ms(timings.loadMs)} · compile ${ms(timings.compileMs)} · gpu load ${ms(timings.gpuLoadMs)} · first run ${ms(timings.firstRunMs)} · steady median ${ms(timings.steadyMedianMs)} p95 ${ms(timings.steadyP95Ms)} (${runs} runs)\n`);
    }
    return 0;
  } finally {
    await engine.close();
  }
}
