/** loadConfig: defaults, YAML/JSON files, environment and flag overrides, and errors that name the key and its source. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../daemon/config/load.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-config-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const cwd = path.join(dir, 'work');
await fs.mkdir(cwd);
const stateHome = path.join(dir, 'xdg-state');

async function write(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  return file;
}

t.test('with no configuration at all it serves on localhost from the state folder', async (t) => {
  const { config, file, origins } = loadConfig({ env: { XDG_STATE_HOME: stateHome }, cwd });
  t.equal(file, null);
  t.equal(config.server.host, '127.0.0.1');
  t.equal(config.server.port, 8080);
  t.equal(config.state.dir, path.join(stateHome, 'edgerun'));
  t.equal(config.models.dir, path.join(stateHome, 'edgerun', 'models'), 'no ./models: the state folder\'s models');
  t.equal(config.telemetry.dbFile, path.join(stateHome, 'edgerun', 'telemetry.db'));
  t.equal(config.engine.kind, 'auto');
  t.equal(origins['server.port'], 'default');
});

t.test('./models is the models folder when it exists; systemd\'s STATE_DIRECTORY is the state folder', async (t) => {
  const here = await fs.mkdtemp(path.join(dir, 'cwd-'));
  await fs.mkdir(path.join(here, 'models'));
  const { config } = loadConfig({ env: { STATE_DIRECTORY: '/var/lib/edgerun:/var/lib/other' }, cwd: here });
  t.equal(config.models.dir, path.join(here, 'models'));
  t.equal(config.state.dir, '/var/lib/edgerun');
});

t.test('a YAML file overrides the defaults; its relative paths are relative to the file', async (t) => {
  const file = await write('etc/edgerun.yaml', [
    'server:', '  port: 9001', '  host: 0.0.0.0',
    'state:', '  dir: ../var/state',
    'models:', '  dir: ~/edge-models',
    'swap:', '  probation:', '    windowMs: 0',
    'power:', '  sources: [rapl, battery]',
  ].join('\n'));
  const { config, origins } = loadConfig({ file, env: {}, cwd });
  t.equal(config.server.port, 9001);
  t.equal(config.server.host, '0.0.0.0');
  t.equal(config.server.requestTimeoutMs, 30000, 'untouched keys keep their defaults');
  t.equal(config.state.dir, path.join(dir, 'var', 'state'));
  t.equal(config.models.dir, path.join(os.homedir(), 'edge-models'));
  t.equal(config.swap.probation.windowMs, 0);
  t.equal(config.swap.probation.minRequests, 20, 'nested sections merge key by key');
  t.same(config.power.sources, ['rapl', 'battery'], 'arrays replace');
  t.equal(origins['server.port'], 'file');
  t.equal(origins['server.requestTimeoutMs'], 'default');
});

t.test('a JSON file works the same; an empty file is an empty configuration', async (t) => {
  const json = await write('c.json', JSON.stringify({ server: { port: 1234 }, telemetry: { enabled: false } }));
  const { config } = loadConfig({ file: json, env: {}, cwd });
  t.equal(config.server.port, 1234);
  t.equal(config.telemetry.enabled, false);
  const empty = await write('empty.yaml', '# nothing set\n');
  t.equal(loadConfig({ file: empty, env: {}, cwd }).config.server.port, 8080);
});

t.test('environment overrides the file, and flags override the environment', async (t) => {
  const file = await write('layers.yaml', 'server:\n  port: 9001\n  requestTimeoutMs: 1000\nlog:\n  level: warn\n');
  const env = {
    EDGERUN_SERVER_PORT: '9002', EDGERUN_SERVER_REQUEST_TIMEOUT_MS: '2000', EDGERUN_SWAP_PROBATION_MAX_ERROR_RATE: '0.5',
    EDGERUN_TELEMETRY_ENABLED: 'false', EDGERUN_POWER_SOURCES: 'hwmon, nvidia', EDGERUN_ENGINE_ADAPTER_INDEX: 'null',
    EDGERUN_LOG_LEVEL: 'debug', EDGERUN_DUMP_WGSL: '1',
  };
  const { config, origins } = loadConfig({ file, env, flags: { port: '9003', stateDir: 'st', modelsDir: '/srv/models', broker: 'mqtts://broker.local:8883' }, cwd });
  t.equal(config.server.port, 9003);
  t.equal(config.server.requestTimeoutMs, 2000);
  t.equal(config.swap.probation.maxErrorRate, 0.5);
  t.equal(config.telemetry.enabled, false);
  t.same(config.power.sources, ['hwmon', 'nvidia']);
  t.equal(config.engine.adapterIndex, null);
  t.equal(config.log.level, 'debug');
  t.equal(config.state.dir, path.join(cwd, 'st'), 'flag paths are relative to the working directory');
  t.equal(config.models.dir, '/srv/models');
  t.equal(config.fleet.broker, 'mqtts://broker.local:8883');
  t.same([origins['server.port'], origins['server.requestTimeoutMs'], origins['log.level'], origins['fleet.broker']], ['flag', 'env', 'env', 'flag']);
});

t.test('EDGERUN_CONFIG names the file when --config is not given', async (t) => {
  const file = await write('from-env.yaml', 'server:\n  port: 7000\n');
  t.equal(loadConfig({ env: { EDGERUN_CONFIG: file }, cwd }).config.server.port, 7000);
  const other = await write('from-flag.yaml', 'server:\n  port: 7001\n');
  t.equal(loadConfig({ file: other, env: { EDGERUN_CONFIG: file }, cwd }).config.server.port, 7001);
});

t.test('an invalid value in a file names the file, the key path and the rule', async (t) => {
  const file = await write('bad.yaml', 'server:\n  port: 70000\nswap:\n  probation:\n    maxErrorRate: 2\nengine:\n  kind: cuda\n');
  await expectEdgerunError(t, () => loadConfig({ file, env: {}, cwd }), 'EDGERUN_ERR_CONFIG',
    new RegExp(`from file ${file.replace(/[.]/g, '\\.')}`), /server\.port: must be <= 65535/, /swap\.probation\.maxErrorRate: must be <= 1/,
    /engine\.kind: must be one of "auto", "webgpu", "onnxruntime-cpu"/);
});

t.test('unknown keys are rejected with their name and a suggestion', async (t) => {
  const file = await write('unknown.yaml', 'server:\n  prot: 1\nmodel:\n  dir: x\n');
  await expectEdgerunError(t, () => loadConfig({ file, env: {}, cwd }), 'EDGERUN_ERR_CONFIG',
    /server\.prot: unknown key \(did you mean 'port'\?\)/, /model: unknown key \(did you mean 'models'\?\)/);
});

t.test('invalid environment values name the variable; unknown EDGERUN_<SECTION>_ variables are rejected', async (t) => {
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_SERVER_PORT: 'eighty' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /from environment: server\.port \(EDGERUN_SERVER_PORT\): must be integer/);
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_POWER_SOURCES: 'rapl,solar' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /power\.sources\[1\] \(EDGERUN_POWER_SOURCES\): must be one of/);
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_TELEMETRY_ENABLED: 'maybe' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /telemetry\.enabled \(EDGERUN_TELEMETRY_ENABLED\): must be boolean/);
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_SERVER_PROT: '1' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /EDGERUN_SERVER_PROT: unknown variable.*did you mean EDGERUN_SERVER_PORT/);
});

t.test('invalid flags name the flag', async (t) => {
  await expectEdgerunError(t, () => loadConfig({ env: {}, flags: { port: '65536' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /from command-line flags: server\.port \(--port\): must be <= 65535/);
  await expectEdgerunError(t, () => loadConfig({ env: {}, flags: { port: '80x' }, cwd }), 'EDGERUN_ERR_CONFIG', /server\.port \(--port\): must be integer/);
  await expectEdgerunError(t, () => loadConfig({ env: {}, flags: { broker: 'http://broker' }, cwd }), 'EDGERUN_ERR_CONFIG',
    /fleet\.broker \(--broker\): must be a broker URL such as mqtt:\/\/host:1883/);
  await expectEdgerunError(t, () => loadConfig({ env: {}, flags: { stateDir: '' }, cwd }), 'EDGERUN_ERR_CONFIG', /state\.dir \(--state-dir\)/);
});

t.test('a missing, unparsable or non-mapping file is a configuration error naming the file', async (t) => {
  await expectEdgerunError(t, () => loadConfig({ file: path.join(dir, 'nope.yaml'), env: {}, cwd }), 'EDGERUN_ERR_CONFIG', /nope\.yaml: no such file/);
  const broken = await write('broken.yaml', 'server:\n  port: [1,\n');
  await expectEdgerunError(t, () => loadConfig({ file: broken, env: {}, cwd }), 'EDGERUN_ERR_CONFIG', /broken\.yaml: cannot parse/);
  const dup = await write('dup.yaml', 'server:\n  port: 1\n  port: 2\n');
  await expectEdgerunError(t, () => loadConfig({ file: dup, env: {}, cwd }), 'EDGERUN_ERR_CONFIG', /dup\.yaml: cannot parse: Map keys must be unique at line 3/);
  const badJson = await write('bad.json', '{"server": {"port": 1,}}');
  await expectEdgerunError(t, () => loadConfig({ file: badJson, env: {}, cwd }), 'EDGERUN_ERR_CONFIG', /bad\.json: cannot parse/);
  const list = await write('list.yaml', '- server\n');
  await expectEdgerunError(t, () => loadConfig({ file: list, env: {}, cwd }), 'EDGERUN_ERR_CONFIG', /list\.yaml: the top level must be a mapping/);
});
