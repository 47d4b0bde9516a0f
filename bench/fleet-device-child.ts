/**
 * One fleet agent (test/fleet/helpers/in-process-agents.ts) in a process of its own, so a benchmark can kill it
 * with SIGKILL mid-transfer. Prints the chunk bytes delivered so far after every chunk message, one number a line.
 *   node --import tsx bench/fleet-device-child.ts BROKER_URL DEVICE_ID STATE_DIR TRUST_FILE
 */
import { AgentDevice } from '../test/fleet/helpers/in-process-agents.ts';

const [brokerUrl, deviceId, stateDir, trustFile] = process.argv.slice(2);
if (!brokerUrl || !deviceId || !stateDir || !trustFile) throw new Error('usage: fleet-device-child.ts BROKER_URL DEVICE_ID STATE_DIR TRUST_FILE');
const device = await AgentDevice.start({
  brokerUrl, deviceId, stateDir, trustFiles: [trustFile],
  onChunk: (d) => { process.stdout.write(`${d.deliveredBytes}\n`); },
});
await device.connected();
process.stdout.write('connected\n');
process.once('SIGTERM', () => { void device.stop().then(() => process.exit(0)); });
