/** Placeholder replaced by the helper that owns this command. */
export async function fleetCommand(_args: string[], io: { stderr: NodeJS.WritableStream }): Promise<number> {
  io.stderr.write('not built yet\n');
  return 1;
}
