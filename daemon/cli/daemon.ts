/**
 * `edgerun daemon [--config FILE] [--port N] [--state-dir DIR] [--models DIR] [--broker URL --device-id ID
 * --trust PUBFILE --group NAME]`: loads the
 * configuration, starts the daemon's components in order, tells systemd READY=1, and on SIGTERM/SIGINT drains
 * and exits 0 within the configured grace (non-zero when forced). Runs until it is stopped.
 */
import { loadConfig } from '../config/load.ts';
import { createDaemon } from '../daemon.ts';
import { isEdgerunError } from '../errors.ts';
import { SdNotify } from '../lifecycle/sd-notify.ts';
import { handleShutdownSignals } from '../lifecycle/shutdown.ts';
import { symbols as pinoSymbols } from 'pino';
import { logger } from '../log.ts';
import { parseCommandArgs } from './args.ts';
import type { CliIO } from './main.ts';

const HELP = `usage: edgerun daemon [--config FILE] [--port N] [--state-dir DIR] [--models DIR]
                      [--broker URL [--device-id ID] [--trust PUBFILE]... [--group NAME]...]

Serves every model package (a folder NAME/ with manifest.json and model.onnx) and every bare NAME.onnx found
in the models folder over HTTP, speaking the Open Inference Protocol (KServe v2): /v2/health/ready,
/v2/models/NAME/infer, the repository API, /metrics. New versions are hot-swapped behind an accuracy gate;
latency, power and accuracy are recorded in SQLite (<state dir>/telemetry.db) and shown at /dashboard.

With no options it listens on 127.0.0.1:8080 and serves ./models (or <state dir>/models when there is no
./models). Settings come from, lowest to highest: built-in defaults (config/default.json), the --config file
(YAML or JSON; or $EDGERUN_CONFIG), environment variables EDGERUN_<SECTION>_<KEY> (e.g. EDGERUN_SERVER_PORT),
then these flags:

  --config FILE      configuration file; every key is listed in config/example.yaml
  --port N           server.port (0: any free port)
  --state-dir DIR    state.dir: model store and telemetry database
  --models DIR       models.dir: packages and NAME.onnx files served at start
  --broker URL       fleet.broker (mqtt://, mqtts://, ws://, wss://): join the fleet on this MQTT broker —
                     announce this device, install signed deployments, report progress (docs/PROTOCOL.md)
  --device-id ID     fleet.deviceId: this device in topics (default: the host name)
  --trust PUBFILE    fleet.trust: an ed25519 public key (edgerun keys generate) whose signatures are accepted;
                     repeatable
  --group NAME       fleet.groups: a group whose deployments this device follows; repeatable
  -h, --help         this text

Under systemd (systemd/edgerun.service) it runs as Type=notify with a watchdog. SIGTERM or SIGINT: stop taking
requests (503, Connection: close), finish those in flight, flush telemetry, close engines, exit 0 within
lifecycle.shutdownGraceMs. A second signal or an expired grace logs what was still running and ends the
process non-zero (SIGKILL while an inference still runs). Operations: docs/OPERATIONS.md.
`;

export interface DaemonCommandOptions {
  /** Ends the process; default: flush the log, then exit (or SIGKILL itself when work is still running). */
  exit?: (code: number, workStillRunning: boolean) => void;
}

/** pino's destination (sonic-boom, asynchronous): what drainLog needs of it. */
interface LogDestination { flushSync?(): void; _writing?: boolean; _bufs?: unknown[] }

/**
 * Waits until every log line is written. pino's flush(cb) calls back at once in the default mode, with the last
 * lines possibly still in flight, and a process that kills itself must not lose the line saying why.
 */
async function drainLog(): Promise<void> {
  const stream = (logger as unknown as Record<symbol, LogDestination | undefined>)[pinoSymbols.streamSym];
  const deadline = Date.now() + 1000;
  while (stream && Date.now() < deadline) {
    if (!stream._writing) {
      try { stream.flushSync?.(); } catch { /* retried below */ }
      if (!stream._writing && !stream._bufs?.length) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/**
 * Leaves the process once the log is written. With work still running (a forced shutdown) the process kills
 * itself instead of exiting: process.exit() joins the engine's worker threads, and onnxruntime-node aborts the
 * process (SIGABRT, a core dump) when an inference finishes into a worker that is being torn down.
 */
function exitProcess(code: number, workStillRunning: boolean): void {
  void drainLog().then(() => {
    if (code !== 0 && workStillRunning) process.kill(process.pid, 'SIGKILL');
    process.exit(code);
  });
}

export async function daemonCommand(args: string[], io: CliIO, options: DaemonCommandOptions = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs('daemon', args, {
    config: { type: 'string' },
    port: { type: 'string' },
    'state-dir': { type: 'string' },
    models: { type: 'string' },
    broker: { type: 'string' },
    'device-id': { type: 'string' },
    trust: { type: 'string', multiple: true },
    group: { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) {
    io.stderr.write(`edgerun daemon: unexpected argument '${positionals[0]}'\n\n${HELP}`);
    return 2;
  }
  const loaded = loadConfig({
    file: values.config,
    env: process.env,
    flags: {
      port: values.port, stateDir: values['state-dir'], modelsDir: values.models, broker: values.broker,
      deviceId: values['device-id'], trust: values.trust, groups: values.group,
    },
  });
  const config = loaded.config;
  logger.level = config.log.level;
  const log = logger.child({ component: 'daemon' });
  const exit = options.exit ?? exitProcess;

  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception: exiting (systemd restarts the daemon)');
    exit(1, true);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled promise rejection: exiting (systemd restarts the daemon)');
    exit(1, true);
  });

  const notify = new SdNotify(process.env, { log: logger.child({ component: 'sd-notify' }) });
  const daemon = createDaemon({ config, notify, env: process.env });
  // Children (engine threads, nvidia-smi) must not inherit the notification socket (with NotifyAccess=all they
  // could otherwise speak for the daemon); the sender got its own copy.
  delete process.env.NOTIFY_SOCKET;

  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => { resolveDone = resolve; });
  const shutdown = handleShutdownSignals({
    lifecycle: daemon.lifecycle,
    graceMs: config.lifecycle.shutdownGraceMs,
    log,
    notify,
    describeRunning: () => daemon.describeRunning(),
    exit: (code, workStillRunning) => { resolveDone(code); exit(code, workStillRunning); },
  });

  log.info({
    file: loaded.file,
    overrides: Object.fromEntries(Object.entries(loaded.origins).filter(([, source]) => source === 'env' || source === 'flag')),
    stateDir: config.state.dir,
    modelsDir: config.models.dir,
    ...(config.fleet.broker ? { broker: config.fleet.broker, deviceId: config.fleet.deviceId, groups: config.fleet.groups } : {}),
  }, 'starting edgerun daemon');
  try {
    await daemon.start();
  } catch (error) {
    log.fatal({ err: error }, `start failed: ${isEdgerunError(error) ? `${error.code}: ` : ''}${(error as Error).message}`);
    await notify.status(`start failed: ${(error as Error).message}`);
    await notify.close();
    shutdown.dispose();
    io.stderr.write(`edgerun daemon: ${isEdgerunError(error) ? `${error.code}: ` : ''}${(error as Error).message}\n`);
    return 1;
  }
  return done;
}
