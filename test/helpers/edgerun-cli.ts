/** Runs the edgerun command line in-process, as a user would from a shell, and captures what it writes. */
import { PassThrough } from 'node:stream';
import { main } from '../../daemon/cli/main.ts';

export interface EdgerunResult {
  code: number;
  out: string;
  err: string;
}

export async function edgerun(...args: string[]): Promise<EdgerunResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk) => { out += String(chunk); });
  stderr.on('data', (chunk) => { err += String(chunk); });
  const code = await main(args, { stdout, stderr });
  return { code, out, err };
}
