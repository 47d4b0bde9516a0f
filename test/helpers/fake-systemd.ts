/**
 * A stand-in for systemd's notification socket: a real AF_UNIX SOCK_DGRAM socket (bound by a python3 child,
 * since Node has none) that records every datagram with the sender's PID (SCM_CREDENTIALS) and closes any file
 * descriptors passed with it (systemd-notify's barrier waits for that).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

const SERVER = `
import array, json, os, socket, struct, sys
name = sys.argv[1]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind('\\0' + name[1:] if name.startswith('@') else name)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({'listening': True}), flush=True)
while True:
    data, ancillary, flags, address = sock.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', payload)[0]
    print(json.dumps({'message': data.decode(), 'pid': pid}), flush=True)
`;

export interface Notification {
  /** The datagram, e.g. "READY=1\nSTATUS=serving". */
  message: string;
  fields: Record<string, string>;
  pid: number | null;
  at: number;
}

export class FakeSystemd {
  readonly messages: Notification[] = [];
  readonly #child: ChildProcess;
  readonly #waiters: (() => void)[] = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  /** Binds `socketPath` (a file path, or `@name` for the abstract namespace) and resolves once it listens. */
  static async start(socketPath: string): Promise<FakeSystemd> {
    const child = spawn('python3', ['-u', '-c', SERVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const server = new FakeSystemd(child);
    const lines = readline.createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`fake systemd exited ${code}`)));
      lines.on('line', (line) => {
        const parsed = JSON.parse(line) as { listening?: boolean; message?: string; pid?: number | null };
        if (parsed.listening) { resolve(); return; }
        const message = parsed.message ?? '';
        const fields = Object.fromEntries(message.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
        server.messages.push({ message, fields, pid: parsed.pid ?? null, at: performance.now() });
        for (const waiter of server.#waiters.splice(0)) waiter();
      });
    });
    return server;
  }

  /** Resolves with the first notification (from the first unseen on, if `from` is given) that has `field`. */
  async waitFor(field: string, timeoutMs = 10_000, from = 0): Promise<Notification> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find((m) => field in m.fields);
      if (found) return found;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${field}= notification within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => m.message))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  count(field: string): number {
    return this.messages.filter((m) => field in m.fields).length;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill();
    await exited;
  }
}
