/** The fleet commands' command lines: keys generate, fleet status, and bad input refused before anything is published. */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { brokerFixture } from '../fleet/helpers/operator-fixture.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { freePort } from '../helpers/mqtt-broker.ts';
import { ModelBuilder } from '../helpers/onnx-builder.ts';
import { replaceFile, writePackage } from '../helpers/package-builder.ts';

const { dir, broker } = await brokerFixture(t, 'edgerun-fleet-cli-');

t.test('keys generate writes a 0600 private key and a public key, prints the key id, and never overwrites', async (t) => {
  const prefix = path.join(dir, 'ops');
  const r = await edgerun('keys', 'generate', '--out', prefix);
  t.equal(r.code, 0, r.err);
  const keyId = /key id ([0-9a-f]{16})/.exec(r.out)?.[1];
  t.ok(keyId, r.out);
  t.equal((await fs.stat(`${prefix}.key`)).mode & 0o777, 0o600);
  const publicKey = crypto.createPublicKey(await fs.readFile(`${prefix}.pub`, 'utf8'));
  t.equal(publicKey.asymmetricKeyType, 'ed25519');
  t.equal(crypto.createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16), keyId);
  const before = await fs.readFile(`${prefix}.key`, 'utf8');
  const again = await edgerun('keys', 'generate', '--out', prefix);
  t.equal(again.code, 1);
  t.match(again.err, /EDGERUN_ERR_KEY: .*ops\.key already exists/);
  t.equal(await fs.readFile(`${prefix}.key`, 'utf8'), before, 'the existing key is untouched');
  t.equal((await edgerun('keys', 'generate')).code, 2, '--out is required');
  t.equal((await edgerun('keys', 'rotate', '--out', prefix)).code, 2);
});

t.test('fleet status lists devices, groups, model versions and deployment states from retained messages', async (t) => {
  const prefix = 'status-test/v1';
  const client = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  t.teardown(() => client.endAsync());
  const at = new Date().toISOString();
  const status = (deviceId: string, online: boolean, groups: string[], version: string | null) => JSON.stringify({
    protocol: 1, deviceId, groups, online, agentVersion: '1', models: [{ name: 'det', version, state: version ? 'serving' : 'none' }], at,
  });
  await client.publishAsync(`${prefix}/devices/cam-1/status`, status('cam-1', true, ['yard'], '1.2'), { qos: 1, retain: true });
  await client.publishAsync(`${prefix}/devices/cam-2/status`, status('cam-2', false, ['yard', 'gate'], '1.1'), { qos: 1, retain: true });
  await client.publishAsync(`${prefix}/devices/cam-1/progress`, JSON.stringify({
    protocol: 1, deviceId: 'cam-1', deploymentId: 'dep-1', model: { name: 'det', version: '1.3' }, state: 'downloading',
    receivedChunks: 5, chunkCount: 10, receivedBytes: 500, totalBytes: 1000, at,
  }), { qos: 1, retain: true });
  await client.publishAsync(`${prefix}/devices/broken/status`, '{"protocol":1}', { qos: 1, retain: true });

  const r = await edgerun('fleet', 'status', '--broker', broker.url, '--prefix', prefix);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /cam-1\s+yes\s+yard\s+-\s+det 1\.2 \(serving\)\s+det 1\.3 downloading 50%/);
  t.match(r.out, /cam-2\s+no\s+yard,gate\s+-\s+det 1\.1 \(serving\)\s+-/);
  t.match(r.out, /groups: gate 0\/1 online, yard 1\/2 online/);
  t.match(r.out, /model det: 1\.2 on 1, 1\.1 on 1/);
  t.match(r.out, /warning: EDGERUN_ERR_FLEET_PAYLOAD: status-test\/v1\/devices\/broken\/status/);

  const json = JSON.parse((await edgerun('fleet', 'status', '--broker', broker.url, '--prefix', prefix, '--json')).out);
  t.same(json.devices.map((d: { deviceId: string }) => d.deviceId), ['cam-1', 'cam-2']);
  t.equal(json.devices[0].deployment.state, 'downloading');
  t.same(json.groups.yard, { devices: 2, online: 1 });
  t.same(json.models.det, { '1.2': 1, '1.1': 1 });
  t.equal(json.problems.length, 1);

  const empty = await edgerun('fleet', 'status', '--broker', broker.url, '--prefix', 'nobody/v1', '--wait', '500ms');
  t.match(empty.out, /no devices have announced themselves/);
});

