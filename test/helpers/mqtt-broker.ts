/**
 * A real MQTT broker for tests: its own Mosquitto (/usr/sbin/mosquitto) on a free port of 127.0.0.1 with a
 * generated config in a temp folder, persistence on (retained messages and QoS 1 sessions survive restart()),
 * or, where Mosquitto is absent, an in-process Aedes broker. Aedes speaks MQTT 3.1.1 only, so clients read
 * `protocolVersion` from here instead of assuming 5.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export interface BrokerOptions {
  /** Largest PUBLISH payload the broker accepts (Mosquitto `message_size_limit`); 0 = no limit. */
  messageSizeLimit?: number;
  /** Largest MQTT packet (Mosquitto `max_packet_size`); 0 = Mosquitto's default. */
  maxPacketSize?: number;
  /** Force the in-process Aedes broker even where Mosquitto exists (default: EDGERUN_TEST_BROKER=aedes). */
  forceAedes?: boolean;
  /** Log sink for which broker started and where; defaults to stderr. */
  log?: (line: string) => void;
}

export interface TestBroker {
  readonly kind: 'mosquitto' | 'aedes';
  readonly url: string;
  readonly port: number;
  /** 5 for Mosquitto, 4 (MQTT 3.1.1) for Aedes. */
  readonly protocolVersion: 4 | 5;
  /** Stops the broker; `hard` kills Mosquitto with SIGKILL (state since the last autosave is lost). */
  stop(options?: { hard?: boolean }): Promise<void>;
  /** Stops then starts again on the same port with the same persisted state. */
  restart(options?: { hard?: boolean; downMs?: number }): Promise<void>;
  /** Stops for good and removes the temp folder. */
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number, died: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reason = died();
    if (reason) throw new Error(reason);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`the broker did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

class MosquittoBroker implements TestBroker {
  readonly kind = 'mosquitto' as const;
  readonly protocolVersion = 5 as const;
  private child: ChildProcess | null = null;
  private output: string[] = [];

  constructor(readonly port: number, private readonly dir: string, private readonly configFile: string) {}

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }

  async start(): Promise<void> {
    this.output = [];
    const child = spawn(MOSQUITTO, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let exit: string | null = null;
    child.once('exit', (code, signal) => { exit = `mosquitto exited (${code ?? signal}):\n${this.output.join('')}`; });
    child.stdout!.on('data', (data: Buffer) => this.output.push(data.toString()));
    child.stderr!.on('data', (data: Buffer) => this.output.push(data.toString()));
    this.child = child;
    await waitForPort(this.port, 10_000, () => exit);
  }

  async stop(options: { hard?: boolean } = {}): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.child = null;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // SIGTERM makes Mosquitto write its persistence file before it exits.
    child.kill(options.hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  async restart(options: { hard?: boolean; downMs?: number } = {}): Promise<void> {
    await this.stop(options);
    if (options.downMs) await new Promise((resolve) => setTimeout(resolve, options.downMs));
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

class AedesBroker implements TestBroker {
  readonly kind = 'aedes' as const;
  readonly protocolVersion = 4 as const;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  // The Aedes instance (and its in-memory persistence) outlives restarts, like Mosquitto's persistence file.
  constructor(readonly port: number, private readonly aedes: { handle: (socket: net.Socket) => void; close: (cb?: () => void) => void }) {}

  get url(): string { return `mqtt://127.0.0.1:${this.port}`; }

  async start(): Promise<void> {
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      this.aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }

  async restart(options: { downMs?: number } = {}): Promise<void> {
    await this.stop();
    if (options.downMs) await new Promise((resolve) => setTimeout(resolve, options.downMs));
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}

function mosquittoConfig(port: number, dir: string, options: BrokerOptions): string {
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'persistence true',
    `persistence_location ${dir}/`,
    'autosave_interval 1',
    // Offline QoS 1 sessions of devices must keep every chunk a sender published while they were away.
    'max_queued_messages 0',
    'max_queued_bytes 0',
    `log_dest file ${path.join(dir, 'mosquitto.log')}`,
    // Mosquitto started as root drops to the `mosquitto` user unless told to stay who it is.
    `user ${os.userInfo().username}`,
  ];
  if (options.messageSizeLimit) lines.push(`message_size_limit ${options.messageSizeLimit}`);
  if (options.maxPacketSize) lines.push(`max_packet_size ${options.maxPacketSize}`);
  return `${lines.join('\n')}\n`;
}

export async function startBroker(options: BrokerOptions = {}): Promise<TestBroker> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const port = await freePort();
  const forceAedes = options.forceAedes ?? process.env.EDGERUN_TEST_BROKER === 'aedes';
  if (!forceAedes && existsSync(MOSQUITTO)) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgerun-mosquitto-'));
    const configFile = path.join(dir, 'mosquitto.conf');
    await fs.writeFile(configFile, mosquittoConfig(port, dir, options));
    const broker = new MosquittoBroker(port, dir, configFile);
    await broker.start();
    log(`# test broker: mosquitto on ${broker.url} (state in ${dir})`);
    return broker;
  }
  const { Aedes } = await import('aedes');
  const aedes = new Aedes();
  await aedes.listen();
  const broker = new AedesBroker(port, aedes as unknown as ConstructorParameters<typeof AedesBroker>[1]);
  await broker.start();
  log(`# test broker: in-process aedes on ${broker.url} (${forceAedes ? 'forced' : `${MOSQUITTO} is absent`}; MQTT 3.1.1)`);
  return broker;
}
