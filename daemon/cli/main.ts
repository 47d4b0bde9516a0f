/** The `edgerun` command: dispatches to one file per subcommand. */
import { EdgerunError, isEdgerunError } from '../errors.ts';

export interface CliIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

type Command = (args: string[], io: CliIO) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  run: { summary: 'run a model on .npy (or random) inputs and print outputs and timings', load: async () => (await import('./run.ts')).runCommand },
  bench: { summary: 'benchmark a model: edgerun WebGPU vs onnxruntime-web WebGPU vs onnxruntime-node CPU', load: async () => (await import('./bench.ts')).benchCommand },
  devices: { summary: 'list WebGPU adapters with their features and limits', load: async () => (await import('./devices.ts')).devicesCommand },
  telemetry: { summary: 'latency, throughput, power, energy per inference and accuracy per model version', load: async () => (await import('./telemetry.ts')).telemetryCommand },
  compress: { summary: 'compress a model (FP16, INT8, INT4, mixed) into a package with an eval set and a report', load: async () => (await import('./compress.ts')).compressCommand },
  daemon: { summary: 'serve models over HTTP (Open Inference Protocol) with hot-swap, telemetry and systemd integration', load: async () => (await import('./daemon.ts')).daemonCommand },
  keys: { summary: 'generate an ed25519 signing key pair for fleet deployments', load: async () => (await import('./keys.ts')).keysCommand },
  publish: { summary: 'publish a model package to a device or group over MQTT (signed, chunked)', load: async () => (await import('./publish.ts')).publishCommand },
  rollout: { summary: 'staged rollout of a package to a group: canaries or a percentage first, abort and roll back on failures', load: async () => (await import('./rollout.ts')).rolloutCommand },
  fleet: { summary: 'fleet status: devices, model versions and deployment states', load: async () => (await import('./fleet.ts')).fleetCommand },
  monitor: { summary: 'collect fleet status and telemetry from MQTT into SQLite or PostgreSQL and serve a dashboard', load: async () => (await import('./monitor.ts')).monitorCommand },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: edgerun <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'edgerun <command> --help' for a command's options.\n`;
}

export async function main(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`edgerun: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await command.load())(rest, io);
  } catch (error) {
    if (isEdgerunError(error)) {
      io.stderr.write(`edgerun ${name}: ${error.code}: ${error.message}\n`);
      return error.code === 'EDGERUN_ERR_CLI_USAGE' ? 2 : 1;
    }
    io.stderr.write(`edgerun ${name}: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

export { EdgerunError };
