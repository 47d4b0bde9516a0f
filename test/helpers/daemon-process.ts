/**
 * Runs `edgerun daemon` as a real child process (from TypeScript source through tsx) with a stand-in systemd
 * notification socket: READY=1 tells when it serves, and its STATUS line the address it listens on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { FakeSystemd } from './fake-systemd.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const MAIN = path.join(root, 'daemon', 'cli', 'main.ts');
/** tsx's loader by absolute URL: the child runs in a temporary folder where `--import tsx` would not resolve. */
const TSX = import.meta.resolve('tsx');

export interface DaemonProcessOptions {
  /** `edgerun daemon` arguments (--port 0 picks a free port; ready() finds it). */
  args: string[];
  /** Extra environment (EDGERUN_* overrides, WATCHDOG_USEC …); NOTIFY_SOCKET points at the fake systemd. */
  env?: NodeJS.ProcessEnv;
  /** Working folder of the child; the notification socket is created here too. */
  dir: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

let count = 0;

export class DaemonProcess {
  /** The child's log lines (pino JSON on stderr; Dawn's warnings too). */
  readonly log: string[] = [];
  readonly exited: Promise<ExitInfo>;
  port = 0;

  private constructor(readonly child: ChildProcess, readonly systemd: FakeSystemd) {
    // 'close', not 'exit': the last log lines are read by then.
    this.exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    let buffered = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      this.log.push(...lines);
    });
    child.stdout!.resume();
    void this.exited.then(() => systemd.close());
  }

  static async start(options: DaemonProcessOptions): Promise<DaemonProcess> {
    const socket = path.join(options.dir, `notify-${process.pid}-${count++}.sock`);
    const systemd = await FakeSystemd.start(socket);
    const code = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
    const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', code, 'daemon', ...options.args], {
      cwd: options.dir,
      env: { ...process.env, EDGERUN_LOG_LEVEL: 'info', XDG_RUNTIME_DIR: options.dir, ...options.env, NOTIFY_SOCKET: socket },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new DaemonProcess(child, systemd);
  }

  get pid(): number { return this.child.pid!; }

  get url(): string { return `http://127.0.0.1:${this.port}`; }

  /** Waits for READY=1 (or the child's exit, which fails with its log) and reads the port from STATUS. */
  async ready(timeoutMs = 30_000): Promise<this> {
    const exitedEarly = this.exited.then((info) => {
      throw new Error(`the daemon exited (${info.code ?? info.signal}) before READY=1:\n${this.log.slice(-20).join('\n')}`);
    });
    const ready = await Promise.race([this.systemd.waitFor('READY', timeoutMs), exitedEarly]);
    const port = /http:\/\/[^\s]+:(\d+)/.exec(ready.fields.STATUS ?? '');
    if (!port) throw new Error(`READY=1 without an address in STATUS: ${ready.message}`);
    this.port = Number(port[1]);
    return this;
  }

  /** Parsed pino lines whose msg matches. */
  logged(pattern: RegExp): Record<string, unknown>[] {
    return this.log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => pattern.test(String(l.msg)));
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
