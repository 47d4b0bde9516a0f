/**
 * How much of a transfer is sent again when it is interrupted half-way.
 *   node --import tsx bench/fleet-resume.ts [--mb 10] [--chunk-bytes 131072] [--window 16] [--repeat 3] [--json]
 *
 * One real fleet agent (persistent MQTT session, persisted chunk bitmap) in a process of its own
 * (bench/fleet-device-child.ts) receives a package from `edgerun publish` (another process). When half of the package has reached the device, one of:
 *   broker-restart       Mosquitto stopped with SIGTERM (it saves its state) and started again 1 s later
 *   broker-kill          Mosquitto killed with SIGKILL (state since its last 1-second autosave is lost), restarted 1 s later
 *   device-kill          the device's process (a fleet agent of its own) killed with SIGKILL, started again on the same
 *                        state folder 1 s later (it resumes from its persisted bitmap; its MQTT session kept the chunks)
 * The sender paces itself on the device's acknowledgements (docs/PROTOCOL.md, "Pacing"), so a broker killed without
 * saving loses at most the sender's lead (2 chunks for the default 10 MB in 128 KiB chunks).
 * Re-sent bytes: chunk data the sender wrote to its socket beyond one copy of the package (chunks asked for again
 * and mqtt.js's retransmissions after a reconnect). Also shown: chunk data delivered to the device beyond one
 * copy (the broker's redeliveries of its persisted queue, duplicates).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openPackageSource } from '../daemon/fleet/publisher-package.ts';
import { mb, runEdgerun, startBenchFleet, writeBenchPackage } from './fleet-common.ts';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '10' },
    'chunk-bytes': { type: 'string', default: '131072' },
    window: { type: 'string', default: '16' },
    repeat: { type: 'string', default: '3' },
    scenarios: { type: 'string', default: 'broker-restart,broker-kill,device-kill' },
    json: { type: 'boolean', default: false },
  },
});
type Scenario = 'broker-restart' | 'broker-kill' | 'device-kill';
const DOWN_MS = 1000;

const CHILD = fileURLToPath(new URL('./fleet-device-child.ts', import.meta.url));

interface DeviceChild {
  child: ChildProcess;
  /** Chunk bytes the device reported delivered (the last line it printed). */
  delivered: number;
  connected: Promise<void>;
  exited: Promise<void>;
}

function startDeviceChild(brokerUrl: string, deviceId: string, stateDir: string, trustFile: string, onDelivered: (bytes: number) => void): DeviceChild {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, brokerUrl, deviceId, stateDir, trustFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let connect!: () => void;
  const device: DeviceChild = {
    child, delivered: 0,
    connected: new Promise<void>((resolve) => { connect = resolve; }),
    exited: new Promise<void>((resolve) => child.once('exit', () => resolve())),
  };
  let partial = '';
  child.stdout!.on('data', (data: Buffer) => {
    const lines = (partial + data.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line === 'connected') connect();
      else if (/^\d+$/.test(line)) {
        device.delivered = Number(line);
        onDelivered(device.delivered);
      }
    }
  });
  return device;
}

const fleet = await startBenchFleet('resume');
const results: Record<string, unknown>[] = [];
try {
  const pkg = await writeBenchPackage(fleet.dir, '1', Math.round(Number(values.mb) * 1e6));
  const source = await openPackageSource(pkg);
  const totalBytes = source.totalBytes;
  await source.close();
  let run = 0;
  for (const scenario of values.scenarios.split(',') as Scenario[]) {
    for (let repeat = 0; repeat < Number(values.repeat); repeat++) {
      run++;
      const deviceId = `resume-${run}`;
      const stateDir = path.join(fleet.dir, deviceId);
      let interruptedAt = -1;
      let interruption: Promise<void> | null = null;
      const devices: DeviceChild[] = [];
      const interrupt = (delivered: number): void => {
        if (interruption || delivered < totalBytes / 2) return;
        interruptedAt = delivered;
        interruption = (async () => {
          if (scenario === 'device-kill') {
            devices[0]!.child.kill('SIGKILL');
            await devices[0]!.exited;
            await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
            devices.push(startDeviceChild(fleet.broker.url, deviceId, stateDir, fleet.pubFile, () => undefined));
          } else {
            await fleet.broker.restart({ hard: scenario === 'broker-kill', downMs: DOWN_MS });
          }
        })();
      };
      devices.push(startDeviceChild(fleet.broker.url, deviceId, stateDir, fleet.pubFile, interrupt));
      await devices[0]!.connected;
      const cli = await runEdgerun(['publish', pkg, '--broker', fleet.broker.url, '--to', deviceId, '--key', fleet.keyFile,
        '--chunk-bytes', values['chunk-bytes'], '--window', values.window, '--timeout', '5m', '--json']);
      await interruption;
      for (const device of devices) device.child.kill('SIGTERM');
      await Promise.all(devices.map((d) => d.exited));
      if (cli.code !== 0) throw new Error(`${scenario}: publish failed (${cli.code}):\n${cli.stderr}`);
      const outcome = JSON.parse(cli.stdout) as { totalBytes: number; resentBytes: number; wireBytes: number; elapsedMs: number };
      const delivered = devices.reduce((sum, d) => sum + d.delivered, 0);
      const duplicateBytes = Math.max(0, delivered - outcome.totalBytes);
      const resentBytes = Math.max(0, outcome.wireBytes - outcome.totalBytes);
      const point = {
        scenario, totalBytes: outcome.totalBytes, interruptedAtBytes: interruptedAt, senderWireBytes: outcome.wireBytes,
        senderRequestedResendBytes: outcome.resentBytes, resentFraction: resentBytes / outcome.totalBytes,
        deviceDeliveredBytes: delivered, deviceDuplicateBytes: duplicateBytes, elapsedMs: outcome.elapsedMs,
      };
      results.push(point);
      if (!values.json) {
        process.stdout.write(`${scenario.padEnd(15)} interrupted at ${mb(interruptedAt)} of ${mb(outcome.totalBytes)} MB: sender re-sent ${mb(resentBytes)} MB ` +
          `= ${(100 * point.resentFraction).toFixed(2)} % (${mb(outcome.resentBytes)} MB of it on request); device got ${mb(duplicateBytes)} MB twice; ` +
          `publish took ${(outcome.elapsedMs / 1000).toFixed(1)} s\n`);
      }
    }
  }
  if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  await fleet.close();
}
