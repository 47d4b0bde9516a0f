/**
 * sd_notify(3) for a Node process. The protocol is one datagram per message on the AF_UNIX SOCK_DGRAM socket
 * named by $NOTIFY_SOCKET, and Node has no unix datagram sockets. Choices weighed:
 *  - npm `sd-notify` / `unix-dgram`: native addons compiled at install (node-gyp, libsystemd-dev); edge boxes
 *    often have no compiler, and a failed build fails the whole install.
 *  - `systemd-notify` per message: the message carries the sender's PID, and systemd can only attribute it to the
 *    unit while that short-lived process exists; systemd ≥ 246 makes systemd-notify wait for the manager (a
 *    barrier), which closes the race, but it is one fork+exec per message and needs NotifyAccess=all.
 *  - chosen: one long-lived python3 child (python3 ships on Debian/Ubuntu/Yocto images we target) that reads
 *    JSON lines on stdin and sends each as one datagram, answering `ok` or `err …` per line. It lives in the
 *    unit's cgroup for the daemon's whole life, so attribution never races (the unit needs NotifyAccess=all, as
 *    the sender is not the main PID); it ignores SIGTERM/SIGINT (systemd or a terminal signal the whole group:
 *    STOPPING=1 must still go out) and exits when its stdin closes, i.e. when the daemon exits, even by kill -9.
 *  - fallback when python3 cannot be spawned: systemd-notify per message.
 * Failure modes: with neither available, or a send failing, notify() resolves false and the failure is logged
 * once; under Type=notify systemd then fails the start after TimeoutStartSec — a loud failure, by design.
 * Abstract socket names (`@…`) are supported by both paths.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import readline from 'node:readline';
import type { Logger } from '../log.ts';

export type SdNotifyMethod = 'python3' | 'systemd-notify';

/** The datagram sender run by python3 (-I: ignore PYTHON* variables and user site; -S: no site, faster start). */
const PYTHON_SENDER = [
  'import json, os, signal, socket, sys',
  'signal.signal(signal.SIGINT, signal.SIG_IGN)',
  'signal.signal(signal.SIGTERM, signal.SIG_IGN)',
  "address = os.environ['NOTIFY_SOCKET']",
  "address = '\\0' + address[1:] if address.startswith('@') else address",
  'sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
  'sys.stdout.write("ready\\n"); sys.stdout.flush()',
  'for line in iter(sys.stdin.buffer.readline, b""):',
  '    try:',
  '        sock.sendto(json.loads(line).encode(), address)',
  '        reply = "ok"',
  '    except Exception as error:',
  '        reply = "err " + str(error).replace("\\n", " ")',
  '    sys.stdout.write(reply + "\\n"); sys.stdout.flush()',
].join('\n');

export interface SdNotifyOptions {
  log: Logger;
  /** Senders tried in order; the default prefers python3 and falls back to systemd-notify. */
  methods?: SdNotifyMethod[];
  /** The python3 executable; default /usr/bin/python3 when present (not a pyenv shim), else python3 on PATH. */
  python?: string;
}

/** Fields of one notification, e.g. { READY: 1, STATUS: 'serving 3 models' }. */
export type SdNotifyFields = Record<string, string | number>;

function encode(fields: SdNotifyFields): string {
  return Object.entries(fields).map(([key, value]) => `${key}=${String(value).replace(/\n/g, ' ')}`).join('\n');
}

export class SdNotify {
  readonly socket: string | undefined;
  readonly #log: Logger;
  readonly #methods: SdNotifyMethod[];
  readonly #python: string;
  #method: SdNotifyMethod | undefined;
  #child: ChildProcessWithoutNullStreams | undefined;
  #childReady: Promise<boolean> | undefined;
  readonly #waiting: ((reply: string) => void)[] = [];
  #queue: Promise<unknown> = Promise.resolve();
  #warned = false;
  #closed = false;
  /** Notifications sent and failed, for the startup log and tests. */
  sent = 0;
  failed = 0;

  /** $NOTIFY_SOCKET unset (not under systemd, or Type≠notify): every call is a no-op that resolves false. */
  constructor(env: NodeJS.ProcessEnv, options: SdNotifyOptions) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    this.#log = options.log;
    this.#methods = options.methods ?? ['python3', 'systemd-notify'];
    this.#python = options.python ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  }

  get enabled(): boolean { return this.socket !== undefined; }

