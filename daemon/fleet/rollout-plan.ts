/**
 * Who gets a rollout in which stage. Stage 1 is the named canaries or a percentage of the group's online
 * members; stage 2 is every other online member. The percentage pick is deterministic — members ordered by
 * sha256(model@version:deviceId) — so re-running the same rollout picks the same devices, and a different
 * package spreads the first stage over different ones.
 */
import crypto from 'node:crypto';
import { EdgerunError } from '../errors.ts';
import type { DeviceStatus } from './protocol.ts';

export type StageOneSpec = { kind: 'canary'; deviceIds: string[] } | { kind: 'percent'; percent: number };

export interface RolloutPlan {
  stageOne: string[];
  rest: string[];
  /** Each member's version of the model before the rollout (the rollback target), when it reports one. */
  previousVersions: Map<string, string>;
}

export function planRollout(members: readonly DeviceStatus[], group: string, model: { name: string; version: string }, spec: StageOneSpec): RolloutPlan {
  if (members.length === 0) {
    throw new EdgerunError('EDGERUN_ERR_FLEET_REJECTED', `group '${group}' has no online device (retained status); nothing was published`, { group });
  }
  const ids = members.map((m) => m.deviceId);
  let stageOne: string[];
  if (spec.kind === 'canary') {
    const outside = spec.deviceIds.filter((id) => !ids.includes(id));
    if (outside.length > 0) {
      throw new EdgerunError('EDGERUN_ERR_FLEET_REJECTED',
        `canary ${outside.join(', ')} ${outside.length === 1 ? 'is' : 'are'} not an online member of group '${group}'; nothing was published`,
        { group, canaries: outside });
    }
    stageOne = [...new Set(spec.deviceIds)];
  } else {
    const count = Math.min(ids.length, Math.max(1, Math.ceil((ids.length * spec.percent) / 100)));
    const rank = (id: string) => crypto.createHash('sha256').update(`${model.name}@${model.version}:${id}`).digest('hex');
    stageOne = [...ids].sort((a, b) => rank(a).localeCompare(rank(b))).slice(0, count).sort();
  }
  const previousVersions = new Map<string, string>();
  for (const member of members) {
    const version = member.models.find((m) => m.name === model.name)?.version;
    if (version) previousVersions.set(member.deviceId, version);
  }
  return { stageOne, rest: ids.filter((id) => !stageOne.includes(id)), previousVersions };
}

/** How many failures a stage of `size` devices tolerates: a count, or a fraction of the stage. */
export type FailureLimit = { kind: 'count'; max: number } | { kind: 'fraction'; max: number };

export function failuresExceeded(limit: FailureLimit, failures: number, size: number): boolean {
  return limit.kind === 'count' ? failures > limit.max : failures > limit.max * size;
}

export function describeFailureLimit(limit: FailureLimit): string {
  return limit.kind === 'count' ? `more than ${limit.max} failure${limit.max === 1 ? '' : 's'}` : `a failure rate above ${limit.max}`;
}
