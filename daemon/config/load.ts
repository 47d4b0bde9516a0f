/**
 * loadConfig: embedded defaults ← file (YAML or JSON) ← environment (EDGERUN_<SECTION>_<KEY>) ← command-line
 * flags; each layer is validated on its own so an error names where the bad value came from, then the merged
 * result is validated and its directories resolved. Relative paths in a file are relative to the file's folder;
 * from the environment or flags, to the working directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { EdgerunError } from '../errors.ts';
import { FLEET_NAME_PATTERN } from '../fleet/protocol.ts';
import { CONFIG_FILE_ENV, envLayer } from './env.ts';
import { defaultConfig } from './files.ts';
import { configKeys } from './keys.ts';
import type { ConfigFlags, ConfigSource, DaemonConfig, ResolvedConfig } from './types.ts';
import { validateLayer } from './validate.ts';

/** A fleet.trust entry holding the key itself rather than naming a file. */
export function isPemText(entry: string): boolean {
  return entry.includes('-----BEGIN ');
}

export interface LoadConfigOptions {
  /** Configuration file (.yaml, .yml or .json); without it, $EDGERUN_CONFIG names one, else there is none. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  flags?: ConfigFlags;
  /** Folder that relative paths from the environment and flags (and ./models) are resolved against. */
  cwd?: string;
}

export interface LoadedConfig {
  config: ResolvedConfig;
  /** The configuration file read, absolute, or null. */
  file: string | null;
  /** Dotted key path → the layer that set it last (every leaf key is listed). */
  origins: Record<string, ConfigSource>;
}

type Tree = Record<string, unknown>;

const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);

function mergeInto(target: Tree, layer: Tree): void {
  for (const [key, value] of Object.entries(layer)) {
    if (isTree(value) && isTree(target[key])) mergeInto(target[key] as Tree, value);
    else target[key] = value;
  }
}

function readFileLayer(file: string): Tree {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new EdgerunError('EDGERUN_ERR_CONFIG', `configuration file ${file}: ${reason}`, { source: 'file', file }, { cause: error });
  }
  let parsed: unknown;
  try {
    // YAML 1.2 is a superset of JSON, but JSON.parse gives JSON files JSON's own error messages.
    parsed = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text, { prettyErrors: true });
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_CONFIG', `configuration file ${file}: cannot parse: ${(error as Error).message}`, { source: 'file', file }, { cause: error });
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isTree(parsed)) {
    throw new EdgerunError('EDGERUN_ERR_CONFIG', `configuration file ${file}: the top level must be a mapping of sections (server:, models:, …)`, { source: 'file', file });
  }
  return parsed;
}

const FLAG_KEYS: Record<keyof ConfigFlags, { path: string[]; flag: string }> = {
  port: { path: ['server', 'port'], flag: '--port' },
  stateDir: { path: ['state', 'dir'], flag: '--state-dir' },
  modelsDir: { path: ['models', 'dir'], flag: '--models' },
  broker: { path: ['fleet', 'broker'], flag: '--broker' },
  deviceId: { path: ['fleet', 'deviceId'], flag: '--device-id' },
  trust: { path: ['fleet', 'trust'], flag: '--trust' },
  groups: { path: ['fleet', 'groups'], flag: '--group' },
};

function flagLayer(flags: ConfigFlags): { layer: Tree; spelledAs: Map<string, string> } {
  const layer: Tree = {};
  const spelledAs = new Map<string, string>();
  for (const [name, raw] of Object.entries(flags) as [keyof ConfigFlags, string | number | string[] | undefined][]) {
    if (raw === undefined) continue;
    const spec = FLAG_KEYS[name];
    if (!spec) throw new EdgerunError('EDGERUN_ERR_CONFIG', `invalid configuration from command-line flags: unknown flag '${name}'`, { source: 'flag', flag: name });
    const value = name === 'port' && typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
    const [section, key] = spec.path;
    ((layer[section] ??= {}) as Tree)[key] = value;
    spelledAs.set(spec.path.join('.'), spec.flag);
  }
  return { layer, spelledAs };
}

