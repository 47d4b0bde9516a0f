/** `edgerun daemon` argument handling that needs no running daemon: help, usage errors, configuration errors. */
import t from 'tap';
import { edgerun } from '../helpers/edgerun-cli.ts';

t.test('--help lists the flags, the fleet ones included', async (t) => {
  const r = await edgerun('daemon', '--help');
  t.equal(r.code, 0);
  for (const flag of ['--config FILE', '--port N', '--state-dir DIR', '--models DIR', '--broker URL', '--device-id ID', '--trust PUBFILE', '--group NAME']) t.match(r.out, flag);
  t.match((await edgerun('--help')).out, /daemon\s+serve models over HTTP/, 'listed among the commands');
});

t.test('usage errors exit 2 before anything starts', async (t) => {
  const unknown = await edgerun('daemon', '--prot', '80');
  t.equal(unknown.code, 2);
  t.match(unknown.err, /EDGERUN_ERR_CLI_USAGE: edgerun daemon: Unknown option '--prot'/);
  const positional = await edgerun('daemon', 'models');
  t.equal(positional.code, 2);
  t.match(positional.err, /unexpected argument 'models'/);
});

t.test('an invalid flag value is a configuration error naming the key and the flag', async (t) => {
  const r = await edgerun('daemon', '--broker', 'ftp://broker', '--port', '8080');
  t.equal(r.code, 1);
  t.match(r.err, /edgerun daemon: EDGERUN_ERR_CONFIG: invalid configuration from command-line flags: fleet\.broker \(--broker\): must be a broker URL/);
  const missing = await edgerun('daemon', '--config', '/nonexistent/edgerun.yaml');
  t.equal(missing.code, 1);
  t.match(missing.err, /configuration file \/nonexistent\/edgerun\.yaml: no such file/);
});
