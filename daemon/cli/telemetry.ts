/**
 * `edgerun telemetry [--db FILE | --state-dir DIR | --config FILE] [--model M] [--since 1h] [--json]`: latency
 * percentiles, throughput, errors, power, energy per inference and accuracy per model version, read from the
 * daemon's telemetry database (read-only: safe while the daemon runs).
 */
import { loadConfig } from '../config/load.ts';
import { EdgerunError } from '../errors.ts';
import { openTelemetryDb } from '../telemetry/schema.ts';
import { MODEL_NAME_FILTER, parseSince } from '../telemetry/since.ts';
import { TelemetryStore } from '../telemetry/store.ts';
import type { TelemetrySummary, VersionSummary } from '../telemetry/summary-types.ts';
import { parseCommandArgs } from './args.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun telemetry [--db FILE | --state-dir DIR | --config FILE] [--model M] [--since 1h] [--json]

Prints, per model version: latency p50/p95/p99, throughput, errors, energy per inference and accuracy (the last
accuracy gate and the shadow agreement with the previous version), and the power sources' readings.

  --db FILE        the telemetry database (default: the daemon's, from its configuration)
  --state-dir DIR  the daemon's state directory (its telemetry.db)
  --config FILE    the daemon's configuration file (to find its database)
  --model M        only this model
  --since WINDOW   how far back: 30m, 1h (default), 7d, 2w, or an ISO time such as 2025-01-31T12:00Z
  --json           the summary as JSON (the same document as GET /v2/telemetry/summary)
`;

export async function telemetryCommand(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs('telemetry', args, {
    db: { type: 'string' },
    'state-dir': { type: 'string' },
    config: { type: 'string' },
    model: { type: 'string' },
    since: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) usage(`unexpected argument '${positionals[0]}'`);
  if (values.db !== undefined && (values['state-dir'] !== undefined || values.config !== undefined)) usage('--db names the database: give it alone, without --state-dir or --config');
  if (values.model !== undefined && !MODEL_NAME_FILTER.test(values.model)) usage(`--model: '${values.model}' is not a model name (letters, digits, '.', '_', '-')`);
  const now = Date.now();
  const since = parseSince(values.since ?? '1h', now, 'EDGERUN_ERR_CLI_USAGE', 'edgerun telemetry: --since');
  const file = values.db ?? loadConfig({ file: values.config, flags: { stateDir: values['state-dir'] } }).config.telemetry.dbFile;

  const db = openTelemetryDb(file, { readonly: true });
  let summary: TelemetrySummary;
  try {
    summary = new TelemetryStore(db).summary({ since, until: now, model: values.model });
  } finally {
    db.close();
  }
  io.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary, file));
  return 0;
}

function usage(message: string): never {
  throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun telemetry: ${message}`, { command: 'telemetry' });
}

export function formatSummary(s: TelemetrySummary, file: string): string {
  const lines: string[] = [];
  const windowText = `${new Date(s.since).toISOString()} .. ${new Date(s.until).toISOString()}`;
  lines.push(`telemetry ${file}`, `window ${windowText}${s.model ? `, model ${s.model}` : ''}`, '');
  if (s.versions.length === 0) {
    lines.push(s.model ? `no requests or accuracy records for model ${s.model} in this window` : 'no requests or accuracy records in this window', '');
  } else {
    lines.push(...table(
      ['model', 'version', 'engine', 'requests', 'req/s', 'errors', 'p50 ms', 'p95 ms', 'p99 ms', 'J/inference', 'gate', 'shadow'],
      s.versions.map(versionRow),
    ), '');
    for (const v of s.versions) {
      if (v.errorCodes.length > 0) lines.push(`errors ${v.model}@${v.version}: ${v.errorCodes.map((e) => `${e.code} ×${e.count}`).join(', ')}`);
    }
  }
  lines.push('power:');
  if (!s.power.available) lines.push(`  unavailable: ${s.power.reason ?? 'no readings'}`);
  for (const p of s.power.sources) {
    lines.push(p.available
      ? `  ${p.source}: mean ${num(p.meanWatts, 2)} W, ${num(p.energyJ, 1)} J over ${p.samples - p.unavailableSamples} readings${p.unavailableSamples ? `, ${p.unavailableSamples} unavailable (${p.reason})` : ''}`
      : `  ${p.source}: unavailable: ${p.reason ?? 'no readings'}`);
  }
  if (s.events.length > 0) {
    lines.push('', 'recent events:');
    for (const e of s.events.slice(0, 10)) {
      const what = [e.model && `${e.model}${e.version ? `@${e.version}` : ''}`, e.details && JSON.stringify(e.details)].filter(Boolean).join(' ');
      lines.push(`  ${new Date(e.at).toISOString()} ${e.kind}${what ? ` ${what}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function versionRow(v: VersionSummary): string[] {
  const gate = v.accuracy.gate ? `${pct(v.accuracy.gate.agreement)} (${v.accuracy.gate.samples})` : '-';
  const shadow = v.accuracy.shadow ? `${pct(v.accuracy.shadow.agreement)} (${v.accuracy.shadow.samples} vs ${v.accuracy.shadow.baselineVersion ?? '?'})` : '-';
  const energy = v.energy?.perInferenceJ != null ? num(v.energy.perInferenceJ, 4) : 'unavailable';
  return [
    v.model, v.version, v.engine || '-', String(v.requests), num(v.throughputPerS, 2),
    v.requests ? `${v.errors} (${pct(v.errorRate ?? 0)})` : '0',
    num(v.latencyMs.p50, 2), num(v.latencyMs.p95, 2), num(v.latencyMs.p99, 2), energy, gate, shadow,
  ];
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

function num(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined ? '-' : value.toFixed(digits);
}

function pct(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}
