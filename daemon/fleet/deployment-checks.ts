/**
 * The policy a verified deployment manifest must pass before a single chunk is stored: not expired, meant for
 * this device's target, a version above every version that was ever active here for that model (so neither a
 * stale nor a replayed manifest, retained ones included, can bring an old model back — rollback is a command),
 * and within the size cap and the free-disk reserve. Each refusal is EDGERUN_ERR_FLEET_REJECTED saying why.
 */
import fs from 'node:fs/promises';
import { EdgerunError } from '../errors.ts';
import { compareVersions } from '../package/versions.ts';
import type { DeploymentManifest } from './protocol.ts';

export interface DeploymentPolicy {
  /** The device's declared target profile (fleet.target). */
  target: string | null;
  maxPackageBytes: number;
  minFreeDiskBytes: number;
  /** Folder whose file system receives the transfer and the store. */
  stateDir: string;
}

export interface DeviceFacts {
  now: number;
  /** Highest version of this model that was ever active here (AgentState.floor). */
  floor: string | undefined;
  /** The version serving now, if any (a models-folder version may be above the floor). */
  active: string | undefined;
}

/**
 * A transfer needs its staging copy, the assembled package folder and the store's copy of every file at
 * once, before the staging folder is removed.
 */
export const DISK_COPIES_PER_PACKAGE = 3;

function rejected(manifest: DeploymentManifest, reason: string, check: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_FLEET_REJECTED',
    `deployment ${manifest.deploymentId} (${manifest.model.name} ${manifest.model.version}) rejected: ${reason}`,
    { deploymentId: manifest.deploymentId, model: manifest.model.name, version: manifest.model.version, check });
}

export async function freeDiskBytes(dir: string): Promise<number> {
  const stats = await fs.statfs(dir);
  return stats.bavail * stats.bsize;
}

export async function checkDeployment(manifest: DeploymentManifest, policy: DeploymentPolicy, facts: DeviceFacts): Promise<void> {
  const expires = Date.parse(manifest.expiresAt);
  if (expires <= facts.now) throw rejected(manifest, `the manifest expired at ${manifest.expiresAt}`, 'expiry');
  if (Date.parse(manifest.issuedAt) > expires) throw rejected(manifest, `issuedAt ${manifest.issuedAt} is after expiresAt ${manifest.expiresAt}`, 'expiry');

  const targets = manifest.targets ?? [];
  if (targets.length > 0 && (policy.target === null || !targets.includes(policy.target))) {
    const mine = policy.target === null ? 'this device declares no target (fleet.target)' : `this device is '${policy.target}'`;
    throw rejected(manifest, `the package is for targets ${targets.join(', ')}; ${mine}`, 'target');
  }

  const { version } = manifest.model;
  if (facts.floor !== undefined && compareVersions(version, facts.floor) <= 0) {
    const what = compareVersions(version, facts.floor) === 0 ? 'stale' : 'downgrade';
    throw rejected(manifest, `${what}: version ${version} is not above ${facts.floor}, the highest version of ${manifest.model.name} that was active here (roll back with a signed rollback command)`, 'version');
  }
  if (facts.active !== undefined && compareVersions(version, facts.active) <= 0) {
    throw rejected(manifest, `downgrade: version ${version} is not above ${facts.active}, the version serving now`, 'version');
  }

  if (manifest.totalBytes > policy.maxPackageBytes) {
    throw rejected(manifest, `the package is ${manifest.totalBytes} bytes, above fleet.maxPackageBytes (${policy.maxPackageBytes})`, 'size');
  }
  const free = await freeDiskBytes(policy.stateDir);
  const needed = manifest.totalBytes * DISK_COPIES_PER_PACKAGE;
  if (free - needed < policy.minFreeDiskBytes) {
    throw rejected(manifest,
      `disk full: ${free} bytes free in ${policy.stateDir}; the transfer needs ${needed} and fleet.minFreeDiskBytes keeps ${policy.minFreeDiskBytes} free`, 'disk');
  }
}
