import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { DType, Tensor } from '../../daemon/graph/ir.ts';
import { encodeNpy, parseNpy, readNpyFile, writeNpyFileAtomic } from '../../daemon/util/npy.ts';

const MAGIC = '\x93NUMPY';

/** A .npy file from parts, the way numpy.save lays it out (latin1 for v1/v2, utf-8 for v3). */
function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const headerBytes = version === 3 ? new TextEncoder().encode(header) : Uint8Array.from(header, (c) => c.charCodeAt(0));
  const prefix = version === 1 ? 10 : 12;
  const out = new Uint8Array(prefix + headerBytes.length + data.length);
  out.set(Array.from(MAGIC, (c) => c.charCodeAt(0)));
  out[6] = version;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, headerBytes.length, true);
  else view.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, prefix);
  out.set(data, prefix + headerBytes.length);
  return out;
}

const header = (descr: string, shape: string, fortran = 'False'): string =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }\n`;

t.test('encodeNpy writes float32 byte-for-byte as numpy.save does', async (t) => {
  const bytes = encodeNpy({ dtype: 'float32', dims: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5.5, -6) });
  // numpy 2.x: np.save(f, np.array([[1,2,3],[4,5.5,-6]], np.float32))
  const numpyHeader = `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }${' '.repeat(58)}\n`;
  const expected = npyBytes(numpyHeader, new Uint8Array(Float32Array.of(1, 2, 3, 4, 5.5, -6).buffer));
  t.same(Buffer.from(bytes), Buffer.from(expected));
  t.equal(bytes.length % 64, 24, 'data starts on a 64-byte boundary (128 bytes of header)');
});

t.test('every dtype round-trips through encodeNpy and parseNpy', async (t) => {
  const cases: { dtype: DType; data: number[] }[] = [
    { dtype: 'float32', data: [1.5, -0, 3.4e38, -1e-30] },
    { dtype: 'float64', data: [0.1, -2.5, 1e10] },
    { dtype: 'float16', data: [1, -0.5, 65504, 2 ** -24] },
    { dtype: 'int8', data: [-128, 127, 0] },
    { dtype: 'uint8', data: [0, 255] },
    { dtype: 'int16', data: [-32768, 32767] },
    { dtype: 'uint16', data: [0, 65535] },
    { dtype: 'int32', data: [-(2 ** 31), 2 ** 31 - 1] },
    { dtype: 'uint32', data: [0, 2 ** 31 - 1] },
    { dtype: 'int64', data: [-(2 ** 31), -1, 2 ** 31 - 1] },
    { dtype: 'uint64', data: [0, 2 ** 31 - 1] },
    { dtype: 'bool', data: [1, 0, 1] },
  ];
  for (const { dtype, data } of cases) {
    const isFloat = dtype.startsWith('float');
    const tensor: Tensor = { dtype, dims: [data.length], data: isFloat ? Float32Array.from(data) : Int32Array.from(data) };
    t.same(parseNpy(encodeNpy(tensor), `${dtype}.npy`), tensor, dtype);
  }
});

t.test('int64 and bool outputs held in Int32Array are written as <i8 and |b1', async (t) => {
  const ints = encodeNpy({ dtype: 'int64', dims: [2], data: Int32Array.of(-2, 7) });
  t.match(new TextDecoder('latin1').decode(ints.subarray(10, 128)), /'descr': '<i8'.*'shape': \(2,\)/);
  t.same(Array.from(new BigInt64Array(ints.slice(128).buffer)), [-2n, 7n], 'sign-extended to 64 bits');

  const flags = encodeNpy({ dtype: 'bool', dims: [3], data: Int32Array.of(5, 0, -1) });
  t.match(new TextDecoder('latin1').decode(flags.subarray(10, 128)), /'descr': '\|b1'/);
  t.same(Array.from(flags.subarray(128)), [1, 0, 1]);

  const widened = encodeNpy({ dtype: 'int32', dims: [1], data: Int32Array.of(-3) }, 'int64');
  t.same(parseNpy(widened, 'w.npy'), { dtype: 'int64', dims: [1], data: Int32Array.of(-3) });
});

t.test('outDtype converts: floats to ints truncate and saturate, floats to float16 round to nearest even', async (t) => {
  const floats: Tensor = { dtype: 'float32', dims: [4], data: Float32Array.of(2.7, -2.7, 300, NaN) };
  t.same(Array.from(parseNpy(encodeNpy(floats, 'int8'), 'a.npy').data), [2, -2, 127, 0]);
  const halves: Tensor = { dtype: 'float32', dims: [3], data: Float32Array.of(0.1, 1 + 2 ** -11, 1e6) };
  t.same(Array.from(parseNpy(encodeNpy(halves, 'float16'), 'h.npy').data), [0.0999755859375, 1, Infinity]);
  const bf16: Tensor = { dtype: 'bfloat16', dims: [1], data: Float32Array.of(1.5) };
  t.equal(parseNpy(encodeNpy(bf16), 'b.npy').dtype, 'float32', 'bfloat16, which numpy lacks, is written as float32');
});

t.test('scalars, empty arrays and values numpy writes that edgerun saturates', async (t) => {
  t.same(parseNpy(encodeNpy({ dtype: 'float64', dims: [], data: Float32Array.of(3.25) }), 's.npy'),
    { dtype: 'float64', dims: [], data: Float32Array.of(3.25) });
  t.same(parseNpy(encodeNpy({ dtype: 'float32', dims: [0, 3], data: new Float32Array(0) }), 'e.npy'),
    { dtype: 'float32', dims: [0, 3], data: new Float32Array(0) });
  const big = new Uint8Array(new BigInt64Array([2n ** 40n, -(2n ** 40n)]).buffer);
  t.same(Array.from(parseNpy(npyBytes(header('<i8', '(2,)'), big), 'i.npy').data), [2 ** 31 - 1, -(2 ** 31)]);
  const huge = new Uint8Array(new BigUint64Array([2n ** 63n]).buffer);
  t.same(Array.from(parseNpy(npyBytes(header('<u8', '(1,)'), huge), 'u.npy').data), [2 ** 31 - 1]);
  const u4 = new Uint8Array(Uint32Array.of(4294967295).buffer);
  t.same(Array.from(parseNpy(npyBytes(header('<u4', '(1,)'), u4), 'u4.npy').data), [2 ** 31 - 1]);
});

t.test('format versions 2 and 3 parse; headers over 64 KiB are written as version 2', async (t) => {
  const data = new Uint8Array(Float32Array.of(1, 2).buffer);
  t.same(parseNpy(npyBytes(header('<f4', '(2,)'), data, 2), 'v2.npy').data, Float32Array.of(1, 2));
  t.same(parseNpy(npyBytes(header('<f4', '(2,)'), data, 3), 'v3.npy').data, Float32Array.of(1, 2));
  t.same(parseNpy(npyBytes(header('|u1', '(3L,)'), Uint8Array.of(1, 2, 3)), 'py2.npy').dims, [3], 'python 2 long dims');

  const dims = new Array(30_000).fill(1);
  const wide = encodeNpy({ dtype: 'int32', dims, data: Int32Array.of(9) });
  t.equal(wide[6], 2);
  t.equal((12 + new DataView(wide.buffer).getUint32(8, true)) % 64, 0, 'data stays 64-byte aligned');
  const parsed = parseNpy(wide, 'wide.npy');
  t.equal(parsed.dims.length, 30_000);
  t.same(parsed.data, Int32Array.of(9));
});

t.test('malformed or unsupported files are EDGERUN_ERR_NPY naming the file and the reason', async (t) => {
  const f4 = new Uint8Array(Float32Array.of(1, 2).buffer);
  const bad: [string, Uint8Array, RegExp][] = [
    ['not npy', new TextEncoder().encode('hello world, not numpy'), /bad magic/],
    ['too short', Uint8Array.of(0x93, 0x4e), /bad magic/],
    ['big-endian', npyBytes(header('>f4', '(2,)'), f4), /big-endian/],
    ['fortran order', npyBytes(header('<f4', '(2,)', 'True'), f4), /fortran_order True/],
    ['object dtype', npyBytes(header('|O', '(2,)'), new Uint8Array(16)), /unsupported dtype '\|O'/],
    ['object dtype with size', npyBytes(header('|O8', '(2,)'), new Uint8Array(16)), /object arrays/],
    ['structured dtype', npyBytes(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }\n`, f4), /structured/],
    ['complex dtype', npyBytes(header('<c8', '(1,)'), f4), /unsupported dtype '<c8'/],
    ['short data', npyBytes(header('<f4', '(3,)'), f4), /needs 12 bytes of data but the file holds 8/],
    ['extra data', npyBytes(header('<f4', '(1,)'), f4), /needs 4 bytes of data but the file holds 8/],
    ['huge shape', npyBytes(header('<f4', '(100000, 100000, 100000)'), f4), /needs .* bytes of data but the file holds 8/],
    ['negative shape', npyBytes(header('<f4', '(-2,)'), f4), /shape entry '-2'/],
    ['no shape', npyBytes(`{'descr': '<f4', 'fortran_order': False, }\n`, f4), /no shape/],
    ['version 4', npyBytes(header('<f4', '(2,)'), f4, 4), /version 4/],
  ];
  for (const [name, bytes, reason] of bad) {
    t.throws(() => parseNpy(bytes, `${name}.npy`), { code: 'EDGERUN_ERR_NPY', message: new RegExp(`^${name}\\.npy: .*${reason.source}`) }, name);
  }
  const truncatedHeader = npyBytes(header('<f4', '(2,)'), f4).subarray(0, 40);
  t.throws(() => parseNpy(truncatedHeader, 'cut.npy'), { code: 'EDGERUN_ERR_NPY', message: /cut\.npy.*shorter/ });
  t.throws(() => encodeNpy({ dtype: 'float32', dims: [3], data: new Float32Array(2) }), { code: 'EDGERUN_ERR_NPY' });
});

