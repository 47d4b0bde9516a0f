import t from 'tap';
import { ShapeValues, walkCoordinates } from '../../daemon/kernels/shader-util.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

t.test('ShapeValues bakes literals, or names params and binds them as build-time data', async (t) => {
  const baked = new ShapeValues(false);
  t.equal(baked.value(40, 'rows'), '40u');
  t.equal(baked.signed(-15, 'stride'), 'i32(-15)');
  t.equal(baked.declaration(2), '', 'no params buffer when baked');
  t.same(baked.loads(), []);
  t.equal(baked.binding(), null);
  t.equal(baked.key(), `baked(rows=40,stride=${-15 >>> 0})`, 'the key names the baked values');

  const params = new ShapeValues(true);
  t.equal(params.value(40, 'rows'), 'rows');
  t.equal(params.value(40, 'rows'), 'rows', 'a value used twice is stored once');
  t.equal(params.signed(-15, 'stride'), 'bitcast<i32>(stride)');
  t.equal(params.declaration(2), '@group(0) @binding(2) var<storage, read> params: array<u32>;');
  t.same(params.loads(), ['let rows = params[0];', 'let stride = params[1];']);
  const binding = params.binding();
  t.same(binding?.kind === 'constant' ? Array.from(binding.data, (v) => v | 0) : null, [40, -15], 'negative values travel as their bits');
  t.equal(params.key(), 'params(rows,stride)', 'the key names the params, not their values');
  t.equal(new ShapeValues(false).key() === new ShapeValues(true).key(), false);
  await expectEdgerunError(t, () => params.value(41, 'rows'), 'EDGERUN_ERR_GPU_VALIDATION', /rows/);
});

t.test('walkCoordinates divides once and then advances with a carry chain', async (t) => {
  // evaluate the generated statements in JavaScript for a [2,3,4] shape starting at every flat index
  const dims = [2, 3, 4];
  const { init, advance } = walkCoordinates(3, 'start', (d) => `dim${d}`);
  const toJs = (lines: string[]) => lines.join('\n').replace(/\bvar\b/g, 'let').replace(/(\d+)u\b/g, '$1').replace(/rest \/ (dim\d)/g, 'Math.floor(rest / $1)');
  const run = new Function('start', 'dim1', 'dim2', 'steps', `${toJs(init)}\nconst seen = [];\nfor (let s = 0; s < steps; s++) { seen.push([c0, c1, c2]); ${toJs(advance)} }\nreturn seen;`);
  for (let start = 0; start < 24; start++) {
    const expected = Array.from({ length: 24 - start }, (_, k) => {
      const i = start + k;
      return [Math.floor(i / 12), Math.floor(i / 4) % 3, i % 4];
    });
    t.same(run(start, dims[1], dims[2], 24 - start), expected, `from ${start}`);
  }
  t.same(walkCoordinates(0, 'i', () => 'x'), { init: [], advance: [] }, 'a scalar has no coordinates');
});
