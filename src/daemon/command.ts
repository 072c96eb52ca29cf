// `ogel daemon --config cluster.yml --node n1 [--bootstrap | --join]`: runs one
// node until SIGTERM or SIGINT, then stops gracefully (a leader hands over
// leadership first); a second signal forces the stop. Exit codes: 0 after a clean stop, 1 on a runtime failure,
// 2 on a usage or config error.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/index.js';
import { jsonLogger } from '../log.js';
import { Daemon, type BootstrapMode } from './daemon.js';
import { onStopSignals } from '../stop-signals.js';

const HELP = `Usage: ogel daemon --config FILE --node ID [--bootstrap | --join]

Runs one node of an OgelBase cluster: its Raft member, the state machine, the
leader-only controllers and the admin API. Logs are JSON lines on stdout.

Options:
  --config FILE   the cluster config (see cluster.example.yml); env OGEL_CONFIG
  --node ID       which of the config's nodes this is; env OGEL_NODE_ID
  --bootstrap     start a new cluster from the config's nodes; refuses if this
                  node already has data (the default bootstraps only when the
                  data directory is empty, and otherwise restarts from it)
  --join          never bootstrap: wait to be added with 'ogel members add'
  -h, --help      this text

Examples:
  ogel daemon --config cluster.yml --node n1
  OGEL_NODE_ID=n2 ogel daemon --config /etc/ogel/cluster.yml`;

export async function runDaemonCommand(argv: string[]): Promise<number> {
  const argSpec = {
    args: argv,
    options: {
      config: { type: 'string' },
      node: { type: 'string' },
      bootstrap: { type: 'boolean', default: false },
      join: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  } satisfies ParseArgsConfig;
  let values: ReturnType<typeof parseArgs<typeof argSpec>>['values'];
  try {
    values = parseArgs(argSpec).values;
  } catch (e) {
    process.stderr.write(`ogel daemon: ${(e as Error).message}\n${HELP}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const configPath = values.config ?? process.env.OGEL_CONFIG;
  const nodeId = values.node ?? process.env.OGEL_NODE_ID;
  if (!configPath || !nodeId) {
    process.stderr.write(`ogel daemon: ${!configPath ? '--config (or OGEL_CONFIG)' : '--node (or OGEL_NODE_ID)'} is required\n${HELP}\n`);
    return 2;
  }
  if (values.bootstrap && values.join) {
    process.stderr.write('ogel daemon: --bootstrap and --join contradict each other; pass at most one\n');
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(configPath);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (!config.nodes.some((n) => n.id === nodeId)) {
    process.stderr.write(`ogel daemon: --node ${nodeId} is not in ${configPath} (nodes: ${config.nodes.map((n) => n.id).join(', ')})\n`);
    return 2;
  }
  const log = jsonLogger(config.log.level, { node: nodeId });
  for (const w of config.warnings) log({ level: 'warn', msg: 'config warning', warning: w });
  const bootstrap: BootstrapMode = values.bootstrap ? 'force' : values.join ? 'join' : 'auto';

  let daemon: Daemon;
  try {
    daemon = await Daemon.start({ config, nodeId, bootstrap, log });
  } catch (e) {
    process.stderr.write(`ogel daemon: ${(e as Error).message}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    onStopSignals({
      graceful: (signal) => {
        log({ level: 'info', msg: 'stopping (send the signal again to force)', signal });
        daemon.stop().then(
          () => {
            const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
            // Everything was stopped; a handle still open now is a leak. Say which
            // kind, then exit anyway rather than hang the caller (ogel up, systemd).
            setTimeout(() => {
              const handles = (process as unknown as { _getActiveHandles?: () => object[] })._getActiveHandles?.() ?? [];
              log({ level: 'warn', msg: 'exiting with handles still open after stop', handles: handles.map((h) => h.constructor.name) });
              process.exit(code);
            }, 2_000).unref();
            resolve(code);
          },
          (e: Error) => {
            log({ level: 'error', msg: 'error while stopping', error: e.message });
            resolve(1);
          },
        );
      },
      force: (signal) => {
        // Postgres is not left behind: its death guard (instance.ts) sees this
        // process end and stops the postmaster immediately (SIGQUIT). The next
        // start runs crash recovery, which loses nothing that was acknowledged.
        log({ level: 'warn', msg: 'forced stop: exiting now; Postgres stops immediately', signal });
        process.exit(1);
      },
    });
  });
}