t.test('writeNpyFileAtomic writes through a temp file and readNpyFile reads it back', async (t) => {
  const dir = t.testdir({ 'old.npy': 'stale' });
  const tensor: Tensor = { dtype: 'float32', dims: [2, 2], data: Float32Array.of(1, 2, 3, 4) };
  await writeNpyFileAtomic(path.join(dir, 'out.npy'), tensor);
  await writeNpyFileAtomic(path.join(dir, 'old.npy'), { dtype: 'int64', dims: [1], data: Int32Array.of(42) });
  t.same(await readNpyFile(path.join(dir, 'out.npy')), tensor);
  t.same(await readNpyFile(path.join(dir, 'old.npy')), { dtype: 'int64', dims: [1], data: Int32Array.of(42) }, 'replaced');
  t.same(fs.readdirSync(dir).sort(), ['old.npy', 'out.npy'], 'no temp files left behind');
});

t.test('file errors are EDGERUN_ERR_IO naming the path', async (t) => {
  const dir = t.testdir({});
  await t.rejects(readNpyFile(path.join(dir, 'absent.npy')), { code: 'EDGERUN_ERR_IO', message: /absent\.npy/ });
  await t.rejects(writeNpyFileAtomic(path.join(dir, 'no-such-dir', 'x.npy'), { dtype: 'bool', dims: [], data: Int32Array.of(1) }),
    { code: 'EDGERUN_ERR_IO', message: /no-such-dir/ });
  fs.writeFileSync(path.join(dir, 'junk.npy'), 'junk');
  await t.rejects(readNpyFile(path.join(dir, 'junk.npy')), { code: 'EDGERUN_ERR_NPY', message: /junk\.npy/ });
  t.same(fs.readdirSync(dir), ['junk.npy']);
});
