/** The end-of-deployment report of publish and rollout: a human summary for stderr and a JSON form for --json. */
import type { DeploymentResult } from './publisher.ts';
import { outcomeOf } from './publisher-progress.ts';

export function deploymentJson(result: DeploymentResult) {
  const { manifest } = result;
  return {
    deploymentId: manifest.deploymentId,
    transferId: manifest.transferId,
    ...(manifest.rolloutId ? { rolloutId: manifest.rolloutId } : {}),
    model: manifest.model,
    totalBytes: manifest.totalBytes,
    chunkBytes: manifest.chunkBytes,
    chunkCount: manifest.chunkCount,
    elapsedMs: result.elapsedMs,
    timedOut: result.timedOut,
    succeeded: result.succeeded,
    failed: result.failed,
    pending: result.pending,
    sentBytes: result.sender.sentBytes,
    resentBytes: result.sender.resentBytes,
    wireBytes: result.sender.wireBytes,
    requestedChunks: result.sender.requestedChunks,
    devices: result.devices.map((device) => ({
      deviceId: device.deviceId,
      outcome: outcomeOf(device),
      state: device.state,
      receivedBytes: device.receivedBytes,
      bytesPerSecond: Math.round(device.bytesPerSecond),
      ...(device.code ? { code: device.code } : {}),
      ...(device.reason ? { reason: device.reason } : {}),
    })),
  };
}

export function formatDeploymentSummary(result: DeploymentResult, label = ''): string {
  const { manifest } = result;
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const lines = [
    `${label}${manifest.model.name} ${manifest.model.version} (deployment ${manifest.deploymentId}): ` +
    `${result.succeeded} active, ${result.failed} failed, ${result.pending} without an outcome${result.timedOut ? ' (timed out)' : ''} ` +
    `in ${(result.elapsedMs / 1000).toFixed(1)} s; sent ${mb(result.sender.sentBytes)} MB of ${mb(manifest.totalBytes)} MB ` +
    `(${mb(result.sender.resentBytes)} MB resent on request)`,
  ];
  for (const device of result.devices) {
    const outcome = outcomeOf(device);
    if (outcome === 'succeeded') continue;
    const why = [device.code, device.reason].filter(Boolean).join(': ');
    lines.push(`${label}  ${device.deviceId}: ${outcome === 'failed' ? device.state : `no outcome (last state ${device.state})`}${why ? ` — ${why}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
