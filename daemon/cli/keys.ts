/** `edgerun keys generate --out PREFIX`: an ed25519 key pair for signing fleet deployments. */
import { EdgerunError } from '../errors.ts';
import { generateKeyPair } from '../fleet/signing.ts';
import { parseCommandArgs } from './args.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun keys generate --out PREFIX

Writes PREFIX.key (PKCS#8 PEM private key, mode 0600) and PREFIX.pub (SPKI PEM public key) and prints the
key id. Existing files are never overwritten. Give PREFIX.key to 'edgerun publish/rollout --key' and
PREFIX.pub to each daemon ('--trust PREFIX.pub').
`;

export async function keysCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('keys', args, {
    out: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'generate') {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun keys: expected 'generate', got '${positionals.join(' ')}'\n\n${HELP}`, { command: 'keys' });
  }
  if (!values.out) throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', 'edgerun keys generate: --out PREFIX is required', { command: 'keys' });
  const { keyFile, pubFile, keyId } = await generateKeyPair(values.out);
  io.stdout.write(`wrote ${keyFile} (private, 0600) and ${pubFile}; key id ${keyId}\n`);
  return 0;
}
