/** `edgerun rollout PKGDIR --broker URL --group NAME --key KEYFILE (--canary IDS | --percent N)`: a staged deployment. */
import { EdgerunError } from '../errors.ts';
import { checkFleetName, requireFlag } from '../fleet/publisher-options.ts';
import { openPackageSource } from '../fleet/publisher-package.ts';
import { DEFAULT_CHUNK_BYTES, DEFAULT_TOPIC_PREFIX } from '../fleet/protocol.ts';
import type { FailureLimit, StageOneSpec } from '../fleet/rollout-plan.ts';
import { formatRolloutSummary, rolloutJson } from '../fleet/rollout-summary.ts';
import { runRollout } from '../fleet/rollout.ts';
import { parseCommandArgs } from './args.ts';
import { BROKER_OPTIONS, connectFleetBroker, DEPLOY_OPTIONS, parseDeployFlags } from './fleet-options.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun rollout PKGDIR --broker URL --group NAME --key KEYFILE (--canary ID[,ID…] | --percent N) [options]

A staged deployment to the members of group NAME that are online now (retained status):
  stage 1  the canaries (--canary, each must be an online member) or a deterministic N % of the members
           (--percent; the same package picks the same devices), each on its own device deploy topic;
  stage 2  every other member, again on device topics, only when stage 1 stayed within the failure limit.
When a stage's failures (devices still without an outcome at --timeout count as failures) pass the limit,
the rollout stops: a signed 'abort' goes to the devices still downloading, a signed 'rollback' (to the version
each device reported before) to those that already switched, the retained manifests are cleared, and later
stages never receive anything. Devices that join the group later are not part of the rollout.

  --max-failures N         abort when a stage has more than N failures (default 0)
  --failure-threshold F    abort when a stage's failed fraction exceeds F (0..1), instead of --max-failures
  --timeout D              per stage (default 10m); durations: 500ms, 30s, 10m, 2h, 1d
  --expires D              devices may start a stage's deployment for D (default 24h)
  --chunk-bytes N          chunk size (default ${DEFAULT_CHUNK_BYTES})
  --window N               chunk publishes awaiting PUBACK at once (default 16, capped by the broker)
  --prefix P               topic prefix (default ${DEFAULT_TOPIC_PREFIX})
  --connect-timeout D      broker connection timeout (default 5s)
  --json                   print the outcome as JSON on stdout

Every manifest and command carries the rollout id. Exit code 0 only when every stage completed on every device.
`;

function usage(message: string): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun rollout: ${message}`, { command: 'rollout' });
}

function parseStageOne(canary: string | undefined, percent: string | undefined): StageOneSpec {
  if ((canary === undefined) === (percent === undefined)) throw usage('give exactly one of --canary ID[,ID…] and --percent N');
  if (canary !== undefined) {
    const deviceIds = canary.split(',').map((id) => checkFleetName('rollout', 'canary device id', id.trim()));
    return { kind: 'canary', deviceIds };
  }
  const value = Number(percent);
  if (!Number.isFinite(value) || value <= 0 || value > 100) throw usage(`--percent must be a number in (0, 100], got '${percent}'`);
  return { kind: 'percent', percent: value };
}

function parseFailureLimit(maxFailures: string | undefined, threshold: string | undefined): FailureLimit {
  if (maxFailures !== undefined && threshold !== undefined) throw usage('give at most one of --max-failures and --failure-threshold');
  if (threshold !== undefined) {
    const value = Number(threshold);
    if (!Number.isFinite(value) || value < 0 || value > 1) throw usage(`--failure-threshold must be a fraction in [0, 1], got '${threshold}'`);
    return { kind: 'fraction', max: value };
  }
  if (maxFailures === undefined) return { kind: 'count', max: 0 };
  const value = Number(maxFailures);
  if (!Number.isInteger(value) || value < 0) throw usage(`--max-failures must be a non-negative integer, got '${maxFailures}'`);
  return { kind: 'count', max: value };
}

export async function rolloutCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('rollout', args, {
    ...BROKER_OPTIONS,
    ...DEPLOY_OPTIONS,
    group: { type: 'string' },
    canary: { type: 'string' },
    percent: { type: 'string' },
    'max-failures': { type: 'string' },
    'failure-threshold': { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length !== 1) throw usage(`expected one package folder, got ${positionals.length}\n\n${HELP}`);
  const group = checkFleetName('rollout', 'group', requireFlag('rollout', 'group', values.group));
  const stageOne = parseStageOne(values.canary, values.percent);
  const failureLimit = parseFailureLimit(values['max-failures'], values['failure-threshold']);
  const flags = await parseDeployFlags('rollout', values);
  const source = await openPackageSource(positionals[0]!);
  try {
    const client = await connectFleetBroker('rollout', flags);
    try {
      const { prefix, key, timeoutMs, expiresInMs, chunkBytes, window } = flags;
      const result = await runRollout({
        client, prefix, key, source, group, stageOne, failureLimit, timeoutMs, expiresInMs, chunkBytes, window, progressStream: io.stderr,
      });
      io.stderr.write(formatRolloutSummary(result));
      if (values.json) io.stdout.write(`${JSON.stringify(rolloutJson(result), null, 2)}\n`);
      const everyDeviceActive = result.stages.every((stage) => stage.result.succeeded === stage.devices.length);
      return result.outcome === 'completed' && everyDeviceActive ? 0 : 1;
    } finally {
      await client.endAsync();
    }
  } finally {
    await source.close();
  }
}