  /** The sender in use once one worked. */
  get method(): SdNotifyMethod | undefined { return this.#method; }

  ready(status?: string): Promise<boolean> { return this.notify({ READY: 1, ...(status ? { STATUS: status } : {}) }); }
  stopping(status?: string): Promise<boolean> { return this.notify({ STOPPING: 1, ...(status ? { STATUS: status } : {}) }); }
  status(text: string): Promise<boolean> { return this.notify({ STATUS: text }); }
  watchdog(): Promise<boolean> { return this.notify({ WATCHDOG: 1 }); }

  /** Sends one notification; messages go out in call order. Never rejects. */
  notify(fields: SdNotifyFields): Promise<boolean> {
    if (!this.socket || this.#closed) return Promise.resolve(false);
    const message = encode(fields);
    const result = this.#queue.then(() => this.#send(message));
    this.#queue = result;
    return result;
  }

  /** Stops the sender child (after the queued notifications went out). */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    this.#child?.stdin.end();
    this.#child = undefined;
  }

  async #send(message: string): Promise<boolean> {
    for (const method of this.#method ? [this.#method] : this.#methods) {
      const outcome = method === 'python3' ? await this.#sendPython(message) : await this.#sendSystemdNotify(message);
      if (outcome === 'unavailable') continue;
      this.#method = method;
      if (outcome === true) { this.sent++; return true; }
      this.failed++;
      this.#warn(`sd_notify through ${method} failed: ${outcome}`);
      return false;
    }
    this.failed++;
    this.#warn(`sd_notify: no sender works (tried ${this.#methods.join(', ')}); systemd will not see READY/WATCHDOG`);
    return false;
  }

  #warn(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    this.#log.error({ socket: this.socket }, message);
  }

  #startPython(): Promise<boolean> {
    const child = spawn(this.#python, ['-I', '-S', '-u', '-c', PYTHON_SENDER], {
      env: { NOTIFY_SOCKET: this.socket, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child = child;
    // The sender never keeps the daemon alive; it exits when our end of its stdin closes.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) stream.unref?.();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    const lines = readline.createInterface({ input: child.stdout });
    let resolveReady: (ok: boolean) => void = () => undefined;
    const ready = new Promise<boolean>((resolve) => { resolveReady = resolve; });
    lines.on('line', (line) => {
      if (line === 'ready') resolveReady(true);
      else this.#waiting.shift()?.(line);
    });
    const gone = (why: string): void => {
      resolveReady(false);
      if (this.#child === child) { this.#child = undefined; this.#childReady = undefined; }
      for (const waiter of this.#waiting.splice(0)) waiter(`err the python3 sender ended: ${why}`);
    };
    child.on('error', (error) => gone(error.message));
    child.on('exit', (code, signal) => gone(`exit ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`));
    child.stdin.on('error', () => undefined);
    return ready;
  }

  async #sendPython(message: string): Promise<true | string | 'unavailable'> {
    // While the sender starts or a reply is awaited its stdout holds the process open, so a last STOPPING=1
    // is not cut short; otherwise the sender never keeps the daemon alive.
    this.#childReady ??= this.#startPython();
    const stdout = this.#child?.stdout as unknown as { ref(): void; unref(): void } | undefined;
    stdout?.ref();
    try {
      return await this.#exchange(message);
    } finally {
      stdout?.unref();
    }
  }

  async #exchange(message: string): Promise<true | string | 'unavailable'> {
    if (!(await this.#childReady)) {
      // Once python3 worked, a dead sender is a failure to report, not a reason to switch senders silently.
      return this.#method === 'python3' ? 'the python3 sender is not running' : 'unavailable';
    }
    const child = this.#child;
    if (!child) return 'the python3 sender is not running';
    const reply = new Promise<string>((resolve) => this.#waiting.push(resolve));
    child.stdin.write(`${JSON.stringify(message)}\n`);
    const line = await reply;
    return line === 'ok' ? true : line.replace(/^err /, '');
  }

  #sendSystemdNotify(message: string): Promise<true | string | 'unavailable'> {
    return new Promise((resolve) => {
      const child = spawn('systemd-notify', message.split('\n'), { env: { ...process.env, NOTIFY_SOCKET: this.socket }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      child.on('error', (error) => resolve((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'unavailable' : error.message));
      child.on('exit', (code) => resolve(code === 0 ? true : `systemd-notify exited ${code}: ${stderr.trim()}`));
    });
  }
}
