/**
 * config/default.json and config/schema.json, found by walking up from this module to the folder that holds
 * package.json and config/, so the same code works from source (daemon/config) and compiled (dist/daemon/config).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DaemonConfig } from './types.ts';

let root: string | undefined;

/** The package's top-level config/ folder. */
export function configFolder(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'config', 'schema.json'))) {
      root = path.join(dir, 'config');
      return root;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`edgerun: the config/ folder was not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** A JSON Schema node, as far as the config code walks it. */
export interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  enum?: unknown[];
  description?: string;
  [keyword: string]: unknown;
}

let schema: SchemaNode | undefined;
let defaults: string | undefined;

export function configSchema(): SchemaNode {
  schema ??= JSON.parse(fs.readFileSync(path.join(configFolder(), 'schema.json'), 'utf8')) as SchemaNode;
  return schema;
}

/** A fresh copy of the embedded defaults (callers may mutate it). */
export function defaultConfig(): DaemonConfig {
  defaults ??= fs.readFileSync(path.join(configFolder(), 'default.json'), 'utf8');
  return JSON.parse(defaults) as DaemonConfig;
}
