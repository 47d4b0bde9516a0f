/** The package reader: a valid package reads back whole; every way a package can be broken names the file or field. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { scanModelsFolder } from '../../daemon/package/models-folder.ts';
import { readBareModel, readManifest, readPackage } from '../../daemon/package/read-package.ts';
import { compareVersions, isValidModelName, isValidVersion, newestVersion } from '../../daemon/package/versions.ts';
import { encodeNpy } from '../../daemon/util/npy.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { readManifestJson, replaceFile, rewriteManifest, runOrt, writePackage, type PackageSpec } from '../helpers/package-builder.ts';

const root = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-package-'));
t.teardown(() => fs.rm(root, { recursive: true, force: true }));

/** y = x · k (float32 [batch, 4]) and its argmax over the last axis (int64 [batch]). */
function scaleModel(k: number): Uint8Array {
  return new ModelBuilder({ opset: 17 })
    .input('x', 'float32', ['batch', 4])
    .initializer('k', 'float32', [], [k])
    .node('Mul', ['x', 'k'], ['y'])
    .node('ArgMax', ['y'], ['class:id'], { axis: 1, keepdims: 0 })
    .output('y', 'float32', ['batch', 4])
    .output('class:id', 'int64', ['batch'])
    .toBytes();
}

const x = (values: number[]) => ({ x: { dtype: 'float32' as const, dims: [values.length / 4, 4], data: Float32Array.from(values) } });
const spec = (overrides: Partial<PackageSpec> = {}): PackageSpec => ({
  name: 'scale', version: '1.2.0', model: scaleModel(2), evalInputs: [x([1, 2, 3, 4]), x([4, 3, 2, 1, 0, 9, 1, 1])], ...overrides,
});

let counter = 0;
async function fresh(overrides: Partial<PackageSpec> = {}): Promise<string> {
  const dir = path.join(root, `pkg-${counter++}`);
  await writePackage(dir, spec(overrides));
  return dir;
}

t.test('a valid package reads back with its model I/O and an eval set whose references match onnxruntime', async (t) => {
  const dir = await fresh();
  const pkg = await readPackage(dir);
  t.equal(pkg.kind, 'package');
  t.equal(pkg.name, 'scale');
  t.equal(pkg.version, '1.2.0');
  t.equal(pkg.modelPath, path.join(await fs.realpath(dir), 'model.onnx'));
  t.same(pkg.inputs, [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }]);
  t.same(pkg.outputs.map((o) => [o.name, o.dtype]), [['y', 'float32'], ['class:id', 'int64']]);
  t.match(pkg.manifestSha256, /^[0-9a-f]{64}$/);
  t.equal(pkg.eval?.metric, 'allclose');
  t.equal(pkg.eval?.threshold, 0.99);
  t.equal(pkg.eval?.cases.length, 2);
  const second = pkg.eval!.cases[1];
  t.same(second.inputs.get('x')!.dims, [2, 4]);
  const expected = await runOrt(scaleModel(2), x([4, 3, 2, 1, 0, 9, 1, 1]));
  t.same(Array.from(second.outputs.get('y')!.data), Array.from(expected.y.data));
  t.equal(second.outputs.get('class:id')!.dtype, 'int64');
  t.same(Array.from(second.outputs.get('class:id')!.data), [0, 1]);
  const files = (await readManifestJson(dir)).files.map((f) => f.path).sort();
  t.ok(files.includes('eval/case1/outputs/class_id.npy'), 'tensor names become the same safe file names `edgerun run --save` writes');
});

t.test('versions compare numerically part by part, and names and versions have a fixed syntax', async (t) => {
  t.ok(compareVersions('2', '10') < 0);
  t.ok(compareVersions('1.10', '1.9') > 0);
  t.equal(compareVersions('1', '1.0.0'), 0);
  t.equal(compareVersions('1.02', '1.2'), 0);
  t.ok(compareVersions('123456789012345678901234567890', '123456789012345678901234567891') < 0, 'no precision loss');
  t.same(['1.10', '1.9', '2', '0.1'].sort(compareVersions), ['0.1', '1.9', '1.10', '2']);
  t.equal(newestVersion(['3', '10', '9.9']), '10');
  t.ok(isValidVersion('1.4.2'));
  for (const bad of ['', '1.', '.1', 'v1', '1..2', '1.2-rc1']) t.notOk(isValidVersion(bad), `'${bad}' is not a version`);
  t.ok(isValidModelName('resnet-50_v1.5'));
  for (const bad of ['', '-a', '.a', 'a/b', 'a b']) t.notOk(isValidModelName(bad), `'${bad}' is not a model name`);
  // mixed case is allowed: exporters name files like ch_PP-OCRv4_rec_infer.onnx
  t.ok(isValidModelName('ch_PP-OCRv4_rec_infer'), 'mixed-case names are model names');
});

