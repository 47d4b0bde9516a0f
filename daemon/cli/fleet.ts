/** `edgerun fleet status --broker URL`: devices, groups, model versions and deployment states from the retained topics. */
import { EdgerunError } from '../errors.ts';
import { readFleet, renderFleet, summarizeFleet } from '../fleet/fleet-view.ts';
import { parseDuration } from '../fleet/publisher-options.ts';
import { DEFAULT_TOPIC_PREFIX } from '../fleet/protocol.ts';
import { parseCommandArgs } from './args.ts';
import { BROKER_OPTIONS, connectFleetBroker, parseBrokerFlags } from './fleet-options.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun fleet status --broker URL [--wait 2s] [--prefix P] [--json]

Reads every device's retained status and latest deployment progress and prints one line per device (online,
groups, target, model versions and states, the latest deployment's state), then groups and model versions.

  --wait D             collect retained messages for at most D (default 2s; it ends 300 ms after the last one)
  --prefix P           topic prefix (default ${DEFAULT_TOPIC_PREFIX})
  --connect-timeout D  broker connection timeout (default 5s)
  --json               print {devices, groups, models, problems} as JSON
`;

export async function fleetCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('fleet', args, {
    ...BROKER_OPTIONS,
    wait: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'status') {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun fleet: expected 'status', got '${positionals.join(' ')}'\n\n${HELP}`, { command: 'fleet' });
  }
  const flags = parseBrokerFlags('fleet', values);
  const waitMs = parseDuration('fleet', 'wait', values.wait, 2_000);
  const client = await connectFleetBroker('fleet', flags);
  try {
    const summary = summarizeFleet(await readFleet(client, flags.prefix, { waitMs }));
    io.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : renderFleet(summary));
    return 0;
  } finally {
    await client.endAsync();
  }
}
