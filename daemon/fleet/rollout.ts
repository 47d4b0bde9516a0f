/**
 * `edgerun rollout`: a staged deployment to a group. Stage 1 goes to the canaries (or a percentage), each on its
 * own device deploy topic; when its failures pass the limit the rollout stops there — `abort` to the devices
 * still in flight, `rollback` to those that already switched — and the rest never see the manifest. Otherwise
 * stage 2 goes to every other member online when the rollout started, again on device topics.
 *
 * Why device topics for stage 2 and not the group topic: a retained group manifest would also reach devices the
 * rollout never staged (members that come online later would skip the canary stage), and a device can only
 * fetch chunks while a sender serves them. Devices that join later get the model from a later publish or rollout.
 */
import crypto from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { onlineGroupMembers, readFleet } from './fleet-view.ts';
import { parseDeploymentProgress, parseJsonPayload } from './messages.ts';
import { buildDeploymentManifest, type PackageSource } from './publisher-package.ts';
import { outcomeOf } from './publisher-progress.ts';
import { commandTimes, DEFAULT_FLEET_WAIT_MS, Deployment, type DeploymentResult, sendCommand } from './publisher.ts';
import { topics } from './protocol.ts';
import { describeFailureLimit, failuresExceeded, type FailureLimit, planRollout, type StageOneSpec } from './rollout-plan.ts';
import type { SigningKey } from './signing.ts';

export interface RolloutOptions {
  client: MqttClient;
  prefix: string;
  key: SigningKey;
  source: PackageSource;
  group: string;
  stageOne: StageOneSpec;
  failureLimit: FailureLimit;
  /** Per stage. */
  timeoutMs: number;
  expiresInMs: number;
  chunkBytes?: number;
  window?: number;
  startGraceMs?: number;
  fleetWaitMs?: number;
  progressStream?: NodeJS.WritableStream;
}

export interface RolloutStage {
  name: 'stage 1' | 'stage 2';
  devices: string[];
  result: DeploymentResult;
}

export interface RolloutResult {
  rolloutId: string;
  group: string;
  model: { name: string; version: string };
  outcome: 'completed' | 'aborted';
  abortReason?: string;
  stages: RolloutStage[];
  /** Devices that got `abort` (in flight when the rollout stopped). */
  aborted: string[];
  /** Devices that got `rollback` (already switched when the rollout stopped). */
  rolledBack: string[];
  /** What each of them answered (state `rolled-back`, or `failed`/`rejected` with the reason), or 'no answer'. */
  rollbackOutcomes: Record<string, { state: string; version?: string; code?: string; reason?: string }>;
  /** Online members that never received the manifest. */
  untouched: string[];
}

export async function runRollout(options: RolloutOptions): Promise<RolloutResult> {
  const { client, prefix, key, source, group, failureLimit } = options;
  const model = { name: source.name, version: source.version };
  const view = await readFleet(client, prefix, { waitMs: options.fleetWaitMs ?? DEFAULT_FLEET_WAIT_MS });
  const plan = planRollout(onlineGroupMembers(view, group), group, model, options.stageOne);
  const rolloutId = crypto.randomUUID();
  const result: RolloutResult = { rolloutId, group, model, outcome: 'completed', stages: [], aborted: [], rolledBack: [], rollbackOutcomes: {}, untouched: [] };
  const deployments: Deployment[] = [];
  const stages: [RolloutStage['name'], string[]][] = [['stage 1', plan.stageOne], ['stage 2', plan.rest]];
  for (const [index, [name, devices]] of stages.entries()) {
    if (devices.length === 0) continue;
    const manifest = buildDeploymentManifest(source, {
      expiresInMs: options.expiresInMs, rolloutId, ...(options.chunkBytes ? { chunkBytes: options.chunkBytes } : {}),
    });
    const deployment = new Deployment({
      client, prefix, key, source, manifest, expected: devices,
      deployTopics: devices.map((deviceId) => topics.deviceDeploy(prefix, deviceId)),
      ...(options.window ? { window: options.window } : {}),
      ...(options.startGraceMs !== undefined ? { startGraceMs: options.startGraceMs } : {}),
      ...(options.progressStream ? { progressStream: options.progressStream, progressLabel: `[${name}] ` } : {}),
    });
    deployments.push(deployment);
    const deadline = Date.now() + options.timeoutMs;
    const tooMany = () => failuresExceeded(failureLimit, deployment.tracker.count('failed'), devices.length);
    let stage: DeploymentResult;
    try {
      await deployment.start(deadline);
      stage = await deployment.wait(deadline, tooMany);
    } finally {
      await deployment.stop();
    }
    result.stages.push({ name, devices, result: stage });
    // Devices still without an outcome at the deadline count as failures.
    if (failuresExceeded(failureLimit, stage.failed + stage.pending, devices.length)) {
      result.outcome = 'aborted';
      result.abortReason = `${name}: ${stage.failed} failed and ${stage.pending} without an outcome of ${devices.length} (limit: abort on ${describeFailureLimit(failureLimit)})`;
      result.untouched = stages.slice(index + 1).flatMap(([, later]) => later);
      await abortRollout(options, deployments, result, plan.previousVersions);
      return result;
    }
  }
  return result;
}

