import t from 'tap';
import { GpuRuntime } from '../../daemon/gpu/gpu-runtime.ts';
import type { EdgerunError } from '../../daemon/errors.ts';
import { floats, squareChain } from './tiny-plans.ts';

const runtime = await GpuRuntime.start();
t.teardown(() => runtime.close());

const withProgram = (label: string, code: string) => {
  const plan = squareChain(64).plan;
  plan.pipelines[1] = { key: `test.${label}`, label, code };
  return plan;
};

t.test('a WGSL syntax error names the program, its key and the line', async (t) => {
  const code = [
    '@group(0) @binding(0) var<storage, read> src: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> dst: array<f32>;',
    '@compute @workgroup_size(64)',
    'fn main(@builtin(global_invocation_id) gid: vec3u) {',
    '  dst[gid.x] = src[gid.x] +* 2.0;',
    '}',
  ].join('\n');
  const error = (await runtime.loadPlan(withProgram('bad syntax program', code)).catch((e: unknown) => e)) as EdgerunError;
  t.equal(error.code, 'EDGERUN_ERR_GPU_VALIDATION');
  t.match(error.message, /WGSL error in program "bad syntax program" at line 5:/);
  t.match(error.message, /\+\* 2\.0/, 'quotes the offending source line');
  t.equal(error.context.program, 'bad syntax program');
  t.equal(error.context.key, 'test.bad syntax program');
  t.equal(error.context.line, 5);
});

t.test('a WGSL type error is reported with its line too', async (t) => {
  const code = [
    '@group(0) @binding(0) var<storage, read> src: array<f32>;',
    '@group(0) @binding(1) var<storage, read_write> dst: array<f32>;',
    '@compute @workgroup_size(64)',
    'fn main(@builtin(global_invocation_id) gid: vec3u) {',
    '  let n: u32 = src[gid.x];',
    '  dst[gid.x] = f32(n);',
    '}',
  ].join('\n');
  await t.rejects(runtime.loadPlan(withProgram('type error program', code)),
    { code: 'EDGERUN_ERR_GPU_VALIDATION', message: /program "type error program" at line 5/, context: { line: 5 } });
});

t.test('a program without a main entry point fails as a pipeline error naming it', async (t) => {
  const code = '@compute @workgroup_size(1) fn start() {}';
  await t.rejects(runtime.loadPlan(withProgram('no main program', code)), { code: 'EDGERUN_ERR_GPU_VALIDATION', message: /no main program/ });
});

t.test('bindings that do not match the program fail at load, naming the node', async (t) => {
  const plan = squareChain(64).plan;
  // The square program declares two bindings; give step square_2 a third one.
  plan.steps[2].bindings.push({ buffer: 10, offset: 0, size: 256 });
  await t.rejects(runtime.loadPlan(plan),
    { code: 'EDGERUN_ERR_GPU_VALIDATION', message: /bind group of node "square_2"/, context: { node: 'square_2', program: 'square (test)' } });
});

t.test('the runtime keeps working after validation errors', async (t) => {
  const tiny = squareChain(64);
  const session = await runtime.loadPlan(tiny.plan);
  const result = await session.run(new Map([['x', floats(new Array(64).fill(2))]]));
  t.same(new Float32Array(result.outputs.get('y')!), new Float32Array(64).fill(25));
  await session.dispose();
  t.notOk(runtime.lost);
});
