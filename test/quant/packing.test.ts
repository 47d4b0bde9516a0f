import t from 'tap';
import { bytesToWords, packInt4, packInt8, packedInt4Bytes, unpackInt4 } from '../../daemon/quant/packing.ts';

t.test('int4 packing round-trips signed and unsigned values of odd length, low nibble first', async (t) => {
  const signed = [-8, 7, -1, 0, 3, -5, 6];
  const packed = packInt4(signed, true);
  t.equal(packed.length, packedInt4Bytes(7));
  t.equal(packed.length, 4);
  t.equal(packed[0], 0x78, 'element 0 (-8 → 0x8) low, element 1 (7) high');
  t.equal(packed[3]! >> 4, 0, 'the unused last high nibble stays zero');
  t.same(Array.from(unpackInt4(packed, 7, true)), signed);
  const unsigned = [0, 15, 8, 1, 14];
  t.same(Array.from(unpackInt4(packInt4(unsigned, false), 5, false)), unsigned);
});

t.test('int4 packing rejects values outside the nibble range and non-integers', async (t) => {
  t.throws(() => packInt4([8], true), RangeError);
  t.throws(() => packInt4([-9], true), RangeError);
  t.throws(() => packInt4([16], false), RangeError);
  t.throws(() => packInt4([-1], false), RangeError);
  t.throws(() => packInt4([0.5], false), RangeError);
  t.throws(() => unpackInt4(new Uint8Array(1), 3, true), RangeError);
});

t.test('int8 packing writes two’s complement bytes and rejects out-of-range values', async (t) => {
  t.same(Array.from(packInt8([-128, -1, 0, 127], true)), [0x80, 0xff, 0, 0x7f]);
  t.same(Array.from(packInt8([0, 255], false)), [0, 255]);
  t.throws(() => packInt8([128], true), RangeError);
  t.throws(() => packInt8([256], false), RangeError);
});

t.test('bytesToWords reads the packed bytes as little-endian u32, zero-padded', async (t) => {
  const words = bytesToWords(packInt4([1, 2, 3, 4, 5, 6, 7, 0, 1], false));
  t.equal(words.length, 2);
  t.equal(words[0], 0x07654321);
  t.equal(words[1], 0x1);
});
