/**
 * `edgerun monitor`: bad command lines are usage errors, an unreachable broker is EDGERUN_ERR_FLEET_BROKER, and
 * the real command (a child process) serves the dashboard and API from SQLite or PostgreSQL, collects what the
 * broker carries, and stops cleanly on SIGTERM.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import t, { type Test } from 'tap';
import { topics, type DeviceStatus } from '../../daemon/fleet/protocol.ts';
import { edgerun } from '../helpers/edgerun-cli.ts';
import { freePort, startBroker } from '../helpers/mqtt-broker.ts';
import { postgresBinDir, startPostgres } from '../monitor/helpers/postgres-server.ts';

const MAIN = fileURLToPath(new URL('../../daemon/cli/main.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgerun-cli-monitor-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('bad command lines are usage errors naming the problem', async (t) => {
  t.match(await edgerun('monitor'), { code: 2, err: /EDGERUN_ERR_CLI_USAGE: edgerun monitor: --broker URL is required/ });
  t.match(await edgerun('monitor', '--broker', 'mqtt://h', '--db', 'a.db', '--postgres', 'postgres://h/d'), { code: 2, err: /--db FILE or --postgres URL, not both/ });
  t.match(await edgerun('monitor', '--broker', 'mqtt://h', '--postgres', 'mysql://u:secret@h/d'), { code: 2, err: /--postgres: 'mysql:\/\/u:\*\*\*@h\/d' is not a postgres:\/\/ URL/ });
  t.match(await edgerun('monitor', '--broker', 'mqtt://h', '--port', '70000'), { code: 2, err: /--port must be at most 65535/ });
  t.match(await edgerun('monitor', '--broker', 'mqtt://h', '--prefix', 'a/#'), { code: 2, err: /--prefix: 'a\/#'/ });
  t.match(await edgerun('monitor', '--broker', 'http://h'), { code: 1, err: /EDGERUN_ERR_FLEET_BROKER: 'http:\/\/h' is not a broker URL/ });
  t.match(await edgerun('monitor', '--help'), { code: 0, out: /usage: edgerun monitor --broker URL/ });
});

t.test('an unreachable broker is EDGERUN_ERR_FLEET_BROKER naming the URL', async (t) => {
  const port = await freePort();
  const result = await edgerun('monitor', '--broker', `mqtt://127.0.0.1:${port}`, '--db', path.join(dir, 'unreachable.db'), '--port', '0');
  t.match(result, { code: 1, err: new RegExp(`EDGERUN_ERR_FLEET_BROKER: monitor: cannot connect to the broker at mqtt://127\\.0\\.0\\.1:${port}`) });
});

/** Runs `edgerun monitor ARGS` as a child until it prints its dashboard URL. */
async function runMonitor(t: Test, args: string[]): Promise<{ url: string; stop: () => Promise<{ code: number | null; stdout: string }> }> {
  const code = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', code, 'monitor', ...args], {
    env: { ...process.env, EDGERUN_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (status) => resolve(status)));
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const deadline = Date.now() + 60_000;
  let match: RegExpMatchArray | null = null;
  while (!(match = /dashboard on (http:\/\/\S+?)\/ /.exec(stdout))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`monitor did not start: ${stdout}${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: match[1],
    stop: async () => {
      child.kill('SIGTERM');
      return { code: await exited, stdout };
    },
  };
}

const broker = await startBroker({ log: (line) => t.comment(line) });
t.teardown(() => broker.close());

async function collectsAndServes(t: Test, storeArgs: string[], deviceId: string): Promise<void> {
  const monitor = await runMonitor(t, ['--broker', broker.url, '--port', '0', '--client-id', `cli-${deviceId}`, '--mqtt-version', String(broker.protocolVersion), ...storeArgs]);
  const device = await mqtt.connectAsync(broker.url, { protocolVersion: broker.protocolVersion });
  t.teardown(() => device.endAsync(true));
  const status: DeviceStatus = { protocol: 1, deviceId, groups: ['g'], online: true, agentVersion: 'edgerun/0.1.0', models: [], at: new Date().toISOString() };
  await device.publishAsync(topics.status('edgerun/v1', deviceId), JSON.stringify(status), { qos: 1, retain: true });
  let devices: { deviceId: string; online: boolean }[] = [];
  const deadline = Date.now() + 15_000;
  while (!devices.some((d) => d.deviceId === deviceId) && Date.now() < deadline) {
    devices = ((await (await fetch(`${monitor.url}/api/fleet`)).json()) as { devices: typeof devices }).devices;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.match(devices.find((d) => d.deviceId === deviceId), { online: true }, 'the status published on the broker is in the API');
  const page = await fetch(`${monitor.url}/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /<title>edgerun fleet monitor<\/title>/);
  const { code, stdout } = await monitor.stop();
  t.equal(code, 0, 'SIGTERM stops it cleanly');
  t.match(stdout, /SIGTERM: stopping/);
}

t.test('with SQLite it collects from the broker, serves the dashboard and API, and stops on SIGTERM', async (t) => {
  const db = path.join(dir, 'monitor.db');
  await collectsAndServes(t, ['--db', db], 'cli-sqlite-device');
  t.ok(fs.existsSync(db), 'the database file was written');
});

const binDir = postgresBinDir();
if (!binDir) {
  t.comment('SKIP edgerun monitor --postgres: no /usr/lib/postgresql/<major>/bin with initdb and pg_ctl (apt-get install postgresql)');
} else {
  t.test('with --postgres it does the same against a PostgreSQL server', async (t) => {
    const server = await startPostgres(binDir);
    t.teardown(() => server.stop());
    await collectsAndServes(t, ['--postgres', server.url], 'cli-pg-device');
  });
}
