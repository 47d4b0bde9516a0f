/**
 * What the operator-command tests (publish, rollout, fleet CLI) set up the same way: a temp folder and a real
 * broker, both gone at teardown, and for deployments an operator key pair, the devices' trust list and a small
 * package whose weights file is big enough to need several chunks.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { generateKeyPair, readPublicKey, type TrustedKey } from '../../../daemon/fleet/signing.ts';
import { startBroker, type TestBroker } from '../../helpers/mqtt-broker.ts';
import { ModelBuilder } from '../../helpers/onnx-builder.ts';
import { writePackage, type WrittenPackage } from '../../helpers/package-builder.ts';

export interface BrokerFixture {
  dir: string;
  broker: TestBroker;
}

export interface OperatorFixture extends BrokerFixture {
  /** Path prefix of the operator's key pair: `${keyPrefix}.key` signs, `${keyPrefix}.pub` is what devices trust. */
  keyPrefix: string;
  trusted: TrustedKey[];
  /** ONNX bytes of the package's model (y = relu(x), x float32[1, 4]). */
  model: Uint8Array;
  /** Package relu 2.0 with the model and `weights.bin`. */
  pkg: WrittenPackage;
  /** Broker, key, 16 KiB chunks, a 20 s timeout and JSON output: the flags every deployment in these tests passes. */
  common: string[];
}

export async function brokerFixture(t: Test, tempPrefix: string): Promise<BrokerFixture> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), tempPrefix));
  const broker = await startBroker();
  t.teardown(async () => {
    await broker.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return { dir, broker };
}

export async function operatorFixture(t: Test, tempPrefix: string, weights: Uint8Array): Promise<OperatorFixture> {
  const { dir, broker } = await brokerFixture(t, tempPrefix);
  const keyPrefix = path.join(dir, 'operator');
  await generateKeyPair(keyPrefix);
  const trusted = [await readPublicKey(`${keyPrefix}.pub`)];
  const model = new ModelBuilder({ opset: 17 }).input('x', 'float32', [1, 4]).node('Relu', ['x'], ['y']).output('y', 'float32', [1, 4]).toBytes();
  const pkg = await writePackage(path.join(dir, 'pkg'), { name: 'relu', version: '2.0', model, extraFiles: { 'weights.bin': weights } });
  const common = ['--broker', broker.url, '--key', `${keyPrefix}.key`, '--chunk-bytes', '16384', '--timeout', '20s', '--json'];
  return { dir, broker, keyPrefix, trusted, model, pkg, common };
}
