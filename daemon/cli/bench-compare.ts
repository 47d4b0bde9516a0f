/** `edgerun bench --compare PKG… [--task TASK] [--evalsets DIR] [--runs N] [--engines edgerun,ort-node] [--accuracy-engine E] [--json] [--write-docs [--docs FILE]]` */
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import { assertEvalTask } from '../evalsets/generate.ts';
import { parseCommandArgs, parsePositiveInt } from './args.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun bench --compare PKG|MODEL.onnx … [--task ppocr-rec|ppocr-det|ppocr-cls] [--evalsets DIR]
       [--runs N] [--engines edgerun,ort-node] [--accuracy-engine ort-node|edgerun] [--json] [--write-docs [--docs FILE]]

Compares model packages (folders from \`edgerun compress\`) and bare FP32 .onnx files: precision, size and ratio to
the FP32 model, steady latency on edgerun (WebGPU) and onnxruntime-node (CPU), accuracy on the labelled test sets
(the package's manifest "task"; --task for bare .onnx files; without a task, agreement with the package's eval
set), GPU memory and peak RSS. --evalsets defaults to tmp/evalsets (build it with bench/make-evalsets.ts);
--write-docs replaces the marked compression section of --docs (default docs/BENCHMARKS.md).
`;

export async function benchCompareCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('bench', args, {
    compare: { type: 'boolean' },
    task: { type: 'string' },
    evalsets: { type: 'string' },
    runs: { type: 'string' },
    engines: { type: 'string' },
    'accuracy-engine': { type: 'string' },
    json: { type: 'boolean' },
    'write-docs': { type: 'boolean' },
    docs: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', 'edgerun bench --compare: give at least one package folder or .onnx file', { command: 'bench' });
  }
  const { assertLatencyEngines, compareModels } = await import('../../bench/quant-table.ts');
  const { compareSection, compareTable, writeDocsSection } = await import('../../bench/quant-report.ts');
  const task = values.task === undefined ? undefined : assertEvalTask(values.task);
  const engines = assertLatencyEngines(values.engines ?? 'edgerun,ort-node');
  const [accuracyEngine] = assertLatencyEngines(values['accuracy-engine'] ?? 'ort-node');
  if (!accuracyEngine) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', 'edgerun bench --compare: --accuracy-engine needs an engine', { command: 'bench' });
  const rows = await compareModels({
    items: positionals.map((p) => ({ path: p, task })),
    evalsetsDir: path.resolve(values.evalsets ?? 'tmp/evalsets'),
    runs: parsePositiveInt('bench', 'runs', values.runs, 10),
    engines,
    accuracyEngine,
    onProgress: (message) => io.stderr.write(`${message}\n`),
  });
  io.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n` : `${compareTable(rows)}\n`);
  if (values['write-docs']) {
    const docs = path.resolve(values.docs ?? 'docs/BENCHMARKS.md');
    await writeDocsSection(docs, compareSection(rows, `edgerun bench ${args.join(' ')}`));
    io.stderr.write(`wrote the compression section of ${docs}\n`);
  }
  return rows.some((r) => r.latencyErrors.length > 0) ? 1 : 0;
}