t.test('the manifest schema and syntax rules name the offending field', async (t) => {
  const cases: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    ['format', (m) => { m.format = 'edgerun-package/2'; }, /manifest\.format must be "edgerun-package\/1"/],
    ['name syntax', (m) => { m.name = 'Bad Name'; }, /manifest\.name 'Bad Name' must match/],
    ['version syntax', (m) => { m.version = '1.2-beta'; }, /manifest\.version '1\.2-beta' must be dotted numeric/],
    ['missing createdAt', (m) => { delete m.createdAt; }, /manifest\.createdAt is required/],
    ['bad createdAt', (m) => { m.createdAt = 'yesterday'; }, /manifest\.createdAt 'yesterday' is not an ISO 8601/],
    ['sha256 pattern', (m) => { (m.files as { sha256: string }[])[0].sha256 = 'abc'; }, /manifest\.files\[0\]\.sha256 must match pattern/],
    ['negative bytes', (m) => { (m.files as { bytes: number }[])[0].bytes = -1; }, /manifest\.files\[0\]\.bytes must be >= 0/],
    ['metric', (m) => { (m.eval as { metric: string }).metric = 'top5'; }, /manifest\.eval\.metric must be one of "argmax", "allclose"/],
    ['threshold range', (m) => { (m.eval as { threshold: number }).threshold = 1.5; }, /manifest\.eval\.threshold must be <= 1/],
    ['tolerance with argmax', (m) => { (m.eval as { metric: string }).metric = 'argmax'; }, /tolerance applies only to the allclose metric/],
    ['model not listed', (m) => { m.model = 'other.onnx'; }, /manifest\.model 'other\.onnx' is not listed/],
    ['duplicate path', (m) => { (m.files as unknown[]).push((m.files as unknown[])[0]); }, /'model\.onnx' is listed twice/],
    ['manifest listed', (m) => { (m.files as { path: string }[])[1].path = 'manifest.json'; }, /lists manifest\.json itself/],
    ['duplicate case', (m) => { (m.eval as { cases: string[] }).cases = ['case0', 'case0']; }, /cases\[1\] 'case0' is listed twice/],
  ];
  for (const [what, edit, pattern] of cases) {
    const dir = await fresh();
    await rewriteManifest(dir, edit as never);
    await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', pattern);
  }
  const dir = await fresh();
  await fs.writeFile(path.join(dir, 'manifest.json'), '{"format": ');
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /manifest\.json is not valid UTF-8 JSON/);
  await fs.rm(path.join(dir, 'manifest.json'));
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /manifest\.json is listed in the manifest but missing/);
});

t.test('every listed file must exist with the stated size and sha256', async (t) => {
  const dir = await fresh();
  const model = await fs.readFile(path.join(dir, 'model.onnx'));
  await fs.appendFile(path.join(dir, 'model.onnx'), 'x');
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /model\.onnx is \d+ bytes but the manifest says \d+/);
  const flipped = Buffer.from(model);
  flipped[flipped.length - 1] ^= 1;
  await fs.writeFile(path.join(dir, 'model.onnx'), flipped);
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /model\.onnx has sha256 [0-9a-f]{64} but the manifest says/);
  t.equal((await readPackage(dir, { verifyHashes: false })).name, 'scale', 'sizes alone pass when hashing is skipped');
  await fs.rm(path.join(dir, 'eval/case0/inputs/x.npy'));
  await expectEdgerunError(t, readPackage(dir, { verifyHashes: false }), 'EDGERUN_ERR_PACKAGE_INVALID', /eval\/case0\/inputs\/x\.npy is listed in the manifest but missing/);
});

t.test('no listed path may escape the package folder', async (t) => {
  for (const [bad, pattern] of [['../outside.onnx', /escapes the package folder/], ['/etc/passwd', /is absolute/],
    ['eval\\case0', /backslash/], ['a//b', /empty or '\.' segment/], ['./model.onnx', /empty or '\.' segment/]] as const) {
    const dir = await fresh();
    await rewriteManifest(dir, (m) => { m.files.push({ path: bad, sha256: '0'.repeat(64), bytes: 0 }); });
    await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', pattern);
  }
  const outside = path.join(root, 'outside.bin');
  await fs.writeFile(outside, 'secret');
  const dir = await fresh({ extraFiles: { 'notes.txt': new TextEncoder().encode('secret') } });
  await fs.rm(path.join(dir, 'notes.txt'));
  await fs.symlink(outside, path.join(dir, 'notes.txt'));
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /notes\.txt resolves \(through a symlink\) to .*outside the package folder/);
  await fs.rm(path.join(dir, 'notes.txt'));
  await fs.mkdir(path.join(dir, 'sub'));
  await fs.writeFile(path.join(dir, 'sub/real.txt'), 'secret');
  await fs.symlink('sub/real.txt', path.join(dir, 'notes.txt'));
  t.equal((await readPackage(dir)).name, 'scale', 'a symlink that stays inside the folder is fine');
});

