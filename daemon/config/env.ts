/**
 * Environment overrides: EDGERUN_<SECTION>_<KEY> for every leaf key of the schema (EDGERUN_SERVER_PORT,
 * EDGERUN_SWAP_PROBATION_WINDOW_MS, EDGERUN_LOG_LEVEL, …). Values are typed by the key's schema; a value that does not
 * parse is passed on as the raw string so schema validation names the key and what it must be. A variable
 * that starts like a section (EDGERUN_SERVER_…) but names no key is an unknown key; other EDGERUN_ variables
 * (EDGERUN_CONFIG, EDGERUN_DUMP_WGSL) are not configuration keys and are left alone.
 */
import { EdgerunError } from '../errors.ts';
import { configKeys, configSections, envVarName, typesOf, type ConfigKey } from './keys.ts';
import { closest } from './validate.ts';

/** The variable that names the configuration file when --config is not given. */
export const CONFIG_FILE_ENV = 'EDGERUN_CONFIG';

function parseValue(text: string, key: ConfigKey): unknown {
  const types = typesOf(key.schema);
  const trimmed = text.trim();
  if (types.includes('null') && (trimmed === '' || trimmed === 'null')) return null;
  if (types.includes('integer') || types.includes('number')) {
    return trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : text;
  }
  if (types.includes('boolean')) {
    if (/^(true|1|yes|on)$/i.test(trimmed)) return true;
    if (/^(false|0|no|off)$/i.test(trimmed)) return false;
    return text;
  }
  if (types.includes('array')) {
    if (trimmed.startsWith('[')) {
      try {
        return JSON.parse(trimmed) as unknown;
      } catch (error) {
        throw new EdgerunError('EDGERUN_ERR_CONFIG', `invalid configuration from environment: ${key.path} (${key.env}): not a JSON array: ${(error as Error).message}`, { source: 'env', key: key.path, variable: key.env });
      }
    }
    return trimmed.split(',').map((item) => item.trim()).filter((item) => item !== '');
  }
  return text;
}

function setPath(target: Record<string, unknown>, segments: readonly string[], value: unknown): void {
  let node = target;
  for (const segment of segments.slice(0, -1)) {
    node[segment] ??= {};
    node = node[segment] as Record<string, unknown>;
  }
  node[segments[segments.length - 1]] = value;
}

export interface EnvLayer {
  layer: Record<string, unknown>;
  /** Dotted key path → variable name, for messages. */
  spelledAs: Map<string, string>;
  /** Problems found before schema validation: variables that look like keys but name none. */
  problems: string[];
}

export function envLayer(env: NodeJS.ProcessEnv): EnvLayer {
  const byName = new Map(configKeys().map((key) => [key.env, key]));
  const sectionPrefixes = configSections().map((section) => `${envVarName([section])}_`);
  const layer: Record<string, unknown> = {};
  const spelledAs = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || !name.startsWith('EDGERUN_')) continue;
    const key = byName.get(name);
    if (key) {
      setPath(layer, key.segments, parseValue(value, key));
      spelledAs.set(key.path, name);
    } else if (sectionPrefixes.some((prefix) => name.startsWith(prefix))) {
      const guess = closest(name, [...byName.keys()]);
      problems.push(`${name}: unknown variable, no such configuration key${guess ? ` (did you mean ${guess}?)` : ''}; docs/OPERATIONS.md lists them`);
    }
  }
  return { layer, spelledAs, problems: problems.sort() };
}
