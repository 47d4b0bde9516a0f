/**
 * The configuration's leaf keys, read from the schema: their dotted paths, their environment variable names
 * (EDGERUN_<SECTION>_<KEY>, camelCase turned into SCREAMING_SNAKE) and their schema, so env parsing, origins and
 * the docs all derive from one list.
 */
import { configSchema, type SchemaNode } from './files.ts';

export interface ConfigKey {
  /** Dotted path, e.g. `server.port`. */
  path: string;
  segments: string[];
  env: string;
  schema: SchemaNode;
}

const snake = (name: string): string => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

export function envVarName(segments: readonly string[]): string {
  return `EDGERUN_${segments.map(snake).join('_')}`;
}

const isSection = (node: SchemaNode): boolean => node.type === 'object' && node.properties !== undefined;

let keys: ConfigKey[] | undefined;

export function configKeys(): ConfigKey[] {
  if (keys) return keys;
  const found: ConfigKey[] = [];
  const walk = (node: SchemaNode, segments: string[]): void => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const at = [...segments, name];
      if (isSection(child)) walk(child, at);
      else found.push({ path: at.join('.'), segments: at, env: envVarName(at), schema: child });
    }
  };
  walk(configSchema(), []);
  keys = found;
  return keys;
}

/** The top-level section names (server, limits, …). */
export function configSections(): string[] {
  return Object.keys(configSchema().properties ?? {});
}

export function typesOf(schema: SchemaNode): string[] {
  if (schema.type === undefined) return schema.enum ? [...new Set(schema.enum.map((v) => (v === null ? 'null' : typeof v)))] : [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}
