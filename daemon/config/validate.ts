/**
 * Schema validation of one configuration layer (file, environment, flags, or the merged result) with ajv, and
 * error messages that name the key path, where it came from, and what is wrong:
 *   invalid configuration from file /etc/edgerun/config.yaml: server.port: must be <= 65535
 *   invalid configuration from environment: server.port (EDGERUN_SERVER_PORT): must be integer
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { EdgerunError } from '../errors.ts';
import { configSchema } from './files.ts';
import type { ConfigSource } from './types.ts';

let validator: ValidateFunction | undefined;

function compiled(): ValidateFunction {
  validator ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true }).compile(configSchema());
  return validator;
}

/** Describes a layer for messages, and how each of its keys was spelled there (env var, flag). */
export interface LayerLabel {
  source: ConfigSource;
  /** e.g. `file /etc/edgerun/config.yaml`, `environment`, `command-line flags`. */
  where: string;
  file?: string;
  /** Dotted key path → how the user wrote it (`EDGERUN_SERVER_PORT`, `--port`). */
  spelledAs?: Map<string, string>;
}

function pointerToPath(pointer: string): string {
  return pointer.split('/').slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** The candidate nearest to a misspelt name, when one is near enough to suggest. */
export function closest(name: string, candidates: string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length];
  };
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(name, candidate);
    if (d < bestDistance) { best = candidate; bestDistance = d; }
  }
  return best;
}

function describe(error: ErrorObject, label: LayerLabel): { key: string; problem: string } {
  let key = pointerToPath(error.instancePath);
  let problem = error.message ?? 'is invalid';
  if (error.keyword === 'additionalProperty' || error.keyword === 'additionalProperties') {
    const unknown = (error.params as { additionalProperty: string }).additionalProperty;
    key = key ? `${key}.${unknown}` : unknown;
    const known = Object.keys((error.parentSchema as { properties?: Record<string, unknown> }).properties ?? {});
    const guess = closest(unknown, known);
    problem = `unknown key${guess ? ` (did you mean '${guess}'?)` : ''}; known keys here: ${known.join(', ')}`;
  } else if (error.keyword === 'enum') {
    problem = `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  } else if (error.keyword === 'pattern' && key === 'fleet.broker') {
    problem = 'must be a broker URL such as mqtt://host:1883 (schemes mqtt, mqtts, ws, wss)';
  }
  const spelled = label.spelledAs?.get(key.replace(/\[\d+\]/g, ''));
  return { key: `${key || '(top level)'}${spelled ? ` (${spelled})` : ''}`, problem };
}

/**
 * Throws EDGERUN_ERR_CONFIG listing every problem of `layer` (after `earlier` problems the caller found, such as
 * unknown environment variables), or returns when there is none.
 */
export function validateLayer(layer: unknown, label: LayerLabel, earlier: string[] = []): void {
  const validate = compiled();
  if (validate(layer) && earlier.length === 0) return;
  // With allErrors, a union type (string | null) reports one error per branch plus the union; keep one per key.
  const seen = new Set<string>();
  const problems: string[] = [...earlier];
  for (const error of validate.errors ?? []) {
    const { key, problem } = describe(error, label);
    const line = `${key}: ${problem}`;
    if (!seen.has(line)) { seen.add(line); problems.push(line); }
  }
  throw new EdgerunError('EDGERUN_ERR_CONFIG', `invalid configuration from ${label.where}: ${problems.join('; ')}`, {
    source: label.source,
    ...(label.file ? { file: label.file } : {}),
    problems,
  });
}
