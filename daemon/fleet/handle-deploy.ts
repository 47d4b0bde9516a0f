/**
 * A message on a deploy topic (the device's own or one of its groups'), retained or not: verify the signature
 * against the trusted keys, validate the manifest, refuse what was processed before (replays, retained
 * re-deliveries) and what fails the policy (expired, other target, stale or downgraded version, size, disk),
 * then start the transfer. Every refusal is published on the progress topic with its code and reason, once: a
 * retained manifest that was processed before is ignored silently when the broker hands it out again.
 */
import { isEdgerunError } from '../errors.ts';
import { FLEET_NAME_PATTERN } from './protocol.ts';
import { ActiveDeployment } from './active-deployment.ts';
import type { AgentContext } from './agent-context.ts';
import { IN_PROGRESS_STATES } from './agent-state.ts';
import { checkDeployment } from './deployment-checks.ts';
import { parseDeploymentManifest, parseEnvelope, parseJsonPayload } from './messages.ts';
import type { DeploymentManifest } from './protocol.ts';
import { verifyEnvelope } from './signing.ts';
import { TransferReceiver } from './transfer-receiver.ts';

/**
 * What a refused message claims to be, read without trusting it, so the refusal can name it upstream; a
 * payload that does not even say that is only logged.
 */
function claimedIdentity(payload: Uint8Array): { deploymentId: string; model: { name: string; version: string } } | undefined {
  try {
    const envelope = JSON.parse(Buffer.from(payload).toString('utf8')) as { payload?: unknown };
    const claimed = JSON.parse(String(envelope.payload)) as { deploymentId?: unknown; model?: { name?: unknown; version?: unknown } };
    const { deploymentId, model } = claimed;
    if (typeof deploymentId !== 'string' || !FLEET_NAME_PATTERN.test(deploymentId)) return undefined;
    if (typeof model?.name !== 'string' || typeof model.version !== 'string' || !/^\d+(\.\d+)*$/.test(model.version)) return undefined;
    return { deploymentId, model: { name: model.name, version: model.version } };
  } catch {
    return undefined;
  }
}

function reportRefusal(ctx: AgentContext, who: { deploymentId: string; model: { name: string; version: string }; rolloutId?: string }, code: string, reason: string, manifest?: DeploymentManifest): void {
  ctx.publishProgress({
    deploymentId: who.deploymentId,
    ...(who.rolloutId ? { rolloutId: who.rolloutId } : {}),
    model: who.model,
    state: 'rejected',
    receivedChunks: 0,
    chunkCount: manifest?.chunkCount ?? 0,
    receivedBytes: 0,
    totalBytes: manifest?.totalBytes ?? 0,
    code,
    reason,
  });
}

/** `retained`: the broker delivered a stored retained message (on (re)subscription), not a live publish. */
export async function handleDeployMessage(ctx: AgentContext, topic: string, payload: Uint8Array, retained: boolean): Promise<void> {
  // An empty retained message is how an operator clears a deploy topic.
  if (payload.byteLength === 0) return;
  let manifest: DeploymentManifest;
  let envelopeText: string;
  try {
    const envelope = parseEnvelope(parseJsonPayload(payload, topic), topic);
    manifest = parseDeploymentManifest(verifyEnvelope(envelope, ctx.trust.keys(), topic), topic);
    envelopeText = JSON.stringify(envelope);
  } catch (error) {
    const code = isEdgerunError(error) ? error.code : 'EDGERUN_ERR_FLEET_PAYLOAD';
    const reason = (error as Error).message;
    ctx.log.warn({ topic, code, reason }, 'refused a deployment message');
    const claimed = claimedIdentity(payload);
    if (claimed) reportRefusal(ctx, claimed, code, reason);
    return;
  }

  const seen = ctx.state.deployment(manifest.deploymentId);
  if (seen) {
    if (IN_PROGRESS_STATES.includes(seen.state)) return;
    // Retained manifests come back on every (re)subscription: not news, and refused again without a word.
    if (retained) return;
    const reason = `replayed: deployment ${manifest.deploymentId} was processed before (outcome: ${seen.state}); a deployment id is processed once`;
    ctx.log.warn({ topic, deploymentId: manifest.deploymentId }, reason);
    ctx.publishProgress({
      deploymentId: manifest.deploymentId, ...(manifest.rolloutId ? { rolloutId: manifest.rolloutId } : {}), model: manifest.model,
      state: 'duplicate', receivedChunks: 0, chunkCount: manifest.chunkCount, receivedBytes: 0, totalBytes: manifest.totalBytes,
      code: 'EDGERUN_ERR_FLEET_REJECTED', reason,
    });
    return;
  }

  const { name } = manifest.model;
  try {
    await checkDeployment(manifest, ctx.policy, { now: Date.now(), floor: ctx.state.floor(name), active: ctx.models().get(name)?.activeVersion });
  } catch (error) {
    const code = isEdgerunError(error) ? error.code : 'EDGERUN_ERR_FLEET_REJECTED';
    const reason = (error as Error).message;
    ctx.log.warn({ topic, deploymentId: manifest.deploymentId, code, reason }, 'rejected a deployment');
    ctx.state.record({
      deploymentId: manifest.deploymentId, model: name, version: manifest.model.version, transferId: manifest.transferId,
      state: 'rejected', envelope: null, code, reason,
    });
    reportRefusal(ctx, manifest, code, reason, manifest);
    return;
  }

  for (const other of [...ctx.active.values()]) {
    if (other.manifest.model.name === name || other.transferId === manifest.transferId) {
      await other.abort(`superseded by deployment ${manifest.deploymentId} (${name} ${manifest.model.version})`);
    }
  }
  await startDeployment(ctx, manifest, envelopeText, false);
}

/** Opens (or reopens) the staging files and starts receiving; a failure to prepare them is reported as failed. */
export async function startDeployment(ctx: AgentContext, manifest: DeploymentManifest, envelopeText: string, resumed: boolean): Promise<void> {
  let receiver: TransferReceiver;
  try {
    receiver = await TransferReceiver.open(ctx.transfersDir, manifest);
  } catch (error) {
    const code = isEdgerunError(error) ? error.code : 'EDGERUN_ERR_FLEET_TRANSFER';
    const reason = (error as Error).message;
    ctx.state.record({
      deploymentId: manifest.deploymentId, model: manifest.model.name, version: manifest.model.version, transferId: manifest.transferId,
      state: 'failed', envelope: null, code, reason,
    });
    ctx.publishProgress({
      deploymentId: manifest.deploymentId, model: manifest.model, state: 'failed', receivedChunks: 0, chunkCount: manifest.chunkCount,
      receivedBytes: 0, totalBytes: manifest.totalBytes, code, reason,
    });
    await TransferReceiver.remove(ctx.transfersDir, manifest.transferId).catch(() => undefined);
    return;
  }
  ctx.log.info({ deploymentId: manifest.deploymentId, model: manifest.model, chunks: manifest.chunkCount, bytes: manifest.totalBytes, resumed, alreadyStored: receiver.receivedChunks },
    resumed ? 'resuming a deployment' : 'accepted a deployment');
  await new ActiveDeployment(ctx, manifest, envelopeText, receiver).start(resumed);
}