t.test('the eval set must be complete and fit the model inputs and outputs', async (t) => {
  let dir = await fresh();
  await rewriteManifest(dir, (m) => { m.files = m.files.filter((f) => f.path !== 'eval/case1/outputs/y.npy'); });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /eval case 'case1' output 'y': eval\/case1\/outputs\/y\.npy is not listed/);

  dir = await fresh();
  await replaceFile(dir, 'eval/case0/inputs/x.npy', encodeNpy({ dtype: 'int32', dims: [1, 4], data: Int32Array.from([1, 2, 3, 4]) }), { rehash: true });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /eval case 'case0' input 'x': eval\/case0\/inputs\/x\.npy holds int32 but the model's input is float32/);

  dir = await fresh();
  await replaceFile(dir, 'eval/case0/inputs/x.npy', encodeNpy({ dtype: 'float32', dims: [1, 5], data: new Float32Array(5) }), { rehash: true });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /input 'x': .*has shape \[1, 5\] but the model declares \[batch, 4\]/);

  dir = await fresh();
  await replaceFile(dir, 'eval/case0/outputs/y.npy', encodeNpy({ dtype: 'float32', dims: [4], data: new Float32Array(4) }), { rehash: true });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /output 'y': .*has rank 1 but the model declares rank 2/);

  dir = await fresh();
  await replaceFile(dir, 'eval/case0/outputs/y.npy', new TextEncoder().encode('not npy'), { rehash: true });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /output 'y': eval\/case0\/outputs\/y\.npy not a \.npy file/);

  dir = await fresh({ extraFiles: { 'eval/case0/outputs/extra.npy': encodeNpy({ dtype: 'float32', dims: [1], data: new Float32Array(1) }) } });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /eval\/case0\/outputs\/extra\.npy is listed under eval\/ but belongs to no eval case/);

  dir = await fresh();
  await rewriteManifest(dir, (m) => { m.eval!.cases.push('case7'); });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /eval case 'case7' input 'x': eval\/case7\/inputs\/x\.npy is not listed/);
});

t.test('a model file that is not ONNX is rejected naming it', async (t) => {
  const dir = await fresh({ evalInputs: undefined, model: new TextEncoder().encode('definitely not protobuf \u00ff\u00ff') });
  await expectEdgerunError(t, readPackage(dir), 'EDGERUN_ERR_PACKAGE_INVALID', /model\.onnx is not (a readable ONNX model|an ONNX model)/);
});

t.test('a bare NAME.onnx is model NAME, version 0, with no eval set', async (t) => {
  const file = path.join(root, 'tiny-net.onnx');
  await fs.writeFile(file, scaleModel(3));
  const pkg = await readBareModel(file);
  t.same([pkg.kind, pkg.name, pkg.version, pkg.eval], ['bare', 'tiny-net', '0', undefined]);
  t.same(pkg.inputs.map((i) => i.name), ['x']);
  const badName = path.join(root, 'Tiny Net.onnx');
  await fs.writeFile(badName, scaleModel(3));
  await expectEdgerunError(t, readBareModel(badName), 'EDGERUN_ERR_PACKAGE_INVALID', /must be named NAME\.onnx/);
});

t.test('scanning a models folder finds packages and bare files; a package beats a bare file and newer beats older', async (t) => {
  const folder = path.join(root, 'models');
  await writePackage(path.join(folder, 'scale-old'), spec({ version: '1.9' }));
  await writePackage(path.join(folder, 'scale-new'), spec({ version: '1.10' }));
  await fs.writeFile(path.join(folder, 'scale.onnx'), scaleModel(1));
  await fs.writeFile(path.join(folder, 'plain.onnx'), scaleModel(1));
  await fs.mkdir(path.join(folder, 'broken'));
  await fs.writeFile(path.join(folder, 'broken/manifest.json'), '[]');
  await fs.mkdir(path.join(folder, 'not-a-package'));
  const scan = await scanModelsFolder(folder);
  t.same([...scan.models.values()].map((m) => [m.name, m.version, m.kind, path.basename(m.path)]).sort(),
    [['plain', '0', 'bare', 'plain.onnx'], ['scale', '1.10', 'package', 'scale-new']]);
  t.equal(scan.problems.length, 1);
  t.match(scan.problems[0].error.message, /broken: manifest\.json: manifest must be object/);
  t.equal((await readManifest(path.join(folder, 'scale-new'))).manifest.version, '1.10');
  t.same((await scanModelsFolder(path.join(root, 'no-such-folder'))).models.size, 0);
});
