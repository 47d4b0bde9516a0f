/**
 * ed25519 signing of fleet messages (node:crypto). Key files are PEM: `PREFIX.key` PKCS#8 private key (mode 0600),
 * `PREFIX.pub` SPKI public key. A key's id is the first 16 hex digits of sha256 over its SPKI DER bytes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { EdgerunError } from '../errors.ts';
import type { SignedEnvelope } from './protocol.ts';

export interface TrustedKey {
  keyId: string;
  key: crypto.KeyObject;
  /** Where it came from (file path or 'config'), for messages. */
  source: string;
}

export function keyIdOf(publicKey: crypto.KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(der).digest('hex').slice(0, 16);
}

function assertEd25519(key: crypto.KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new EdgerunError('EDGERUN_ERR_KEY', `${file}: not an ed25519 key (found ${key.asymmetricKeyType ?? 'unknown'})`, { file });
  }
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_KEY', `${file}: cannot read key file: ${(error as Error).message}`, { file }, { cause: error });
  }
}

export function parsePublicKey(pem: string, source: string): TrustedKey {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(pem);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_KEY', `${source}: not a PEM public key: ${(error as Error).message}`, { file: source }, { cause: error });
  }
  assertEd25519(key, source);
  return { keyId: keyIdOf(key), key, source };
}

export async function readPublicKey(file: string): Promise<TrustedKey> {
  return parsePublicKey(await readKeyFile(file), file);
}

export interface SigningKey {
  keyId: string;
  privateKey: crypto.KeyObject;
  publicKey: crypto.KeyObject;
}

export async function readSigningKey(file: string): Promise<SigningKey> {
  const pem = await readKeyFile(file);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(pem);
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_KEY', `${file}: not a PEM private key: ${(error as Error).message}`, { file }, { cause: error });
  }
  assertEd25519(privateKey, file);
  const publicKey = crypto.createPublicKey(privateKey);
  return { keyId: keyIdOf(publicKey), privateKey, publicKey };
}

/** Writes PREFIX.key (0600) and PREFIX.pub, each to a temp name first; refuses to overwrite existing files. */
export async function generateKeyPair(prefix: string): Promise<{ keyFile: string; pubFile: string; keyId: string }> {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const keyFile = `${prefix}.key`;
  const pubFile = `${prefix}.pub`;
  for (const file of [keyFile, pubFile]) {
    const exists = await fs.stat(file).then(() => true, () => false);
    if (exists) throw new EdgerunError('EDGERUN_ERR_KEY', `${file} already exists: refusing to overwrite a key`, { file });
  }
  const writeAtomic = async (file: string, text: string, mode: number): Promise<void> => {
    const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    try {
      const handle = await fs.open(temp, 'wx', mode);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(temp, file);
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw new EdgerunError('EDGERUN_ERR_IO', `cannot write ${file}: ${(error as Error).message}`, { file }, { cause: error });
    }
  };
  await writeAtomic(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  await writeAtomic(pubFile, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  return { keyFile, pubFile, keyId: keyIdOf(publicKey) };
}

export function signPayload(payload: object, key: SigningKey): SignedEnvelope {
  const text = JSON.stringify(payload);
  const signature = crypto.sign(null, Buffer.from(text, 'utf8'), key.privateKey).toString('base64');
  return { alg: 'ed25519', keyId: key.keyId, payload: text, signature };
}

/**
 * Verifies an envelope against the trusted keys and returns the parsed payload (still unvalidated JSON:
 * the caller validates its shape). Throws EDGERUN_ERR_FLEET_SIGNATURE naming `what` (usually the topic).
 */
export function verifyEnvelope(envelope: SignedEnvelope, trusted: readonly TrustedKey[], what: string): unknown {
  const key = trusted.find((candidate) => candidate.keyId === envelope.keyId);
  if (!key) {
    throw new EdgerunError('EDGERUN_ERR_FLEET_SIGNATURE', `${what}: signed by key ${envelope.keyId}, which this device does not trust`,
      { what, keyId: envelope.keyId });
  }
  const signature = Buffer.from(envelope.signature, 'base64');
  if (signature.length !== 64 || !crypto.verify(null, Buffer.from(envelope.payload, 'utf8'), key.key, signature)) {
    throw new EdgerunError('EDGERUN_ERR_FLEET_SIGNATURE', `${what}: the signature does not verify with key ${envelope.keyId}`,
      { what, keyId: envelope.keyId });
  }
  try {
    return JSON.parse(envelope.payload) as unknown;
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_FLEET_PAYLOAD', `${what}: the signed payload is not JSON`, { what }, { cause: error });
  }
}
