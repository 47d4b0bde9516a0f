/**
 * A staged rollout of a ~10 MB package to 50 devices: 2 canaries, then the other 48.
 *   node --import tsx bench/fleet-rollout.ts [--devices 50] [--canaries 2] [--mb 10] [--chunk-bytes 131072] [--window 16] [--json]
 *
 * The devices are real fleet agents (separate MQTT clients with persistent sessions, each with its own state
 * folder, transfer receiver and file-hash verification; install recorded instead of swapped) in this process;
 * `edgerun rollout` runs in a child process. Reported: each stage's wall time and bytes the sender published,
 * the whole command's wall time, and the chunk bytes delivered to the devices (duplicates included).
 */
import { parseArgs } from 'node:util';
import { startAgentFleet } from '../test/fleet/helpers/in-process-agents.ts';
import { mb, runEdgerun, startBenchFleet, writeBenchPackage } from './fleet-common.ts';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '50' },
    canaries: { type: 'string', default: '2' },
    mb: { type: 'string', default: '10' },
    'chunk-bytes': { type: 'string', default: '131072' },
    window: { type: 'string', default: '16' },
    json: { type: 'boolean', default: false },
  },
});
const count = Number(values.devices);
const fleet = await startBenchFleet('rollout');
try {
  const pkg = await writeBenchPackage(fleet.dir, '1', Math.round(Number(values.mb) * 1e6));
  const devicesStarted = performance.now();
  const devices = await startAgentFleet({
    brokerUrl: fleet.broker.url, root: fleet.dir, count, idPrefix: 'dev', groups: ['bench'], trustFiles: [fleet.pubFile],
  });
  const startupMs = performance.now() - devicesStarted;
  const canaries = devices.slice(0, Number(values.canaries)).map((d) => d.deviceId);
  let progressLines = 0;
  const cli = await runEdgerun(['rollout', pkg, '--broker', fleet.broker.url, '--group', 'bench', '--key', fleet.keyFile,
    '--canary', canaries.join(','), '--chunk-bytes', values['chunk-bytes'], '--window', values.window, '--timeout', '10m', '--json'],
  (line) => { if (/^\[stage \d\] dev-/.test(line)) progressLines++; });
  await Promise.all(devices.map((d) => d.stop()));
  if (!cli.stdout.trim()) throw new Error(`rollout printed nothing (${cli.code}):\n${cli.stderr}`);
  const outcome = JSON.parse(cli.stdout) as {
    outcome: string; stages: { name: string; targets: string[]; succeeded: number; elapsedMs: number; sentBytes: number; resentBytes: number; totalBytes: number }[];
  };
  const active = devices.filter((d) => d.recorder.deployed.length === 1).length;
  const delivered = devices.reduce((sum, d) => sum + d.deliveredBytes, 0);
  const totalBytes = outcome.stages[0]!.totalBytes;
  const report = {
    devices: count, totalBytes, outcome: outcome.outcome, exitCode: cli.code, active, wallMs: Math.round(cli.ms), deviceStartupMs: Math.round(startupMs),
    stages: outcome.stages.map((s) => ({ name: s.name, devices: s.targets.length, succeeded: s.succeeded, elapsedMs: s.elapsedMs, sentBytes: s.sentBytes, resentBytes: s.resentBytes })),
    deliveredBytes: delivered, deliveredPerDevice: delivered / count / totalBytes, progressLines,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(`${count} devices, package ${mb(totalBytes)} MB: rollout ${outcome.outcome} (exit ${cli.code}), ${active}/${count} active, ` +
      `${(cli.ms / 1000).toFixed(1)} s for the whole command (${progressLines} live progress lines)\n`);
    for (const s of report.stages) {
      process.stdout.write(`  ${s.name}: ${s.succeeded}/${s.devices} active in ${(s.elapsedMs / 1000).toFixed(1)} s; sender published ${mb(s.sentBytes)} MB (${mb(s.resentBytes)} MB on request)\n`);
    }
    process.stdout.write(`  delivered to devices: ${mb(delivered)} MB = ${report.deliveredPerDevice.toFixed(3)} × package per device\n`);
  }
} finally {
  await fleet.close();
}
