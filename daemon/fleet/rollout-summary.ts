/** The end-of-rollout report: per-stage summaries and the outcome (stderr), or one JSON object (--json). */
import { deploymentJson, formatDeploymentSummary } from './publisher-summary.ts';
import type { RolloutResult } from './rollout.ts';

export function rolloutJson(result: RolloutResult) {
  return {
    rolloutId: result.rolloutId,
    group: result.group,
    model: result.model,
    outcome: result.outcome,
    ...(result.abortReason ? { abortReason: result.abortReason } : {}),
    stages: result.stages.map((stage) => ({ name: stage.name, targets: stage.devices, ...deploymentJson(stage.result) })),
    aborted: result.aborted,
    rolledBack: result.rolledBack,
    rollbackOutcomes: result.rollbackOutcomes,
    untouched: result.untouched,
  };
}

export function formatRolloutSummary(result: RolloutResult): string {
  const lines = result.stages.map((stage) => formatDeploymentSummary(stage.result, `[${stage.name}] `).trimEnd());
  const head = `rollout ${result.rolloutId} of ${result.model.name} ${result.model.version} to group ${result.group}`;
  if (result.outcome === 'completed') {
    const devices = result.stages.reduce((total, stage) => total + stage.devices.length, 0);
    lines.push(`${head}: completed on ${devices} device${devices === 1 ? '' : 's'}`);
  } else {
    lines.push(`${head}: ABORTED — ${result.abortReason}`);
    lines.push(`  abort sent to: ${result.aborted.join(', ') || 'none'}`);
    const answer = (deviceId: string) => {
      const outcome = result.rollbackOutcomes[deviceId];
      if (!outcome || outcome.state === 'no answer') return `${deviceId} (no answer)`;
      if (outcome.state === 'rolled-back') return `${deviceId} (rolled back to ${outcome.version})`;
      return `${deviceId} (${outcome.state}${outcome.reason ? `: ${outcome.reason}` : ''})`;
    };
    lines.push(`  rollback sent to: ${result.rolledBack.map(answer).join(', ') || 'none'}`);
    lines.push(`  never received the manifest: ${result.untouched.join(', ') || 'none'}`);
  }
  return `${lines.join('\n')}\n`;
}
