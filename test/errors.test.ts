import fs from 'node:fs';
import t from 'tap';
import { ERROR_CODES, EdgerunError } from '../daemon/errors.ts';

t.test('every error code in the registry is documented in docs/ERRORS.md', async (t) => {
  const doc = fs.readFileSync(new URL('../docs/ERRORS.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) t.match(doc, `\`${code}\``, `${code} is documented`);
});

t.test('every documented code exists in the registry', async (t) => {
  const doc = fs.readFileSync(new URL('../docs/ERRORS.md', import.meta.url), 'utf8');
  const documented = [...doc.matchAll(/`(EDGERUN_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]);
  for (const code of documented) t.ok(code in ERROR_CODES, `${code} is registered`);
});

t.test('an EdgerunError carries its code, HTTP status and context', async (t) => {
  const error = new EdgerunError('EDGERUN_ERR_INPUT', "missing input 'x'", { input: 'x' });
  t.equal(error.code, 'EDGERUN_ERR_INPUT');
  t.equal(error.status, 400);
  t.same(error.toJSON(), { code: 'EDGERUN_ERR_INPUT', message: "missing input 'x'", input: 'x' });
});
