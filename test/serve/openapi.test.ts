import { Ajv2020 } from 'ajv/dist/2020.js';
import { Registry } from 'prom-client';
import t from 'tap';
import { OrtCpuEngine } from '../../daemon/engine/ort-cpu-engine.ts';
import { build } from '../../daemon/serve/app.ts';
import { MemoryModelRegistry } from './helpers/memory-registry.ts';

const engine = await OrtCpuEngine.create();
const app = await build({ registry: new MemoryModelRegistry(engine), metricsRegistry: new Registry() });
await app.ready();
t.teardown(async () => {
  await app.close();
  await engine.close();
});

const res = await app.inject({ method: 'GET', url: '/v2/openapi.json' });
const document = res.json();

/** "METHOD /path/{param}" for every route fastify registered (HEAD is fastify's automatic twin of GET). */
function registeredRoutes(): Set<string> {
  const routes = new Set<string>();
  const stack: { depth: number; path: string }[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^(.*?)(?:├── |└── )(\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1].length;
    while (stack.length > 0 && stack.at(-1)!.depth >= depth) stack.pop();
    const path = `${stack.at(-1)?.path ?? ''}${match[2]}`;
    stack.push({ depth, path });
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD')) {
      routes.add(`${method} ${path.replace(/:(\w+)/g, (_m, name: string) => `{${name === 'model' ? 'model_name' : 'model_version'}}`)}`);
    }
  }
  return routes;
}

t.test('GET /v2/openapi.json is an OpenAPI 3.1 document', async (t) => {
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /application\/json/);
  t.equal(document.openapi, '3.1.0');
  t.ok(document.info.version);
});

t.test('every route the app serves is documented, and every documented route is served', async (t) => {
  const served = registeredRoutes();
  const documented = new Set<string>();
  for (const [path, operations] of Object.entries(document.paths as Record<string, object>)) {
    for (const method of Object.keys(operations)) documented.add(`${method.toUpperCase()} ${path}`);
  }
  t.ok(served.size >= 14, `found the routes (${served.size})`);
  t.same([...served].sort(), [...documented].sort());
});

t.test('the documented request schema accepts the protocol examples and rejects malformed bodies', async (t) => {
  const ajv = new Ajv2020({ strict: false });
  ajv.addSchema(document, 'edgerun-openapi');
  const validate = ajv.compile({ $ref: 'edgerun-openapi#/components/schemas/InferenceRequest' });
  const examples = [
    { inputs: [{ name: 'input-0', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4]] }] },
    { id: '42', inputs: [{ name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] }, { name: 'input1', shape: [3], datatype: 'BOOL', data: [true, false, true] }], outputs: [{ name: 'output0' }] },
    { model_name: 'mymodel', inputs: [{ name: 'input0', shape: [2, 2], datatype: 'UINT32', parameters: { binary_data_size: 16 } }], outputs: [{ name: 'output0', parameters: { binary_data: true } }, { name: 'output1' }] },
  ];
  for (const example of examples) t.ok(validate(example), JSON.stringify(validate.errors));
  for (const bad of [{}, { inputs: [] }, { inputs: [{ name: 'x', shape: [-2], datatype: 'FP32', data: [] }] }, { inputs: [{ name: 'x', shape: [1], datatype: 'FLOAT', data: [1] }] }]) {
    t.notOk(validate(bad), JSON.stringify(bad));
  }
  const response = ajv.compile({ $ref: 'edgerun-openapi#/components/schemas/InferenceResponse' });
  t.ok(response({ model_name: 'm', model_version: '1', outputs: [{ name: 'y', datatype: 'FP32', shape: [1], data: [null] }] }), JSON.stringify(response.errors));
});
