/**
 * A throwaway PostgreSQL server for tests: initdb + pg_ctl (Debian's /usr/lib/postgresql/<major>/bin) in a temp
 * folder, on a free port of 127.0.0.1, trust authentication. PostgreSQL refuses to run as root, so under root the
 * binaries run as the `postgres` user (created by Debian's postgresql package) via runuser.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/mqtt-broker.ts';

const run = promisify(execFile);

export interface TestPostgres {
  readonly url: string;
  stop(): Promise<void>;
}

/** The bin folder of the newest installed PostgreSQL, or null when there is none. */
export function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return null;
  const majors = fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  const found = majors.map((v) => path.join(root, v, 'bin')).find((dir) => fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl')));
  return found ?? null;
}

export async function startPostgres(binDir: string): Promise<TestPostgres> {
  const asRoot = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-pg-'));
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const uid = Number(stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    fs.chownSync(dir, uid, gid);
  }
  const exec = (tool: string, args: string[]) => (asRoot
    ? run('runuser', ['-u', 'postgres', '--', path.join(binDir, tool), ...args], { cwd: dir })
    : run(path.join(binDir, tool), args, { cwd: dir }));
  const data = path.join(dir, 'data');
  const port = await freePort();
  await exec('initdb', ['-D', data, '-U', 'edgerun', '--auth=trust', '--no-sync', '-E', 'UTF8']);
  const options = `-p ${port} -k ${dir} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  await exec('pg_ctl', ['-D', data, '-o', options, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', 'start']);
  return {
    url: `postgres://edgerun@127.0.0.1:${port}/postgres`,
    async stop() {
      await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
