import type { CommandSpec } from '../args.js';
import { clientFor, printJson } from './common.js';

export const transferLeadership: CommandSpec = {
  path: ['transfer-leadership'],
  summary: 'move Raft leadership to another node',
  usage: 'transfer-leadership [--to NODE] [flags]',
  flags: {
    to: { type: 'string', value: 'NODE', help: 'the node to lead (default: the most caught-up voter)' },
  },
  positionals: { names: [], min: 0, max: 0 },
  api: true,
  details: 'Returns once the new leader is elected. A transfer is not retried on another node\nif the outcome is unknown.',
  examples: ['ogel transfer-leadership', 'ogel transfer-leadership --to n3'],
  async run(ctx, args) {
    const to = args.nonEmpty('to');
    const client = clientFor(ctx, args);
    const r = await client.transferLeadership(to);
    if (args.bool('json')) printJson(ctx, r);
    else ctx.io.stdout(`leadership moved ${r.from} -> ${r.to} in ${r.durationMs} ms\n`);
    return 0;
  },
};
