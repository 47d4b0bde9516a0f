/** config/default.json, config/schema.json and config/example.yaml agree with each other and with the docs. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import t from 'tap';
import { configFolder, configSchema, defaultConfig } from '../../daemon/config/files.ts';
import { configKeys } from '../../daemon/config/keys.ts';
import { validateLayer } from '../../daemon/config/validate.ts';

const leaf = (tree: unknown, segments: string[]): unknown =>
  segments.reduce<unknown>((node, s) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined), tree);

t.test('the embedded defaults are valid and set every key of the schema', async (t) => {
  const defaults = defaultConfig();
  t.doesNotThrow(() => validateLayer(defaults, { source: 'default', where: 'config/default.json' }));
  for (const key of configKeys()) t.not(leaf(defaults, key.segments), undefined, `${key.path} has a default`);
});

t.test('every key of the schema is described', async (t) => {
  for (const key of configKeys()) t.ok(key.schema.description, `${key.path} has a description`);
  t.ok(configKeys().length >= 30);
});

t.test('the annotated example is valid, lists every key, and shows the defaults', async (t) => {
  const example = YAML.parse(fs.readFileSync(path.join(configFolder(), 'example.yaml'), 'utf8')) as unknown;
  t.doesNotThrow(() => validateLayer(example, { source: 'file', where: 'config/example.yaml' }));
  const defaults = defaultConfig();
  for (const key of configKeys()) t.same(leaf(example, key.segments), leaf(defaults, key.segments), `${key.path} in the example equals the default`);
});

t.test('environment variable names are unique and documented in docs/OPERATIONS.md', async (t) => {
  const names = configKeys().map((k) => k.env);
  t.equal(new Set(names).size, names.length);
  t.ok(names.includes('EDGERUN_SERVER_PORT') && names.includes('EDGERUN_SWAP_PROBATION_WINDOW_MS') && names.includes('EDGERUN_LOG_LEVEL'));
  const doc = fs.readFileSync(path.join(configFolder(), '..', 'docs', 'OPERATIONS.md'), 'utf8');
  for (const key of configKeys()) t.match(doc, `\`${key.env}\``, `${key.env} is documented`);
});

t.test('the schema rejects unknown keys everywhere', async (t) => {
  const objects: string[] = [];
  const walk = (node: Record<string, unknown>, at: string): void => {
    if (node.type === 'object') {
      t.equal(node.additionalProperties, false, `${at || '(top level)'} sets additionalProperties: false`);
      objects.push(at);
      for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>)) walk(child, at ? `${at}.${name}` : name);
    }
  };
  walk(configSchema() as Record<string, unknown>, '');
  t.ok(objects.length >= 12);
});
