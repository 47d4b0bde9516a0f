/**
 * WGSL fragments kept as files under the package's shaders/ folder (math helpers, …), read once per process.
 * Found by walking up from this module to the folder that holds package.json and shaders/, so the same code
 * works from source (daemon/kernels) and compiled (dist/daemon/kernels).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

function shadersRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'shaders'))) {
      root = path.join(dir, 'shaders');
      return root;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`edgerun: the shaders/ folder was not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

const cache = new Map<string, Record<string, string>>();

/** Every `<name>.wgsl` in shaders/<folder>, by name. */
export function shaderFragments(folder: string): Record<string, string> {
  let fragments = cache.get(folder);
  if (!fragments) {
    const dir = path.join(shadersRoot(), folder);
    fragments = {};
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.wgsl')).sort()) {
      fragments[file.slice(0, -'.wgsl'.length)] = fs.readFileSync(path.join(dir, file), 'utf8').trimEnd();
    }
    cache.set(folder, fragments);
  }
  return fragments;
}
