import t from 'tap';
import { Writable } from 'node:stream';
import { devicesCommand } from '../../daemon/cli/devices.ts';
import type { AdapterReport } from '../../daemon/gpu/gpu-runtime.ts';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _encoding, done) { chunks.push(String(chunk)); done(); } });
  return { stream, text: () => chunks.join('') };
}

t.test('edgerun devices prints the lavapipe adapter as a CPU adapter', async (t) => {
  const out = capture();
  t.equal(await devicesCommand([], { stdout: out.stream }), 0);
  const text = out.text();
  t.match(text, /#0 {2}llvmpipe .*\[vulkan\] {2}\(CPU adapter, fallback\)/);
  t.match(text, /vendor mesa · architecture software/);
  t.match(text, /shader-f16 yes · subgroups yes · timestamp-query yes/);
  t.match(text, /maxStorageBufferBindingSize 128 MiB/);
  t.match(text, /minStorageBufferOffsetAlignment \d+/);
});

t.test('edgerun devices --json prints the full adapter reports', async (t) => {
  const out = capture();
  t.equal(await devicesCommand(['--json'], { stdout: out.stream }), 0);
  const reports = JSON.parse(out.text()) as AdapterReport[];
  const lavapipe = reports.find((r) => /llvmpipe/.test(r.name));
  t.ok(lavapipe);
  t.equal(lavapipe?.isCpu, true);
  t.ok(lavapipe?.features.includes('timestamp-query'));
  t.type(lavapipe?.limits.maxBufferSize, 'number');
});

t.test('edgerun devices rejects unknown flags and arguments as usage errors', async (t) => {
  const out = capture();
  await t.rejects(devicesCommand(['--frobnicate'], { stdout: out.stream }), { code: 'EDGERUN_ERR_CLI_USAGE', message: /frobnicate/ });
  await t.rejects(devicesCommand(['extra'], { stdout: out.stream }), { code: 'EDGERUN_ERR_CLI_USAGE', message: /unexpected argument 'extra'/ });
  t.equal(await devicesCommand(['--help'], { stdout: out.stream }), 0);
  t.match(out.text(), /usage: edgerun devices/);
});