function leafOrigins(layer: Tree, source: ConfigSource, origins: Record<string, ConfigSource>): void {
  for (const key of configKeys()) {
    let node: unknown = layer;
    for (const segment of key.segments) node = isTree(node) ? node[segment] : undefined;
    if (node !== undefined) origins[key.path] = source;
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function defaultStateDir(env: NodeJS.ProcessEnv): string {
  // systemd's StateDirectory= sets $STATE_DIRECTORY (a colon-separated list when several are named).
  const fromSystemd = env.STATE_DIRECTORY?.split(':')[0];
  if (fromSystemd) return fromSystemd;
  if (env.XDG_STATE_HOME) return path.join(env.XDG_STATE_HOME, 'edgerun');
  return path.join(os.homedir(), '.local', 'state', 'edgerun');
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const merged = defaultConfig() as unknown as Tree;
  const origins: Record<string, ConfigSource> = {};
  leafOrigins(merged, 'default', origins);

  const fileOption = options.file ?? env[CONFIG_FILE_ENV];
  const file = fileOption ? path.resolve(cwd, expandHome(fileOption)) : null;
  if (file) {
    const layer = readFileLayer(file);
    validateLayer(layer, { source: 'file', where: `file ${file}`, file });
    mergeInto(merged, layer);
    leafOrigins(layer, 'file', origins);
  }
  const fromEnv = envLayer(env);
  validateLayer(fromEnv.layer, { source: 'env', where: 'environment', spelledAs: fromEnv.spelledAs }, fromEnv.problems);
  mergeInto(merged, fromEnv.layer);
  leafOrigins(fromEnv.layer, 'env', origins);

  const fromFlags = flagLayer(options.flags ?? {});
  validateLayer(fromFlags.layer, { source: 'flag', where: 'command-line flags', spelledAs: fromFlags.spelledAs });
  mergeInto(merged, fromFlags.layer);
  leafOrigins(fromFlags.layer, 'flag', origins);

  validateLayer(merged, { source: 'default', where: 'the merged configuration' });
  const config = merged as unknown as DaemonConfig;

  const resolvePath = (key: string, value: string): string => {
    const base = origins[key] === 'file' && file ? path.dirname(file) : cwd;
    return path.resolve(base, expandHome(value));
  };
  const stateDir = config.state.dir !== null ? resolvePath('state.dir', config.state.dir) : path.resolve(cwd, defaultStateDir(env));
  const localModels = path.join(cwd, 'models');
  const modelsDir = config.models.dir !== null
    ? resolvePath('models.dir', config.models.dir)
    : fs.statSync(localModels, { throwIfNoEntry: false })?.isDirectory() ? localModels : path.join(stateDir, 'models');
  const dbFile = config.telemetry.dbFile !== null ? resolvePath('telemetry.dbFile', config.telemetry.dbFile) : path.join(stateDir, 'telemetry.db');
  const resolved: ResolvedConfig = {
    ...config,
    state: { dir: stateDir },
    models: { dir: modelsDir },
    telemetry: { ...config.telemetry, dbFile },
    power: { ...config.power, sysfsRoot: resolvePath('power.sysfsRoot', config.power.sysfsRoot) },
    fleet: {
      ...config.fleet,
      deviceId: config.fleet.deviceId ?? os.hostname(),
      trust: config.fleet.trust.map((entry) => (isPemText(entry) ? entry : resolvePath('fleet.trust', entry))),
    },
  };
  if (config.fleet.broker !== null && !FLEET_NAME_PATTERN.test(resolved.fleet.deviceId)) {
    throw new EdgerunError('EDGERUN_ERR_CONFIG',
      `invalid configuration: fleet.deviceId is not set and the host name '${resolved.fleet.deviceId}' is not a valid device id (${FLEET_NAME_PATTERN.source}); set fleet.deviceId or --device-id`,
      { source: 'default', key: 'fleet.deviceId' });
  }
  return { config: resolved, file, origins };
}
