/**
 * Follows one deployment's progress reports (retained, one topic per device) and decides when it is over:
 * every device it waits for has reached `active` (success) or a terminal failure. Devices that were not
 * expected but report on this deployment (a group member that came online) join the table and the wait.
 * It also renders the live per-device lines publish and rollout print on stderr.
 */
import type { DeploymentProgress, DeploymentState } from './protocol.ts';

const FAILURE_STATES: ReadonlySet<DeploymentState> = new Set(['rejected', 'failed', 'rolled-back', 'aborted']);

export type DeviceOutcome = 'pending' | 'succeeded' | 'failed';

export interface DeviceDeployment {
  deviceId: string;
  /** 'waiting' until the device's first report. */
  state: DeploymentState | 'waiting';
  receivedBytes: number;
  totalBytes: number;
  /** Average since the device's first report, in bytes per second. */
  bytesPerSecond: number;
  code?: string;
  reason?: string;
  firstReportAt?: number;
  finishedAt?: number;
}

export function outcomeOf(device: DeviceDeployment): DeviceOutcome {
  if (device.state === 'active') return 'succeeded';
  if (device.state !== 'waiting' && FAILURE_STATES.has(device.state)) return 'failed';
  return 'pending';
}

export interface ProgressLine {
  device: DeviceDeployment;
  /** True when the state changed (as opposed to more bytes in the same state). */
  stateChanged: boolean;
}

export class DeploymentTracker {
  readonly devices = new Map<string, DeviceDeployment>();
  private changeListeners: ((line: ProgressLine) => void)[] = [];

  constructor(readonly deploymentId: string, readonly totalBytes: number, expected: readonly string[]) {
    for (const deviceId of expected) this.devices.set(deviceId, this.blank(deviceId));
  }

  private blank(deviceId: string): DeviceDeployment {
    return { deviceId, state: 'waiting', receivedBytes: 0, totalBytes: this.totalBytes, bytesPerSecond: 0 };
  }

  onChange(listener: (line: ProgressLine) => void): void {
    this.changeListeners.push(listener);
  }

  /** Applies one progress report (reports of other deployments are ignored); returns whether it was this deployment's. */
  apply(progress: DeploymentProgress, now = Date.now()): boolean {
    if (progress.deploymentId !== this.deploymentId) return false;
    let device = this.devices.get(progress.deviceId);
    if (!device) this.devices.set(progress.deviceId, device = this.blank(progress.deviceId));
    // A device that sees the same retained manifest again (after a reconnect) reports it as a duplicate:
    // that says nothing new about how this deployment went on it.
    if (progress.state === 'duplicate' && device.state !== 'waiting') return true;
    const state: DeploymentState = progress.state === 'duplicate' ? 'active' : progress.state;
    // Once an outcome is reached, retained re-deliveries of older states must not undo it.
    if (outcomeOf(device) !== 'pending' && outcomeOf({ ...device, state }) === 'pending') return true;
    const stateChanged = state !== device.state;
    device.firstReportAt ??= now;
    device.state = state;
    device.receivedBytes = progress.receivedBytes;
    device.totalBytes = progress.totalBytes || this.totalBytes;
    const seconds = (now - device.firstReportAt) / 1000;
    device.bytesPerSecond = seconds > 0 ? device.receivedBytes / seconds : 0;
    if (progress.code) device.code = progress.code;
    if (progress.reason) device.reason = progress.reason;
    if (outcomeOf(device) !== 'pending') device.finishedAt ??= now;
    for (const listener of this.changeListeners) listener({ device, stateChanged });
    return true;
  }

  get done(): boolean {
    return [...this.devices.values()].every((device) => outcomeOf(device) !== 'pending');
  }

  count(outcome: DeviceOutcome): number {
    return [...this.devices.values()].filter((device) => outcomeOf(device) === outcome).length;
  }

  /** True when every expected device has reported at least once (it holds the manifest). */
  get allReported(): boolean {
    return [...this.devices.values()].every((device) => device.state !== 'waiting');
  }
}

export function formatProgressLine(device: DeviceDeployment, label = ''): string {
  const percent = device.totalBytes > 0 ? Math.floor((100 * device.receivedBytes) / device.totalBytes) : 0;
  const rate = (device.bytesPerSecond / 1e6).toFixed(1);
  const failure = device.code || device.reason ? `  ${[device.code, device.reason].filter(Boolean).join(': ')}` : '';
  return `${label}${device.deviceId}  ${device.state}  ${percent}%  ${rate} MB/s${failure}\n`;
}

/**
 * Writes a line per device on every state change, and for byte progress at most once per `intervalMs` per
 * device, so fifty devices downloading at once do not flood the terminal.
 */
export function attachProgressPrinter(tracker: DeploymentTracker, stream: NodeJS.WritableStream, label = '', intervalMs = 1000): void {
  const lastPrinted = new Map<string, number>();
  tracker.onChange(({ device, stateChanged }) => {
    const now = Date.now();
    if (!stateChanged && now - (lastPrinted.get(device.deviceId) ?? 0) < intervalMs) return;
    lastPrinted.set(device.deviceId, now);
    stream.write(formatProgressLine(device, label));
  });
}
