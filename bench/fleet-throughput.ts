/**
 * Loopback throughput of one deployment to one device through Mosquitto, over chunk size × send window.
 *   node --import tsx bench/fleet-throughput.ts [--mb 10] [--chunks 32768,65536,131072,262144,524288] [--windows 1,4,16] [--repeat 3] [--json]
 *
 * Each point: a fresh real fleet agent (transfer receiver with its persisted bitmap, every file hash checked
 * at the end) in this process, and `edgerun publish` in a child process. MB/s = package bytes / time from the
 * first to the last chunk delivered to the device's MQTT client, the median of --repeat runs; "end to end" is the publish command's wall
 * time (process start, package verification, connect, manifest, transfer, assembly, `active`).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentDevice } from '../test/fleet/helpers/in-process-agents.ts';
import { mb, runEdgerun, startBenchFleet, writeBenchPackage } from './fleet-common.ts';

const { values } = parseArgs({
  options: {
    mb: { type: 'string', default: '10' },
    chunks: { type: 'string', default: '32768,65536,131072,262144,524288' },
    windows: { type: 'string', default: '1,4,16' },
    repeat: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});
const bytes = Math.round(Number(values.mb) * 1e6);
const chunkSizes = values.chunks.split(',').map(Number);
const windows = values.windows.split(',').map(Number);

const fleet = await startBenchFleet('throughput');
const results: { chunkBytes: number; window: number; mbPerSecond: number; runs: number[]; endToEndMs: number; deliveredBytes: number; totalBytes: number }[] = [];
try {
  const pkg = await writeBenchPackage(fleet.dir, '1', bytes);
  let run = 0;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const chunkBytes of chunkSizes) {
    for (const window of windows) {
      const rates: number[] = [];
      const walls: number[] = [];
      let deliveredBytes = 0;
      let totalBytes = 0;
      for (let repeat = 0; repeat < Number(values.repeat); repeat++) {
        run++;
        const deviceId = `bench-${run}`;
        const device = await AgentDevice.start({ brokerUrl: fleet.broker.url, deviceId, stateDir: path.join(fleet.dir, deviceId), trustFiles: [fleet.pubFile] });
        await device.connected();
        const cli = await runEdgerun(['publish', pkg, '--broker', fleet.broker.url, '--to', deviceId, '--key', fleet.keyFile,
          '--chunk-bytes', String(chunkBytes), '--window', String(window), '--timeout', '5m', '--json']);
        await device.stop();
        if (cli.code !== 0) throw new Error(`publish failed (${cli.code}):\n${cli.stderr}`);
        totalBytes = (JSON.parse(cli.stdout) as { totalBytes: number }).totalBytes;
        rates.push(totalBytes / 1e6 / ((device.lastChunkAt! - device.firstChunkAt!) / 1000));
        walls.push(cli.ms);
        deliveredBytes = Math.max(deliveredBytes, device.deliveredBytes);
      }
      const point = { chunkBytes, window, mbPerSecond: median(rates), runs: rates.map((r) => Number(r.toFixed(1))), endToEndMs: Math.round(median(walls)), deliveredBytes, totalBytes };
      results.push(point);
      if (!values.json) {
        process.stdout.write(`chunk ${String(chunkBytes / 1024).padStart(4)} KiB  window ${String(window).padStart(2)}:  ${point.mbPerSecond.toFixed(1).padStart(6)} MB/s` +
          ` median of [${point.runs.join(', ')}]  (end to end ${(point.endToEndMs / 1000).toFixed(2)} s, at most ${mb(deliveredBytes)} of ${mb(totalBytes)} MB delivered)\n`);
      }
    }
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ bytes, results }, null, 2)}\n`);
} finally {
  await fleet.close();
}
