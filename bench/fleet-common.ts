/**
 * What the fleet benchmarks share: a Mosquitto of their own (test/helpers/mqtt-broker.ts), a signing key, a
 * ~10 MB package (a tiny valid model plus a listed file of random bytes), and the operator commands run as a
 * child process (the real CLI through tsx) so publisher and devices do not share an event loop.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPair } from '../daemon/fleet/signing.ts';
import { startBroker, type TestBroker } from '../test/helpers/mqtt-broker.ts';
import { ModelBuilder } from '../test/helpers/onnx-builder.ts';
import { writePackage } from '../test/helpers/package-builder.ts';

const MAIN = fileURLToPath(new URL('../daemon/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

export interface BenchFleet {
  dir: string;
  broker: TestBroker;
  keyFile: string;
  pubFile: string;
  close(): Promise<void>;
}

export async function startBenchFleet(label: string): Promise<BenchFleet> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `edgerun-bench-${label}-`));
  const broker = await startBroker({ log: () => undefined });
  const { keyFile, pubFile } = await generateKeyPair(path.join(dir, 'operator'));
  return {
    dir, broker, keyFile, pubFile,
    close: async () => {
      await broker.close();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** A valid package of about `bytes` bytes: a one-node model and `pad.bin` (random, listed and hashed). */
export async function writeBenchPackage(dir: string, version: string, bytes: number): Promise<string> {
  const model = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 4]).node('Relu', ['x'], ['y']).output('y', 'float32', [1, 4]).toBytes();
  const packageDir = path.join(dir, `bench-${version}`);
  await writePackage(packageDir, { name: 'bench', version, model, extraFiles: { 'pad.bin': crypto.randomBytes(bytes) } });
  return packageDir;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `edgerun ARGS` in a child process; `onStderr` sees progress lines as they come. */
export async function runEdgerun(args: string[], onStderr?: (line: string) => void): Promise<CliRun> {
  const code = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', code, ...args], {
    env: { ...process.env, EDGERUN_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) onStderr?.(line);
  });
  const exit = await new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
  return { code: exit, stdout, stderr, ms: performance.now() - started };
}

export function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
