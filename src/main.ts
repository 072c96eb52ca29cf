#!/usr/bin/env node
// The `ogel` binary. It owns the wiring of the three programs that share one
// command name: the admin CLI (src/cli/), the node daemon (`ogel daemon`) and the
// local cluster runner (`ogel up`). The CLI is only a client of the admin API; it
// learns of the other two from here, so it never imports them.

import { processIo, reportError, runCli, type ExternalCommands } from './cli/run.js';

const EXTERNAL: ExternalCommands = {
  up: {
    summary: 'start a local 3-node cluster (data under ./.ogel/) and show its status',
    load: async () => ({ run: (await import('./local/up.js')).runUp }),
  },
  restore: {
    summary: 'restore a base backup from the object store into a plain data directory (no daemon needed)',
    load: async () => ({ run: (await import('./archive/restore-command.js')).runRestoreCommand }),
  },
  daemon: {
    summary: 'run one node: ogel daemon --config cluster.yml --node n1',
    load: async () => ({ run: (await import('./daemon/command.js')).runDaemonCommand }),
  },
};

// `ogel status | head -1` closes stdout early; that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const io = processIo();
const debug = process.env['OGEL_DEBUG'] === '1';
runCli(process.argv.slice(2), { io, env: process.env, cwd: process.cwd() }, EXTERNAL)
  .then((code) => {
    process.exitCode = code;
  })
  .catch((err: unknown) => {
    process.exitCode = reportError(err, io, debug);
  });
