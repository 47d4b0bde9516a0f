/**
 * One writer at a time for a store: an in-process queue plus a lock file created with O_EXCL for other
 * processes. A lock left by a dead process (kill -9, power loss) is stale and taken over: its holder's pid is
 * gone, or the pid now belongs to a different process (its start time in /proc differs).
 */
import fs from 'node:fs/promises';
import { EdgerunError } from '../errors.ts';
import { randomSuffix } from './durable-fs.ts';

export interface StoreLockOptions {
  /** How long to wait for another process's lock (default 30 s). */
  timeoutMs?: number;
  /** Poll interval while waiting (default 25 ms). */
  pollMs?: number;
}

async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); fields are counted after the parenthesised command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote `content` ("pid starttime nonce") still runs. */
async function holderAlive(content: string): Promise<boolean> {
  const [pidText, startTime] = content.split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (!isAlive(pid)) return false;
  if (startTime && startTime !== '-') {
    const current = await processStartTime(pid);
    if (current !== undefined && current !== startTime) return false;
  }
  return true;
}

export class StoreLock {
  private queue: Promise<unknown> = Promise.resolve();
  private ownStartTime: Promise<string | undefined> | undefined;

  constructor(private readonly lockPath: string, private readonly options: StoreLockOptions = {}) {}

  /** Runs `action` holding the lock (queued behind this process's other writers). */
  run<T>(what: string, action: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      const content = await this.acquire(what);
      try {
        return await action();
      } finally {
        await this.release(content);
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async acquire(what: string): Promise<string> {
    this.ownStartTime ??= processStartTime(process.pid);
    const content = `${process.pid} ${(await this.ownStartTime) ?? '-'} ${randomSuffix()}`;
    const deadline = Date.now() + (this.options.timeoutMs ?? 30_000);
    for (;;) {
      if (await this.tryCreate(content)) return content;
      const holder = await fs.readFile(this.lockPath, 'utf8').catch(() => undefined);
      if (holder === undefined) continue;
      if (!(await holderAlive(holder))) {
        await this.takeOver(holder);
        continue;
      }
      if (Date.now() > deadline) {
        throw new EdgerunError('EDGERUN_ERR_STORE',
          `cannot ${what}: the store is locked by process ${holder.split(' ')[0]} (${this.lockPath})`, { file: this.lockPath });
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollMs ?? 25));
    }
  }

  /**
   * Creates the lock file with its content in one step: written beside it, then hard-linked into place (link
   * fails if the lock exists), so no other process ever reads a lock file without its holder's pid.
   */
  private async tryCreate(content: string): Promise<boolean> {
    const temp = `${this.lockPath}.${process.pid}.${randomSuffix()}.tmp`;
    try {
      await fs.writeFile(temp, content, { flag: 'wx' });
      await fs.link(temp, this.lockPath);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new EdgerunError('EDGERUN_ERR_STORE', `${this.lockPath}: cannot create the store lock (${(error as Error).message})`,
        { file: this.lockPath }, { cause: error });
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  /** Removes a stale lock, unless another process replaced it meanwhile (then its lock is put back). */
  private async takeOver(stale: string): Promise<void> {
    const aside = `${this.lockPath}.stale-${randomSuffix()}`;
    try {
      await fs.rename(this.lockPath, aside);
    } catch {
      return;
    }
    const moved = await fs.readFile(aside, 'utf8').catch(() => stale);
    if (moved !== stale) await fs.link(aside, this.lockPath).catch(() => undefined);
    await fs.rm(aside, { force: true });
  }

  private async release(content: string): Promise<void> {
    const current = await fs.readFile(this.lockPath, 'utf8').catch(() => undefined);
    if (current === content) await fs.rm(this.lockPath, { force: true });
  }
}

/** Removes lock temp files of dead processes and stale locks set aside by an interrupted takeover. */
export async function removeLockLeftovers(lockPath: string): Promise<number> {
  const folder = lockPath.slice(0, lockPath.lastIndexOf('/'));
  const base = lockPath.slice(lockPath.lastIndexOf('/') + 1);
  let removed = 0;
  for (const name of await fs.readdir(folder)) {
    if (!name.startsWith(`${base}.`)) continue;
    const temp = /^\.(\d+)\.[0-9a-f]+\.tmp$/.exec(name.slice(base.length));
    const leftover = name.slice(base.length).startsWith('.stale-') || (temp !== null && !isAlive(Number(temp[1])));
    if (leftover) {
      await fs.rm(`${folder}/${name}`, { force: true });
      removed++;
    }
  }
  return removed;
}
