/**
 * A signed FleetCommand on the device's or a group's command topic: verified like a manifest, refused when
 * expired or already processed (commandIds persist), then
 *   rollback   — the store's active pointer goes back (to `toVersion` or the previous version) and the hot-swap
 *                serves it; reported on the progress topic under the command id, state rolled-back
 *   abort      — the named deployment's transfer stops and its staging files go; a deployment not seen yet is
 *                recorded as aborted so its manifest is refused when it arrives
 *   trust-keys — keys are added and removed (persisted; a change leaving no key is refused)
 */
import { isEdgerunError } from '../errors.ts';
import { compareVersions } from '../package/versions.ts';
import type { AgentContext } from './agent-context.ts';
import { IN_PROGRESS_STATES } from './agent-state.ts';
import { parseEnvelope, parseFleetCommand, parseJsonPayload } from './messages.ts';
import type { FleetCommand } from './protocol.ts';
import { verifyEnvelope } from './signing.ts';

type Rollback = Extract<FleetCommand, { kind: 'rollback' }>;
type Abort = Extract<FleetCommand, { kind: 'abort' }>;

function failure(error: unknown): { code: string; reason: string } {
  return { code: isEdgerunError(error) ? error.code : 'EDGERUN_ERR_FLEET_REJECTED', reason: (error as Error).message };
}

async function rollback(ctx: AgentContext, command: Rollback): Promise<void> {
  for (const active of [...ctx.active.values()]) {
    if (active.manifest.model.name === command.model) await active.abort(`superseded by rollback command ${command.commandId}`);
  }
  const progress = (state: 'rolled-back' | 'failed', version: string, extra: { code?: string; reason?: string } = {}) => ctx.publishProgress({
    deploymentId: command.commandId, ...(command.rolloutId ? { rolloutId: command.rolloutId } : {}), model: { name: command.model, version },
    state, receivedChunks: 0, chunkCount: 0, receivedBytes: 0, totalBytes: 0, ...extra,
  });
  const from = ctx.models().get(command.model)?.activeVersion;
  try {
    // On probation the store still points at the previous version: the hot-swap's own rollback takes it back.
    let target = command.toVersion ?? ctx.models().get(command.model)?.previousVersion;
    const stored = await ctx.store().activeVersion(command.model);
    if (target === undefined || stored === undefined || compareVersions(target, stored) !== 0) {
      target = (await ctx.store().rollback(command.model, target)).version;
    }
    const info = await ctx.models().deployVersion(command.model, target);
    if (info.activeVersion === undefined || compareVersions(info.activeVersion, target) !== 0) {
      const reason = info.versions.find((v) => compareVersions(v.version, target) === 0)?.reason ?? 'it did not load';
      progress('failed', target, { code: 'EDGERUN_ERR_ENGINE', reason: `rollback to ${target}: ${reason}` });
      return;
    }
    ctx.log.warn({ model: command.model, from, to: target, commandId: command.commandId }, 'rolled back by command');
    progress('rolled-back', target, { reason: `rolled back from ${from ?? 'nothing'} by command ${command.commandId}` });
  } catch (error) {
    const { code, reason } = failure(error);
    ctx.log.warn({ model: command.model, commandId: command.commandId, code, reason }, 'a rollback command failed');
    progress('failed', command.toVersion ?? from ?? '0', { code, reason });
  } finally {
    ctx.publishStatus();
  }
}

async function abort(ctx: AgentContext, command: Abort): Promise<void> {
  const active = [...ctx.active.values()].find((a) => a.deploymentId === command.deploymentId);
  if (active) {
    await active.abort(`aborted by command ${command.commandId}`);
    return;
  }
  const seen = ctx.state.deployment(command.deploymentId);
  if (seen && !IN_PROGRESS_STATES.includes(seen.state)) {
    ctx.log.info({ deploymentId: command.deploymentId, state: seen.state }, 'abort command for a deployment that already ended');
    return;
  }
  ctx.state.record({
    deploymentId: command.deploymentId, model: seen?.model ?? '', version: seen?.version ?? '', transferId: seen?.transferId ?? '',
    state: 'aborted', envelope: null, code: 'EDGERUN_ERR_FLEET_REJECTED', reason: `aborted by command ${command.commandId} before it arrived`,
  });
  ctx.log.info({ deploymentId: command.deploymentId }, 'recorded an abort for a deployment not seen yet');
}

export async function handleCommandMessage(ctx: AgentContext, topic: string, payload: Uint8Array): Promise<void> {
  if (payload.byteLength === 0) return;
  let command: FleetCommand;
  try {
    command = parseFleetCommand(verifyEnvelope(parseEnvelope(parseJsonPayload(payload, topic), topic), ctx.trust.keys(), topic), topic);
  } catch (error) {
    ctx.log.warn({ topic, ...failure(error) }, 'refused a command');
    return;
  }
  if (Date.parse(command.expiresAt) <= Date.now()) {
    ctx.log.warn({ topic, commandId: command.commandId, expiresAt: command.expiresAt }, `refused an expired ${command.kind} command`);
    if (command.kind === 'rollback') {
      ctx.publishProgress({
        deploymentId: command.commandId, model: { name: command.model, version: command.toVersion ?? '0' }, state: 'rejected',
        receivedChunks: 0, chunkCount: 0, receivedBytes: 0, totalBytes: 0,
        code: 'EDGERUN_ERR_FLEET_REJECTED', reason: `rollback command ${command.commandId} expired at ${command.expiresAt}`,
      });
    }
    return;
  }
  if (!ctx.state.claimCommand(command.commandId, command.kind)) {
    ctx.log.info({ topic, commandId: command.commandId }, 'ignored a command processed before');
    return;
  }
  if (command.kind === 'rollback') await rollback(ctx, command);
  else if (command.kind === 'abort') await abort(ctx, command);
  else {
    try {
      const changed = ctx.trust.apply(command.add, command.remove, command.commandId);
      ctx.log.warn({ commandId: command.commandId, ...changed, trusted: ctx.trust.keys().map((k) => k.keyId) }, 'trust keys changed by command');
    } catch (error) {
      ctx.log.warn({ commandId: command.commandId, ...failure(error) }, 'refused a trust-keys command');
    }
  }
}
