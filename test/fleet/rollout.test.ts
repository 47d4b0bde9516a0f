/** `edgerun rollout` against a real broker: canaries then the rest; a failing canary stops the rollout with abort and rollback. */
import mqtt from 'mqtt';
import t from 'tap';
import { parseEnvelope, parseFleetCommand, parseJsonPayload } from '../../daemon/fleet/messages.ts';
import type { DeviceStatus } from '../../daemon/fleet/protocol.ts';
import { planRollout } from '../../daemon/fleet/rollout-plan.ts';
import { verifyEnvelope } from '../../daemon/fleet/signing.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { operatorFixture } from './helpers/operator-fixture.ts';
import { SimulatedDevice, type SimulatedDeviceOptions } from './helpers/simulated-device.ts';

const { broker, trusted, pkg, common } = await operatorFixture(t, 'edgerun-rollout-', new Uint8Array(60_000).fill(7));
const running = [{ name: 'relu', version: '1.0', state: 'serving' }];

async function fleet(group: string, specs: Partial<SimulatedDeviceOptions>[]): Promise<SimulatedDevice[]> {
  const devices: SimulatedDevice[] = [];
  for (const [i, spec] of specs.entries()) {
    devices.push(await SimulatedDevice.start({ brokerUrl: broker.url, protocolVersion: broker.protocolVersion, deviceId: `${group}-${i + 1}`, groups: [group], trusted, models: running, ...spec }));
  }
  return devices;
}

t.test('the canary goes first, then the rest; every manifest carries the rollout id', async (t) => {
  const devices = await fleet('east', [{}, {}, {}, {}]);
  t.teardown(() => Promise.all(devices.map((d) => d.stop())));
  const r = await edgerun('rollout', pkg.dir, '--group', 'east', '--canary', 'east-2', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.outcome, 'completed');
  t.same(outcome.stages.map((s: { targets: string[] }) => s.targets), [['east-2'], ['east-1', 'east-3', 'east-4']]);
  t.same(outcome.stages.map((s: { succeeded: number }) => s.succeeded), [1, 3]);
  t.match(r.err, /\[stage 1\] east-2 {2}active/);
  t.match(r.err, /\[stage 2\] east-4 {2}active/);
  for (const device of devices) {
    t.equal(device.manifests.length, 1, `${device.manifests.length} manifest on ${device.manifests[0]?.deploymentId}`);
    t.equal(device.manifests[0]!.rolloutId, outcome.rolloutId);
    t.equal(device.files.get('weights.bin')?.length, 60_000);
  }
  t.not(devices[1]!.manifests[0]!.deploymentId, devices[0]!.manifests[0]!.deploymentId, 'each stage is its own deployment');
});

t.test('a failing canary stops the rollout: abort to the one in flight, rollback to the one that switched, nothing for the rest', async (t) => {
  const observer = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  const seen: { topic: string; kind: string; toVersion?: string; deploymentId?: string }[] = [];
  observer.on('message', (topic, payload) => {
    const value = verifyEnvelope(parseEnvelope(parseJsonPayload(payload, topic), topic), trusted, topic);
    const command = parseFleetCommand(value, topic);
    seen.push({ topic, kind: command.kind, ...(command.kind === 'rollback' && command.toVersion ? { toVersion: command.toVersion } : {}) });
  });
  await observer.subscribeAsync('edgerun/v1/devices/+/command', { qos: 1 });
  const devices = await fleet('west', [
    {},
    { failWith: { code: 'EDGERUN_ERR_GATE_FAILED', reason: 'agreement 0.3' }, outcomeDelayMs: 1000 },
    { dropFirst: () => true, requestAfterMs: 60_000 },
    {}, {},
  ]);
  t.teardown(async () => { await Promise.all(devices.map((d) => d.stop())); await observer.endAsync(); });
  const r = await edgerun('rollout', pkg.dir, '--group', 'west', '--canary', 'west-1,west-2,west-3', ...common);
  t.equal(r.code, 1);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.outcome, 'aborted');
  t.match(outcome.abortReason, /stage 1: 1 failed and 1 without an outcome of 3/);
  t.same(outcome.aborted, ['west-3']);
  t.same(outcome.rolledBack, ['west-1']);
  t.same(outcome.rollbackOutcomes, { 'west-1': { state: 'rolled-back', version: '1.0' } }, 'the rollback was confirmed');
  t.match(r.err, /rollback sent to: west-1 \(rolled back to 1\.0\)/);
  t.same(outcome.untouched, ['west-4', 'west-5']);
  t.match(r.err, /ABORTED/);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.same(seen.map((s) => [s.topic, s.kind, s.toVersion]).sort(), [
    ['edgerun/v1/devices/west-1/command', 'rollback', '1.0'],
    ['edgerun/v1/devices/west-3/command', 'abort', undefined],
  ]);
  t.equal(devices[2]!.commands[0]?.kind, 'abort', 'the device in flight verified and received the abort');
  t.equal(devices[3]!.manifests.length + devices[4]!.manifests.length, 0, 'the rest never receive the manifest');
  const retained: string[] = [];
  const later = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  later.on('message', (topic, payload) => { if (payload.length > 0 && topic.includes('/west-')) retained.push(topic); });
  await later.subscribeAsync('edgerun/v1/devices/+/deploy', { qos: 1 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  await later.endAsync();
  t.same(retained, [], 'the aborted stage left no retained manifest behind');
});

t.test('--percent stages that share of the online members first, then the rest', async (t) => {
  const devices = await fleet('south', [{}, {}, {}, {}]);
  t.teardown(() => Promise.all(devices.map((d) => d.stop())));
  const r = await edgerun('rollout', pkg.dir, '--group', 'south', '--percent', '50', ...common);
  t.equal(r.code, 0, r.err);
  const outcome = JSON.parse(r.out);
  t.equal(outcome.stages[0].targets.length, 2);
  t.equal(outcome.stages[1].targets.length, 2);
  t.same([...outcome.stages[0].targets, ...outcome.stages[1].targets].sort(), ['south-1', 'south-2', 'south-3', 'south-4']);
  t.ok(devices.every((d) => d.files.get('weights.bin')?.length === 60_000));
});

t.test('a percentage picks the same members for the same package, at least one', async (t) => {
  const members = Array.from({ length: 10 }, (_, i): DeviceStatus => ({
    protocol: 1, deviceId: `d${i}`, groups: ['g'], online: true, agentVersion: 'x', models: [], at: new Date().toISOString(),
  }));
  const a = planRollout(members, 'g', { name: 'm', version: '1' }, { kind: 'percent', percent: 30 });
  const b = planRollout([...members].reverse(), 'g', { name: 'm', version: '1' }, { kind: 'percent', percent: 30 });
  t.equal(a.stageOne.length, 3);
  t.same(a.stageOne, b.stageOne);
  t.equal(a.rest.length, 7);
  t.equal(planRollout(members, 'g', { name: 'm', version: '1' }, { kind: 'percent', percent: 1 }).stageOne.length, 1);
});

t.test('a canary outside the group is refused before anything is published', async (t) => {
  const devices = await fleet('north', [{}]);
  t.teardown(() => Promise.all(devices.map((d) => d.stop())));
  const r = await edgerun('rollout', pkg.dir, '--group', 'north', '--canary', 'stranger', ...common);
  t.equal(r.code, 1);
  t.match(r.err, /EDGERUN_ERR_FLEET_REJECTED: canary stranger is not an online member of group 'north'/);
  t.equal(devices[0]!.manifests.length, 0);
});