t.test('bad input is refused with a coded error and nothing reaches the broker', async (t) => {
  const observer = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  const published: string[] = [];
  observer.on('message', (topic) => { if (topic.includes('/deploy') || topic.includes('/transfers/')) published.push(topic); });
  await observer.subscribeAsync('edgerun/v1/#', { qos: 1 });
  t.teardown(() => observer.endAsync());

  const keyPrefix = path.join(dir, 'bad-input');
  await edgerun('keys', 'generate', '--out', keyPrefix);
  const key = `${keyPrefix}.key`;
  const model = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 2]).node('Relu', ['x'], ['y']).output('y', 'float32', [1, 2]).toBytes();
  const good = (await writePackage(path.join(dir, 'good'), { name: 'm', version: '1', model })).dir;
  const tampered = (await writePackage(path.join(dir, 'tampered'), { name: 'm', version: '1', model, extraFiles: { 'x.bin': new Uint8Array(10) } })).dir;
  await replaceFile(tampered, 'x.bin', new Uint8Array(10).fill(1));
  const rsa = path.join(dir, 'rsa.key');
  await fs.writeFile(rsa, crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const closedPort = await freePort();
  const ok = ['--broker', broker.url, '--key', key];

  const cases: [string, string[], number, RegExp][] = [
    ['a missing package', ['publish', path.join(dir, 'nope'), '--to', 'd1', ...ok], 1, /EDGERUN_ERR_PACKAGE_INVALID: .*nope/],
    ['a package whose file does not match its hash', ['publish', tampered, '--to', 'd1', ...ok], 1, /EDGERUN_ERR_PACKAGE_INVALID: .*x\.bin has sha256/],
    ['a missing key file', ['publish', good, '--to', 'd1', '--broker', broker.url, '--key', path.join(dir, 'none.key')], 1, /EDGERUN_ERR_KEY: .*none\.key/],
    ['an RSA key', ['publish', good, '--to', 'd1', '--broker', broker.url, '--key', rsa], 1, /EDGERUN_ERR_KEY: .*rsa\.key: not an ed25519 key/],
    ['a public key given as the signing key', ['publish', good, '--to', 'd1', '--broker', broker.url, '--key', `${keyPrefix}.pub`], 1, /EDGERUN_ERR_KEY: .*not a PEM private key/],
    ['a broker URL with the wrong scheme', ['publish', good, '--to', 'd1', '--key', key, '--broker', 'http://127.0.0.1:1883'], 1, /EDGERUN_ERR_FLEET_BROKER: 'http:\/\/127\.0\.0\.1:1883' is not a broker URL/],
    ['an unreachable broker', ['publish', good, '--to', 'd1', '--key', key, '--broker', `mqtt://127.0.0.1:${closedPort}`, '--connect-timeout', '1s'], 1,
      new RegExp(`EDGERUN_ERR_FLEET_BROKER: cannot connect to the broker at mqtt://127\\.0\\.0\\.1:${closedPort}`)],
    ['a device id with a topic separator', ['publish', good, '--to', 'a/b', ...ok], 2, /EDGERUN_ERR_CLI_USAGE: .*device id 'a\/b' is not a valid name/],
    ['a wildcard group', ['publish', good, '--to', 'group:#', ...ok], 2, /EDGERUN_ERR_CLI_USAGE: .*group '#' is not a valid name/],
    ['no --to', ['publish', good, ...ok], 2, /--to DEVICE or --to group:NAME is required/],
    ['a bad duration', ['publish', good, '--to', 'd1', ...ok, '--timeout', 'soon'], 2, /--timeout must be a duration/],
    ['a chunk size above the cap', ['publish', good, '--to', 'd1', ...ok, '--chunk-bytes', '999999999'], 2, /--chunk-bytes must be an integer/],
    ['both --canary and --percent', ['rollout', good, '--group', 'g', '--canary', 'd1', '--percent', '10', ...ok], 2, /exactly one of --canary/],
    ['a zero percentage', ['rollout', good, '--group', 'g', '--percent', '0', ...ok], 2, /--percent must be a number in \(0, 100\]/],
    ['a bad group name', ['rollout', good, '--group', 'a+b', '--percent', '10', ...ok], 2, /group 'a\+b' is not a valid name/],
    ['a failure threshold above 1', ['rollout', good, '--group', 'g', '--percent', '10', '--failure-threshold', '2', ...ok], 2, /--failure-threshold must be a fraction/],
    ['fleet status on an unreachable broker', ['fleet', 'status', '--broker', `mqtt://127.0.0.1:${closedPort}`, '--connect-timeout', '1s'], 1, /EDGERUN_ERR_FLEET_BROKER: .*127\.0\.0\.1/],
  ];
  for (const [what, args, code, pattern] of cases) {
    const started = Date.now();
    const r = await edgerun(...args);
    t.equal(r.code, code, `${what}: exit ${code}`);
    t.match(r.err, pattern, what);
    t.ok(Date.now() - started < 4_000, `${what}: answered within the connect timeout`);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.same(published, [], 'no manifest or chunk was published');
});