async function abortRollout(options: RolloutOptions, deployments: Deployment[], result: RolloutResult, previous: Map<string, string>): Promise<void> {
  const { client, prefix, key, source, expiresInMs } = options;
  for (const deployment of deployments) {
    const inFlight = [...deployment.tracker.devices.values()].filter((d) => outcomeOf(d) === 'pending').map((d) => d.deviceId);
    await deployment.abort(inFlight, expiresInMs);
    result.aborted.push(...inFlight);
  }
  const switched = deployments.flatMap((deployment) =>
    [...deployment.tracker.devices.values()].filter((d) => outcomeOf(d) === 'succeeded').map((d) => d.deviceId));
  const commands = new Map<string, string>();
  const answers = watchCommandOutcomes(client, prefix, commands, result.rollbackOutcomes);
  try {
    await client.subscribeAsync(topics.allProgress(prefix), { qos: 1 });
    for (const deviceId of switched) {
      const toVersion = previous.get(deviceId);
      const commandId = crypto.randomUUID();
      commands.set(commandId, deviceId);
      result.rollbackOutcomes[deviceId] = { state: 'no answer' };
      await sendCommand(client, prefix, key, deviceId, {
        protocol: 1, kind: 'rollback', commandId, model: source.name,
        ...(toVersion && toVersion !== source.version ? { toVersion } : {}), ...commandTimes(expiresInMs), rolloutId: result.rolloutId,
      });
      result.rolledBack.push(deviceId);
    }
    await answers.all(Math.min(options.timeoutMs, ROLLBACK_ANSWER_WAIT_MS));
  } finally {
    answers.stop();
  }
}

/** How long an aborted rollout waits for the devices to confirm their rollback. */
const ROLLBACK_ANSWER_WAIT_MS = 30_000;

/**
 * Devices answer a command on their progress topic with the command's id as the deploymentId (state
 * `rolled-back`, or `failed`/`rejected` with the reason); this records those answers into `outcomes`.
 */
function watchCommandOutcomes(client: MqttClient, prefix: string, commands: Map<string, string>, outcomes: RolloutResult['rollbackOutcomes']) {
  const answered = new Set<string>();
  let wake: (() => void) | null = null;
  const onMessage = (topic: string, payload: Buffer): void => {
    if (!topic.startsWith(`${prefix}/devices/`) || !topic.endsWith('/progress') || payload.length === 0) return;
    try {
      const progress = parseDeploymentProgress(parseJsonPayload(payload, topic), topic);
      const deviceId = commands.get(progress.deploymentId);
      if (deviceId === undefined || deviceId !== progress.deviceId) return;
      outcomes[deviceId] = {
        state: progress.state, version: progress.model.version,
        ...(progress.code ? { code: progress.code } : {}), ...(progress.reason ? { reason: progress.reason } : {}),
      };
      answered.add(deviceId);
      wake?.();
    } catch {
      // Someone else's malformed progress message says nothing about these commands.
    }
  };
  client.on('message', onMessage);
  return {
    async all(waitMs: number): Promise<void> {
      const deadline = Date.now() + waitMs;
      while (answered.size < commands.size && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          wake = () => { clearTimeout(timer); resolve(); };
        });
        wake = null;
      }
    },
    stop(): void { client.off('message', onMessage); },
  };
}
