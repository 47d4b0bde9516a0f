/** `edgerun run`: inputs from .npy files or generated, saved outputs, timings, and every kind of bad input. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { encodeNpy, readNpyFile } from '../../daemon/util/npy.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-run-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));

// y = relu(x) + 1 and an int64 output whose name needs escaping
const modelPath = path.join(dir, 'model.onnx');
await fs.writeFile(modelPath, new ModelBuilder({ opset: 17 })
  .input('x', 'float32', ['batch', 4])
  .initializer('one', 'float32', [], [1])
  .node('Relu', ['x'], ['r'])
  .node('Add', ['r', 'one'], ['out/relu:0'])
  .node('Shape', ['x'], ['shape of x'])
  .output('out/relu:0', 'float32', ['batch', 4])
  .output('shape of x', 'int64', [2])
  .toBytes());

const xPath = path.join(dir, 'x.npy');
const x = Float32Array.from([-2, -1, 0, 1, 2, 3, -4, 5]);
await fs.writeFile(xPath, encodeNpy({ dtype: 'float32', dims: [2, 4], data: x }));

t.test('runs on .npy inputs, prints summaries and timings, and saves outputs under safe names', async (t) => {
  const save = path.join(dir, 'out');
  const r = await edgerun('run', modelPath, '--input', `x=${xPath}`, '--save', save, '--runs', '3');
  t.equal(r.code, 0, r.err);
  t.match(r.out, /out\/relu:0: float32\[2×4\]/);
  t.match(r.out, /steady median/);
  const files = (await fs.readdir(save)).sort();
  t.same(files, ['out_relu_0.npy', 'shape_of_x.npy']);
  const y = await readNpyFile(path.join(save, 'out_relu_0.npy'));
  t.same(Array.from(y.data), Array.from(x, (v) => Math.max(v, 0) + 1));
  const shape = await readNpyFile(path.join(save, 'shape_of_x.npy'));
  t.equal(shape.dtype, 'int64', 'int64 outputs are written as <i8');
  t.same(Array.from(shape.data), [2, 4]);
});

t.test('--json prints timings, the plan and output summaries', async (t) => {
  const r = await edgerun('run', modelPath, '--random', '--shape', 'x=3x4', '--json', '--runs', '2');
  t.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  t.same(report.outputs['out/relu:0'].shape, [3, 4]);
  for (const key of ['loadMs', 'compileMs', 'gpuLoadMs', 'firstRunMs', 'steadyMedianMs', 'steadyP95Ms']) t.type(report.timings[key], 'number', key);
  t.ok(report.outputs['out/relu:0'].min >= 1, 'relu + 1 is at least 1');
});

t.test('bad input is a clear error with a non-zero exit code', async (t) => {
  const garbage = path.join(dir, 'garbage.npy');
  await fs.writeFile(garbage, 'definitely not numpy');
  const ints = path.join(dir, 'ints.npy');
  await fs.writeFile(ints, encodeNpy({ dtype: 'int32', dims: [2, 4], data: new Int32Array(8) }));
  const rank3 = path.join(dir, 'rank3.npy');
  await fs.writeFile(rank3, encodeNpy({ dtype: 'float32', dims: [1, 2, 4], data: new Float32Array(8) }));
  const cases: { args: string[]; code: number; pattern: RegExp }[] = [
    { args: ['run', modelPath, '--input', `x=${garbage}`], code: 1, pattern: /EDGERUN_ERR_NPY.*garbage\.npy/ },
    { args: ['run', modelPath, '--input', `x=${ints}`], code: 1, pattern: /EDGERUN_ERR_INPUT.*'x' must be float32/ },
    { args: ['run', modelPath, '--input', `x=${rank3}`], code: 1, pattern: /EDGERUN_ERR_INPUT.*'x'/ },
    { args: ['run', modelPath, '--input', `x=${path.join(dir, 'missing.npy')}`], code: 1, pattern: /EDGERUN_ERR_IO.*missing\.npy/ },
    { args: ['run', modelPath], code: 1, pattern: /EDGERUN_ERR_INPUT.*missing input 'x'/ },
    { args: ['run', modelPath, '--random'], code: 2, pattern: /EDGERUN_ERR_CLI_USAGE.*dynamic dims.*--shape x=/ },
    { args: ['run', modelPath, '--input', `nope=${xPath}`], code: 1, pattern: /EDGERUN_ERR_INPUT.*'nope' is not an input/ },
    { args: ['run', modelPath, '--input', 'x'], code: 2, pattern: /--input expects NAME=VALUE/ },
    { args: ['run', modelPath, '--shape', 'x=3xq', '--random'], code: 2, pattern: /not a shape/ },
    { args: ['run', modelPath, '--runs', '0', '--random', '--shape', 'x=1x4'], code: 2, pattern: /--runs must be a positive integer/ },
    { args: ['run', modelPath, '--bogus'], code: 2, pattern: /EDGERUN_ERR_CLI_USAGE.*bogus/ },
    { args: ['run', path.join(dir, 'no-such-model.onnx'), '--random'], code: 1, pattern: /EDGERUN_ERR_ONNX_READ.*no-such-model\.onnx/ },
    { args: ['run', garbage, '--random'], code: 1, pattern: /EDGERUN_ERR_ONNX_READ/ },
    { args: ['run'], code: 2, pattern: /expected one MODEL/ },
  ];
  for (const c of cases) {
    const r = await edgerun(...c.args);
    t.equal(r.code, c.code, `${c.args.slice(2).join(' ')} → exit ${c.code}`);
    t.match(r.err, c.pattern, c.args.slice(2).join(' '));
  }
});

t.test('an unknown command prints the usage and exits 2', async (t) => {
  const r = await edgerun('frobnicate');
  t.equal(r.code, 2);
  t.match(r.err, /unknown command 'frobnicate'/);
  t.match(r.err, /usage: edgerun/);
});
