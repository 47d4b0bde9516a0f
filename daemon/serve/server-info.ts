/** The server's name and version for GET /v2: edgerun's package.json, found from source or from dist/. */
import fs from 'node:fs';

export function edgerunServerInfo(): { name: string; version: string } {
  let dir = new URL('.', import.meta.url);
  for (let depth = 0; depth < 6; depth++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'edgerun' && typeof pkg.version === 'string') return { name: 'edgerun', version: pkg.version };
    } catch {
      // No package.json at this level: keep walking up.
    }
    dir = new URL('..', dir);
  }
  return { name: 'edgerun', version: 'unknown' };
}
