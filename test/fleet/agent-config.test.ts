import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../daemon/config/load.ts';
import { FleetAgent } from '../../daemon/fleet/agent.ts';
import { logger } from '../../daemon/log.ts';
import { expectEdgerunError } from '../helpers/expect-error.ts';

const PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n';

t.test('the fleet flags set device id, trust keys and groups; relative key files resolve against the working folder', async (t) => {
  const cwd = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-fleet-config-'));
  t.teardown(() => fs.rm(cwd, { recursive: true, force: true }));
  const { config, origins } = loadConfig({
    env: {}, cwd,
    flags: { broker: 'mqtt://127.0.0.1:1883', deviceId: 'van-7', trust: ['keys/a.pub', '/etc/b.pub'], groups: ['vans', 'berlin'] },
  });
  t.equal(config.fleet.deviceId, 'van-7');
  t.same(config.fleet.trust, [path.join(cwd, 'keys/a.pub'), '/etc/b.pub']);
  t.same(config.fleet.groups, ['vans', 'berlin']);
  t.equal(config.fleet.topicPrefix, 'edgerun/v1');
  t.same([origins['fleet.deviceId'], origins['fleet.trust'], origins['fleet.groups']], ['flag', 'flag', 'flag']);
});

t.test('a trust entry holding PEM text is kept as is; the file layer resolves paths against its folder', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-fleet-config-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  await fs.writeFile(file, JSON.stringify({ fleet: { broker: 'mqtt://b:1883', deviceId: 'd1', trust: [PEM, 'ops.pub'], maxPackageBytes: 4096 } }));
  const { config } = loadConfig({ file, env: {}, cwd: '/' });
  t.same(config.fleet.trust, [PEM, path.join(dir, 'ops.pub')]);
  t.equal(config.fleet.maxPackageBytes, 4096);
});

t.test('without --device-id the host name is the device id', async (t) => {
  const { config } = loadConfig({ env: {}, cwd: '/', flags: {} });
  t.equal(config.fleet.deviceId, os.hostname());
});

t.test('bad fleet values name the key and the flag', async (t) => {
  await expectEdgerunError(t, () => loadConfig({ env: {}, cwd: '/', flags: { broker: 'mqtt://b', deviceId: 'a/b#' } }), 'EDGERUN_ERR_CONFIG',
    /fleet\.deviceId \(--device-id\): must match pattern/);
  await expectEdgerunError(t, () => loadConfig({ env: {}, cwd: '/', flags: { groups: ['ok', 'no+'] } }), 'EDGERUN_ERR_CONFIG',
    /fleet\.groups\[1\] \(--group\): must match pattern/);
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_FLEET_MQTT_PROTOCOL_VERSION: '3' }, cwd: '/' }), 'EDGERUN_ERR_CONFIG',
    /fleet\.mqttProtocolVersion \(EDGERUN_FLEET_MQTT_PROTOCOL_VERSION\): must be one of 4, 5/);
  await expectEdgerunError(t, () => loadConfig({ env: { EDGERUN_FLEET_TOPIC_PREFIX: 'a/#' }, cwd: '/' }), 'EDGERUN_ERR_CONFIG', /fleet\.topicPrefix/);
});

t.test('a trust key file that cannot be read fails the fleet agent start, naming the file', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-fleet-config-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const { config } = loadConfig({ env: {}, cwd: dir, flags: { broker: 'mqtt://127.0.0.1:1', deviceId: 'd1', trust: ['missing.pub'], stateDir: 'state' } });
  const start = FleetAgent.start({
    fleet: { ...config.fleet, broker: config.fleet.broker! }, stateDir: config.state.dir,
    models: () => { throw new Error('not needed'); }, store: () => { throw new Error('not needed'); }, log: logger,
  });
  await expectEdgerunError(t, start, 'EDGERUN_ERR_KEY', /missing\.pub: cannot read key file/);
  await fs.writeFile(path.join(dir, 'rsa.pub'), crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }));
  const rsa = FleetAgent.start({
    fleet: { ...config.fleet, broker: config.fleet.broker!, trust: [path.join(dir, 'rsa.pub')] }, stateDir: config.state.dir,
    models: () => { throw new Error('not needed'); }, store: () => { throw new Error('not needed'); }, log: logger,
  });
  await expectEdgerunError(t, rsa, 'EDGERUN_ERR_KEY', /rsa\.pub: not an ed25519 key \(found rsa\)/);
});
