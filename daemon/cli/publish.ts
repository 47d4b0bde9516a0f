/** `edgerun publish PKGDIR --broker URL --to DEVICE|group:NAME --key KEYFILE`: one signed, chunked deployment over MQTT. */
import { EdgerunError } from '../errors.ts';
import { parseDeployTarget } from '../fleet/publisher-options.ts';
import { openPackageSource } from '../fleet/publisher-package.ts';
import { deploymentJson, formatDeploymentSummary } from '../fleet/publisher-summary.ts';
import { publishPackage } from '../fleet/publisher.ts';
import { DEFAULT_CHUNK_BYTES, DEFAULT_TOPIC_PREFIX } from '../fleet/protocol.ts';
import { parseCommandArgs } from './args.ts';
import { BROKER_OPTIONS, connectFleetBroker, DEPLOY_OPTIONS, parseDeployFlags } from './fleet-options.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun publish PKGDIR --broker URL --to DEVICE|group:NAME --key KEYFILE [options]

Verifies the package (every hash), signs a deployment manifest with KEYFILE (from 'edgerun keys generate'),
publishes it retained on the target's deploy topic and sends the package in chunks (QoS 1), serving devices'
requests for missing chunks until every targeted device reports 'active' or fails, or --timeout passes.

  --to DEVICE         one device: its own deploy topic
  --to group:NAME     every member of group NAME: the group's deploy topic; the command waits for the members
                      online now (retained status). Members that come online later receive the retained
                      manifest and fetch chunks while this command runs.
When the command ends it deletes the retained manifest: devices can fetch chunks only while it serves them
(a device that was interrupted resumes from its own saved state as long as the command runs).
  --broker URL        mqtt://HOST[:PORT] (also mqtts, ws, wss)
  --key KEYFILE       ed25519 private key (PEM)
  --timeout D         give up waiting after D (default 10m); durations: 500ms, 30s, 10m, 2h, 1d
  --expires D         devices may start the deployment for D (default 24h)
  --chunk-bytes N     chunk size (default ${DEFAULT_CHUNK_BYTES}); stay below the broker's message size limit
  --window N          chunk publishes awaiting PUBACK at once (default 16, capped by the broker)
  --prefix P          topic prefix (default ${DEFAULT_TOPIC_PREFIX})
  --connect-timeout D broker connection timeout (default 5s)
  --json              print the outcome as JSON on stdout

Progress lines per device (state, %, MB/s) go to stderr. Exit code 0 only when every device is active.
`;

export async function publishCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('publish', args, {
    ...BROKER_OPTIONS,
    ...DEPLOY_OPTIONS,
    to: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun publish: expected one package folder, got ${positionals.length}\n\n${HELP}`, { command: 'publish' });
  }
  const target = parseDeployTarget('publish', values.to);
  const flags = await parseDeployFlags('publish', values);
  const source = await openPackageSource(positionals[0]!);
  try {
    const client = await connectFleetBroker('publish', flags);
    try {
      const { prefix, key, timeoutMs, expiresInMs, chunkBytes, window } = flags;
      const result = await publishPackage({
        client, prefix, key, source, target, timeoutMs, expiresInMs, chunkBytes, window, progressStream: io.stderr,
      });
      io.stderr.write(formatDeploymentSummary(result));
      if (values.json) io.stdout.write(`${JSON.stringify(deploymentJson(result), null, 2)}\n`);
      return result.succeeded === result.devices.length ? 0 : 1;
    } finally {
      await client.endAsync();
    }
  } finally {
    await source.close();
  }
}
