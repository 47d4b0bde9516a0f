/** `edgerun bench MODEL [--input NAME=DIMS …] [--runs N] [--engines edgerun,ort-web,ort-node] [--json]` */
import { EdgerunError } from '../errors.ts';
import { loadModelFile } from '../onnx/decode.ts';
import { parseCommandArgs, parseNamedValues, parsePositiveInt, parseShape } from './args.ts';
import type { CliIO } from './main.ts';
import { resolveShape } from './random-inputs.ts';

const HELP = `usage: edgerun bench MODEL.onnx [--input NAME=1x3x48x320 …] [--runs N] [--engines edgerun,ort-web,ort-node] [--json]

Measures the model in fresh processes on edgerun (WebGPU), onnxruntime-web's WebGPU EP on the same adapter and
onnxruntime-node on the CPU (the onnxruntime peers must be installed): cold start (process start → first
result), steady median and p95, their ratios, FLOPs and agreement with onnxruntime-node.
\`edgerun bench --compare PKG…\` compares compressed packages instead (edgerun bench --compare --help).
`;

const ENGINES = new Set(['edgerun', 'ort-web', 'ort-node']);

export async function benchCommand(args: string[], io: CliIO): Promise<number> {
  if (args.includes('--compare')) return (await import('./bench-compare.ts')).benchCompareCommand(args, io);
  const { values, positionals } = parseCommandArgs('bench', args, {
    input: { type: 'string', multiple: true },
    runs: { type: 'string' },
    engines: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun bench: expected one MODEL argument, got ${positionals.length}`, { command: 'bench' });
  }
  const engines = (values.engines ?? 'edgerun,ort-web,ort-node').split(',');
  for (const engine of engines) {
    if (!ENGINES.has(engine)) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun bench: unknown engine '${engine}' (edgerun, ort-web, ort-node)`, { command: 'bench', engine });
  }
  const model = await loadModelFile(positionals[0]);
  const given = new Map([...parseNamedValues('bench', 'input', values.input)].map(([name, text]) => [name, parseShape('bench', text, `--input ${name}`)]));
  const inputs = new Map<string, number[]>();
  for (const input of model.graph.inputs) {
    if (input.dtype !== 'float32') {
      throw new EdgerunError('EDGERUN_ERR_INPUT', `edgerun bench generates float32 inputs; input '${input.name}' is ${input.dtype}`, { input: input.name });
    }
    inputs.set(input.name, resolveShape({ name: input.name, dtype: input.dtype, dims: input.dims }, given.get(input.name)));
  }
  const { benchmarkModel } = await import('../../bench/compare.ts');
  const { runtimeTable } = await import('../../bench/report.ts');
  const result = await benchmarkModel({
    modelPath: positionals[0],
    inputs,
    runs: parsePositiveInt('bench', 'runs', values.runs, 20),
    engines: engines as ('edgerun' | 'ort-web' | 'ort-node')[],
    onProgress: (message) => io.stderr.write(`${message}\n`),
  });
  io.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${runtimeTable([result])}\n`);
  return result.engines.some((e) => e.error) ? 1 : 0;
}
