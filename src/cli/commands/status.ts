import type { CommandSpec } from '../args.js';
import { renderStatusTable } from '../table.js';
import { clientFor, printJson } from './common.js';

export const status: CommandSpec = {
  path: ['status'],
  summary: 'show the cluster: members, Raft progress, Postgres roles and lag, generation, lease, pause, failover block',
  usage: 'status [--stale] [flags]',
  flags: {
    stale: { type: 'boolean', help: "answer from the node's local state (works without a quorum; may be behind)" },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details:
    "Raft progress (lag, last contact) is the leader's view. Postgres role shows the role the\n" +
    "node reports, and the wanted one beside it when they differ. Lag is the primary's live\n" +
    'pg_stat_replication; when it cannot be asked, lag comes from the LSNs the nodes report,\n' +
    "marked '~'. The lease's time left is the answering node's view. Columns show '-' until\n" +
    'the daemon reports that data. The Archive line shows what a point-in-time restore can reach\n' +
    "(from the cluster's index) and the primary's WAL archiver: its lag, or RETRYING or CONFLICT\n" +
    'with the error; a WAL line warns when WAL the archive lacks is about to be freed.',
  examples: ['ogel status', 'ogel status --json', 'ogel status --stale --api http://127.0.0.1:8002'],
  async run(ctx, args) {
    const client = clientFor(ctx, args);
    const s = await client.status({ stale: args.bool('stale') });
    if (args.bool('json')) printJson(ctx, s);
    else ctx.io.stdout(renderStatusTable(s));
    return 0;
  },
};
